"""The CLI's commands. Each validates, makes one call on KnowledgeBase and renders the result."""
from __future__ import annotations

import argparse
import os
import sys
from importlib import resources

from .cli import emit_json
from .errors import GeneratorUnavailable, MissingDependency, UsageError
from .kb import KnowledgeBase
from .types import AddReport
from .render import IngestBar, print_report, print_search, print_sources, stderr_console


def _open(args: argparse.Namespace, create: bool = False) -> KnowledgeBase:
    return KnowledgeBase.open(args.kb, home=args.home, create=create)


def _ingest(args, action) -> AddReport:
    """Run ``action(kb, progress)`` with a progress bar and print its report."""
    with _open(args, create=True) as kb, IngestBar(enabled=not args.json) as bar:
        report = action(kb, bar)
    if args.json:
        emit_json(report.as_dict())
    else:
        print_report(report, stderr_console())
    return report


def cmd_add(args) -> int:
    report = _ingest(args, lambda kb, bar: kb.add(args.paths, progress=bar))
    if report.outcomes and all(o.status == "skipped" for o in report.outcomes):
        return 1  # nothing could be ingested: the whole command failed
    return 0


def cmd_sync(args) -> int:
    _ingest(args, lambda kb, bar: kb.sync(args.folder, progress=bar))
    return 0


def cmd_rm(args) -> int:
    with _open(args) as kb:
        record = kb.resolve_source(args.source)
        n = kb.remove(record.path)
    print(f"removed {record.source} ({n} chunks)")
    return 0


def cmd_docs(args) -> int:
    with _open(args) as kb:
        records = kb.documents()
    if args.json:
        emit_json([{"source": r.source, "path": r.path, "format": r.format, "chunks": r.chunk_count,
                    "bytes": r.size, "content_hash": r.content_hash} for r in records])
    else:
        print_sources(records)
    return 0


def cmd_search(args) -> int:
    if args.k is not None and args.k < 1:
        raise UsageError("--k must be at least 1")
    with _open(args) as kb:
        result = kb.search(args.query, k=args.k, mode=args.mode)
    if args.json:
        emit_json(result.as_dict())
    else:
        print_search(result)
    return 0


def cmd_kbs(args) -> int:
    names = KnowledgeBase.list_names(args.home)
    if args.json:
        emit_json(names)
    else:
        print("\n".join(names) if names else "no knowledge bases yet: zhiku add FOLDER")
    return 0


def cmd_reindex(args) -> int:
    with KnowledgeBase.open(args.kb, home=args.home, create=False, _allow_embedder_change=True) as kb, \
            IngestBar(enabled=True) as bar:
        bar.started(0)
        n = kb.reindex(progress=bar)
    print(f"re-embedded {n} chunks with {kb.embedder.name}")
    return 0


def cmd_demo(args) -> int:
    from .render import print_answer, TokenPrinter
    sample = resources.files("zhiku.samples").joinpath("demo")
    with resources.as_file(sample) as folder:
        with _open_for_answers(args, create=True) as kb:
            with IngestBar(enabled=True) as bar:
                report = kb.add([str(folder)], progress=bar)
            print_report(report, stderr_console())
            print(f"\nzhiku ask {args.question!r} --kb {args.kb}\n", file=sys.stderr)
            try:
                answerer = _answerer(kb)
            except (GeneratorUnavailable, MissingDependency) as exc:
                stderr_console().print(f"[yellow]no model available, showing an extractive answer:[/] {exc}")
                answerer = kb.answerer(extractive=True)
            printer = TokenPrinter()
            answer = answerer.ask(args.question, on_token=printer)
    print_answer(answer, streamed=printer.count > 0)
    return 0 if not answer.error else 1


# -- answers -------------------------------------------------------------------
def _gen_overrides(args) -> dict:
    from .cli import GENERATION_OPTIONS
    out = {f"generate.{k}": getattr(args, k) for k in GENERATION_OPTIONS if getattr(args, k, None) is not None}
    if getattr(args, "no_llm", False):
        out["generate.backend"] = "none"
    return out


def _open_for_answers(args, create: bool = False) -> KnowledgeBase:
    return KnowledgeBase.open(args.kb, home=args.home, create=create, overrides=_gen_overrides(args))


def _answerer(kb: KnowledgeBase):
    from .render import AssembleBar
    with AssembleBar() as bar:
        return kb.answerer(progress=bar.update)


def cmd_ask(args) -> int:
    from .render import print_answer, TokenPrinter
    with _open_for_answers(args) as kb:
        answerer = _answerer(kb)
        printer = None if args.json else TokenPrinter()
        answer = answerer.ask(args.question, on_token=printer)
    if args.json:
        emit_json(answer.as_dict())
    else:
        print_answer(answer, streamed=printer.count > 0)
    return 0 if not answer.error else 1


