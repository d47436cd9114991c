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
    return p


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


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    debug = args.debug or bool(os.environ.get("ZHIKU_DEBUG"))
    try:
        from . import commands
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
