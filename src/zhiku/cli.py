"""The ``zhiku`` command: validate → one call on KnowledgeBase → render. Errors become messages."""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Sequence

from . import __version__
from .errors import ZhikuError


def _common(kb_default: str = "default") -> argparse.ArgumentParser:
    """Options every command takes (a fresh parser each time: argparse shares parent actions)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--kb", default=kb_default, help="knowledge base name (default: %(default)s)")
    common.add_argument("--home", default=None, help="zhiku home folder (default: $ZHIKU_HOME or ~/.local/share/zhiku)")
    common.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    return common


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="zhiku", description="知库 zhiku: an offline knowledge base for your files.")
    p.add_argument("--version", action="version", version=f"zhiku {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    a = sub.add_parser("add", parents=[_common()], help="ingest files and folders (recursive)")
    a.add_argument("paths", nargs="+", metavar="PATH")
    a.add_argument("--json", action="store_true", help="print the report as JSON")

    s = sub.add_parser("sync", parents=[_common()], help="add new/changed files under FOLDER, remove vanished ones")
    s.add_argument("folder", metavar="FOLDER")
    s.add_argument("--json", action="store_true")

    r = sub.add_parser("rm", parents=[_common()], help="remove a source (by the name `zhiku docs` shows, or its path)")
    r.add_argument("source", metavar="SOURCE")

    d = sub.add_parser("docs", parents=[_common()], help="list sources with chunk counts")
    d.add_argument("--json", action="store_true")

    q = sub.add_parser("search", parents=[_common()], help="search the knowledge base")
    q.add_argument("query", metavar="QUERY")
    q.add_argument("--k", type=int, default=None, help="number of hits (default 10)")
    q.add_argument("--mode", choices=["hybrid", "vector", "lexical"], default=None)
    q.add_argument("--json", action="store_true", help="print one JSON object")

    k = sub.add_parser("kbs", parents=[_common()], help="list knowledge bases")
    k.add_argument("--json", action="store_true")

    sub.add_parser("reindex", parents=[_common()], help="re-embed all chunks with the configured embedder")

    ask = sub.add_parser("ask", parents=[_common(), _generation()],
                         help="answer a question from the knowledge base, with citations")
    ask.add_argument("question", metavar="QUESTION")
    ask.add_argument("--json", action="store_true", help="print one JSON object (no streaming)")

    c = sub.add_parser("chat", parents=[_common(), _generation()],
                       help="multi-turn conversation (stored in the knowledge base)")
    c.add_argument("--resume", metavar="ID", help="continue a stored conversation")

    cv = sub.add_parser("conversations", parents=[_common()], help="list, show or delete stored conversations")
    cv.add_argument("action", nargs="?", default="list", choices=["list", "show", "delete"])
    cv.add_argument("id", nargs="?", metavar="ID")
    cv.add_argument("--json", action="store_true")

    mo = sub.add_parser("models", parents=[_common()], help="list bundled models, or prepare one (assemble + verify)")
    mo.add_argument("action", nargs="?", default="list", choices=["list", "prepare"])
    mo.add_argument("name", nargs="?", metavar="NAME")
    mo.add_argument("--force", action="store_true", help="prepare: assemble again even if already verified")

    m = sub.add_parser("demo", parents=[_common("demo"), _generation()],
                       help="ingest the bundled sample folder and answer a question from it")
    m.add_argument("question", nargs="?", default="中文关键词检索为什么要先分词？", metavar="QUESTION")
    _eval_parsers(sub)

    sv = sub.add_parser("serve", parents=[_common()], help="HTTP API server (keys required off loopback)")
    sv.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s: this machine only)")
    sv.add_argument("--port", type=int, default=8000)
    sv.add_argument("--keys", action="store_true", help="require API keys on loopback too (always on elsewhere)")

    mc = sub.add_parser("mcp", parents=[_common(None)],
                        help="MCP server over stdio for agents (tools: search, ask, list_documents, add_document)")
    mc.add_argument("--read-only", action="store_true", help="leave out add_document")

    ky = sub.add_parser("keys", parents=[_common()], help="API keys for the server: create (shown once), list, revoke")
    ky.add_argument("action", nargs="?", default="list", choices=["create", "list", "revoke"])
    ky.add_argument("id", nargs="?", metavar="ID", help="revoke: the key's id (as `zhiku keys list` shows it)")
    ky.add_argument("--scope", choices=["read", "write", "admin"], default="read", help="create: default %(default)s")
    ky.add_argument("--label", default="", help="create: a note on who or what uses the key")
    ky.add_argument("--json", action="store_true")
    return p


EVAL_ACTIONS = ("run", "runs", "show", "compare", "generate")


def _eval_parsers(sub) -> None:
    e = sub.add_parser("eval", help="measure retrieval and answers on a question set; list, show, compare runs",
                       description="zhiku eval DATASET.jsonl [options]  (short for: zhiku eval run DATASET ...)\n"
                                   "zhiku eval runs | show RUN | compare RUN_A RUN_B | generate --n N --out FILE",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    es = e.add_subparsers(dest="action", metavar="ACTION")
    es.required = True
    r = es.add_parser("run", parents=[_common(), _generation(), _eval_options()],
                      help="run a question set (the default action: zhiku eval DATASET)")
    r.add_argument("dataset", metavar="DATASET", help="question set, one JSON object a line (docs/evaluation.md)")
    r.add_argument("--retrieval-only", action="store_true", help="measure retrieval only (no answers, no model)")
    r.add_argument("--out", metavar="DIR", help="also write the run's files (report, cases, metrics) into DIR")
    r.add_argument("--json", action="store_true", help="print the aggregate metrics as JSON")
    r.add_argument("--fail-under", action="append", default=[], metavar="METRIC=VALUE",
                   help="exit 3 when METRIC is below VALUE (repeatable), e.g. hit@5=0.85")
    r.add_argument("--fail-over", action="append", default=[], metavar="METRIC=VALUE",
                   help="exit 3 when a lower-is-better METRIC is above VALUE, e.g. false_refusal=0.2")
    r.add_argument("--judge", action="store_true", help="also score answers with the model as judge (slow)")
    r.add_argument("--judge-model", metavar="MODEL", help="judge with this model instead of generate.model")
    ls = es.add_parser("runs", parents=[_common()], help="list stored runs of a knowledge base")
    ls.add_argument("--json", action="store_true")
    ls.add_argument("--prune", action="store_true", help="forget runs whose folder was deleted")
    sh = es.add_parser("show", parents=[_common()], help="print a stored run's metrics (RUN: id, prefix, latest)")
    sh.add_argument("run", metavar="RUN")
    sh.add_argument("--json", action="store_true")
    c = es.add_parser("compare", parents=[_common(), _generation()],
                      help="per-metric deltas with bootstrap intervals, and the cases that flipped")
    c.add_argument("run_a", metavar="RUN_A", help="run id, unique prefix, 'previous', 'latest' or a run folder")
    c.add_argument("run_b", metavar="RUN_B")
    c.add_argument("--json", action="store_true")
    c.add_argument("--report", metavar="FILE", help="write the comparison as a self-contained HTML page")
    c.add_argument("--markdown", metavar="FILE", help="write a Markdown summary of the comparison")
    c.add_argument("--judge", action="store_true",
                   help="also judge changed answers pairwise with the model (both orders; only consistent wins)")
    c.add_argument("--judge-model", metavar="MODEL", help="judge with this model instead of generate.model")
    g = es.add_parser("generate", parents=[_common(), _generation()],
                      help="synthesise question/answer/evidence cases from the knowledge base with the model")
    g.add_argument("--n", type=int, default=50, help="cases wanted (default %(default)s)")
    g.add_argument("--out", required=True, metavar="FILE", help="the .jsonl file to write")
    g.add_argument("--pick-seed", type=int, default=0, help="which chunks are picked (default %(default)s)")
    g.add_argument("--force", action="store_true", help="overwrite FILE if it exists")

    t = sub.add_parser("tune", parents=[_common(), _eval_options()],
                       help="sweep chunking, fusion and search settings on a question set; print a leaderboard")
    t.add_argument("dataset", metavar="DATASET")
    t.add_argument("--metric", default="hit@5", help="what to maximise (default %(default)s; mrr, ndcg@10, …)")
    t.add_argument("--quick", action="store_true", help="search settings only: no re-chunking")
    t.add_argument("--answers", action="store_true",
                   help="also tune passages per answer and rerank on the answers (needs the model: slow)")
    t.add_argument("--rerank", action="store_true", help="with --answers: also try answer.rerank = llm")
    t.add_argument("--write", action="store_true", help="write the winning settings to $ZHIKU_HOME/config.toml")
    t.add_argument("--json", action="store_true")


def _eval_options() -> argparse.ArgumentParser:
    o = argparse.ArgumentParser(add_help=False)
    o.add_argument("--limit", type=int, default=0, metavar="N", help="only the first N cases")
    o.add_argument("-s", "--setting", action="append", default=[], metavar="KEY=VALUE",
                   help="override a setting for this run, e.g. retrieve.rrf_k=30 (repeatable)")
    return o


def _generation() -> argparse.ArgumentParser:
    """Options of every generating command; each maps to a ``generate.*`` setting."""
    g = argparse.ArgumentParser(add_help=False)
    g.add_argument("--no-llm", action="store_true",
                   help="extractive answer: the best passages with matching sentences, no model")
    g.add_argument("--backend", choices=["local", "openai", "none"], help="generate.backend")
    g.add_argument("--model", help="generate.model: bundled pack name, .gguf path, or endpoint model id")
    g.add_argument("--temperature", type=float, help="generate.temperature")
    g.add_argument("--top-k", type=int, help="generate.top_k")
    g.add_argument("--top-p", type=float, help="generate.top_p")
    g.add_argument("--max-tokens", type=int, help="generate.max_tokens")
    g.add_argument("--seed", type=int, help="generate.seed")
    g.add_argument("--context-window", type=int, help="generate.context_window")
    return g


GENERATION_OPTIONS = ("backend", "model", "temperature", "top_k", "top_p", "max_tokens", "seed", "context_window")


_TAKES_VALUE = {"--kb", "--home", "--backend", "--model", "--temperature", "--top-k", "--top-p", "--max-tokens",
                "--seed", "--context-window", "--limit", "-s", "--setting", "--out", "--fail-under", "--fail-over",
                "--judge-model"}


def _with_default_action(argv: Sequence[str] | None) -> list[str]:
    """``zhiku eval [OPTIONS] DATASET`` is short for ``zhiku eval run [OPTIONS] DATASET``.

    The first word after ``eval`` that is neither an option nor an option's value decides: an
    action name (run, runs, show, compare, generate) is kept, anything else is a dataset.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] != "eval":
        return argv
    skip = False
    for word in argv[1:]:
        if skip:
            skip = False
        elif word.startswith("-"):
            skip = word in _TAKES_VALUE
        else:
            if word not in EVAL_ACTIONS:
                argv.insert(1, "run")
            break
    return argv


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(_with_default_action(argv))
    debug = args.debug or bool(os.environ.get("ZHIKU_DEBUG"))
    try:
        if args.command in ("eval", "tune"):
            from . import commands_eval as commands
        else:
            from . import commands  # type: ignore[no-redef]
        return getattr(commands, "cmd_" + args.command)(args)
    except ZhikuError as exc:
        if debug:
            raise
        print(f"zhiku: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        if debug:
            raise
        print(f"zhiku: error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nzhiku: interrupted. Everything finished before the interrupt is saved; "
              "run the same command again to continue.", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: say so plainly instead of dumping a traceback on users
        if debug:
            raise
        print(f"zhiku: unexpected error: {type(exc).__name__}: {exc}\n"
              "  hint: run again with --debug for the traceback, and please report it", file=sys.stderr)
        return 1


def emit_json(obj) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, indent=2) + "\n")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
