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

    m = sub.add_parser("demo", parents=[_common("demo")], help="ingest the bundled sample folder and search it")
    m.add_argument("query", nargs="?", default="数据决定了模型效果的什么？", metavar="QUERY")
    return p


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