def cmd_chat(args) -> int:
    from .answer.pipeline import Turn
    from .render import print_answer, TokenPrinter, stderr_console
    err = stderr_console()
    with _open_for_answers(args) as kb:
        convs = kb.conversations
        history: list[Turn] = []
        cid = args.resume
        if cid:
            history = [Turn(t.question, t.answer) for t in convs.turns(cid)]
            err.print(f"resuming conversation {cid} ({len(history)} turns)")
        answerer = _answerer(kb)
        err.print("ask a question; an empty line or Ctrl-D ends the chat")
        while True:
            try:
                question = input("\n> ").strip()
            except EOFError:
                break
            if not question:
                break
            printer = TokenPrinter()
            answer = answerer.ask(question, history=history, on_token=printer)
            print_answer(answer, streamed=printer.count > 0)
            if answer.partial and answer.error:
                err.print("[yellow]this answer was cut off and is not saved[/]")
                continue
            if cid is None:
                cid = convs.create(question)
            convs.add_turn(cid, question, answer.standalone, answer.answer, answer.refused, answer.citations)
            history.append(Turn(question, answer.answer))
        if cid:
            err.print(f"conversation {cid} saved; continue it with: zhiku chat --kb {args.kb} --resume {cid}")
    return 0


def cmd_conversations(args) -> int:
    from .render import print_conversation, print_conversations
    with _open(args) as kb:
        convs = kb.conversations
        if args.action == "list":
            items = convs.list()
            if args.json:
                emit_json([c.__dict__ for c in items])
            else:
                print_conversations(items)
            return 0
        if not args.id:
            raise UsageError(f"conversations {args.action} needs an ID", "list them with: zhiku conversations list")
        if args.action == "show":
            conv, turns = convs.get(args.id), convs.turns(args.id)
            if args.json:
                emit_json({**conv.__dict__, "turns": [t.__dict__ for t in turns]})
            else:
                print_conversation(conv, turns)
        else:
            convs.delete(args.id)
            print(f"deleted conversation {args.id}")
    return 0


def cmd_models(args) -> int:
    from .backends.model_packs import PACKS, assemble, status
    from .config import load_settings
    from .render import AssembleBar
    settings = load_settings(args.home)
    if args.action == "list":
        for pack in PACKS.values():
            mark = " (default)" if pack.name == settings.generate.model else ""
            print(f"{pack.name:14} {pack.title:38} {pack.size / 1e9:.2f} GB  {status(pack, settings.model_dir)}{mark}")
        print(f"models are assembled in {settings.model_dir}")
        return 0
    if args.name not in PACKS:
        raise UsageError(f"unknown model pack {args.name!r}", f"choose one of: {', '.join(PACKS)}")
    with AssembleBar() as bar:
        path = assemble(PACKS[args.name], settings.model_dir, bar.update, force=args.force)
    print(f"{args.name} ready: {path} (checksum verified)")
    return 0


def cmd_keys(args) -> int:
    from .config import load_settings
    from .kb import validate_name
    from .store.keys import ALL_KBS, KeyStore
    store = KeyStore(load_settings(args.home).home)
    try:
        if args.action == "create":
            if args.kb != ALL_KBS:
                validate_name(args.kb)
            key, record = store.create(args.kb, args.scope, args.label)
            if args.json:
                emit_json({"key": key, **record.__dict__})
            else:
                print(key)
                print(f"{record.scope} key {record.id} for knowledge base {record.kb!r}. It is shown only now: "
                      "store it somewhere safe (zhiku keeps only its hash).", file=sys.stderr)
        elif args.action == "revoke":
            if not args.id:
                raise UsageError("keys revoke needs the key's ID", "list keys with: zhiku keys list")
            record = store.revoke(args.id)
            print(f"revoked key {record.id} ({record.scope} on {record.kb!r})")
        else:
            _print_keys(store.list(), args.json)
    finally:
        store.close()
    return 0


def _print_keys(keys, as_json: bool) -> None:
    import time
    if as_json:
        emit_json([k.__dict__ for k in keys])
        return
    when = lambda t: time.strftime("%Y-%m-%d %H:%M", time.localtime(t)) if t else "-"  # noqa: E731
    for k in keys:
        state = f"revoked {when(k.revoked_at)}" if k.revoked_at else f"last used {when(k.last_used_at)}"
        print(f"{k.id}  {k.scope:5}  kb={k.kb:12}  created {when(k.created_at)}  {state}  {k.label}")
    if not keys:
        print("no API keys yet: zhiku keys create --kb NAME --scope read")


def _server_threads() -> None:
    """Idle OpenMP threads sleep instead of spinning: with searches, ingestion and generation sharing
    the cores, spinning threads slowed a 14 ms query embedding to over a second (docs/benchmarks.md)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("ZHIKU_GENERATE_NICE", "5")


def cmd_mcp(args) -> int:
    _server_threads()
    from .server.mcp_server import run_stdio
    run_stdio(args.home, args.kb, read_only=args.read_only)
    return 0


def cmd_serve(args) -> int:
    _server_threads()
    from .server.run import serve
    if not 0 < args.port < 65536:
        raise UsageError(f"--port {args.port} is not a port number", "use 1–65535, e.g. --port 8000")
    serve(args.home, args.host, args.port, args.keys)
    return 0
