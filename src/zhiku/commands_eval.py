"""The ``zhiku eval`` and ``zhiku tune`` commands: validate → one call into zhiku.evaluate → render."""
from __future__ import annotations

import sys
from pathlib import Path

from .cli import emit_json
from .commands import _answerer, _gen_overrides
from .errors import UsageError
from .kb import KnowledgeBase

GATE_FAILED = 3  # exit code when a --fail-under/--fail-over gate fails


def settings_overrides(pairs: list[str]) -> dict:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or "." not in key:
            raise UsageError(f"--setting {pair!r} is not SECTION.KEY=VALUE", "e.g. --setting retrieve.rrf_k=30")
        out[key.strip()] = value.strip()
    return out


def _open(args, overrides: dict | None = None) -> KnowledgeBase:
    return KnowledgeBase.open(args.kb, home=args.home, create=False, overrides=overrides)


def cmd_eval(args) -> int:
    return {"run": _run, "runs": _runs, "show": _show, "compare": _compare, "generate": _generate}[args.action](args)


def _run(args) -> int:
    from .evaluate.dataset import load_dataset
    from .evaluate.gates import check, parse_gate
    from .evaluate.runner import EvalOptions, run_eval
    from .evaluate.runs import RunStore
    from .evaluate.snapshot import snapshot
    from .render_eval import EvalBar, print_gates, print_run
    gates = [parse_gate(g) for g in args.fail_under] + [parse_gate(g, upper=True) for g in args.fail_over]
    if args.limit < 0:
        raise UsageError("--limit must be 0 (all) or more")
    if args.out and Path(args.out).exists() and not Path(args.out).is_dir():
        raise UsageError(f"--out {args.out} is a file", "give a folder for the run's files")
    dataset = load_dataset(args.dataset)
    if not dataset.cases:
        raise UsageError(f"no valid cases in {args.dataset} ({len(dataset.problems)} invalid lines"
                         + (f"; first: {dataset.problems[0]}" if dataset.problems else "") + ")",
                         "see docs/evaluation.md for the format: one JSON object a line")
    overrides = {**_gen_overrides(args), **settings_overrides(args.setting)}
    options = EvalOptions(retrieval_only=args.retrieval_only, extractive=args.no_llm, limit=args.limit,
                          judge=args.judge)
    with _open(args, overrides) as kb:
        answerer = None if options.retrieval_only else (kb.answerer(extractive=True) if options.extractive
                                                         else _answerer(kb))
        judge = _judge(kb, args) if args.judge and not options.retrieval_only else None
        with EvalBar() as bar:
            run = run_eval(kb, dataset, options, answerer=answerer, judge=judge, progress=bar)
        run.snapshot = snapshot(kb, dataset, options, judge_model=getattr(judge, "model_name", ""))
        if judge is not None:
            judge.summarise(run)
        folder = RunStore(kb).save(run, args.out)
    if run.metrics.get("interrupted"):
        print(f"zhiku: interrupted after {len(run.cases)} of {len(run.cases) + run.metrics['counts']['not_run']} "
              f"cases; the partial run is saved in {folder}", file=sys.stderr)
        return 130
    results = check(run.metrics["metrics"], gates)
    if args.json:
        emit_json({**run.metrics, "folder": str(folder), "problems": list(dataset.problems),
                   "gates": [{"gate": r.gate.text, "value": r.value, "passed": r.passed} for r in results]})
    else:
        print_run(run.metrics, dataset.problems, str(Path(args.out) if args.out else folder))
        if results:
            print_gates(results)
    if any(not r.passed for r in results):
        failed = ", ".join(f"{r.gate.text} (got {'nothing' if r.value is None else f'{r.value:.3f}'})"
                           for r in results if not r.passed)
        print(f"zhiku: gate failed: {failed}", file=sys.stderr)
        return GATE_FAILED
    return 0


def _judge(kb, args):
    from .evaluate.judging import RunJudge
    return RunJudge.for_kb(kb, args.judge_model)


def _runs(args) -> int:
    from .evaluate.runs import RunStore
    from .render_eval import print_runs
    with _open(args) as kb:
        store = RunStore(kb)
        if args.prune:
            gone = store.prune()
            print(f"forgot {len(gone)} runs whose folder was deleted", file=sys.stderr)
        rows = store.list()
    if args.json:
        emit_json([r.__dict__ for r in rows])
    else:
        print_runs(rows)
    return 0


def _show(args) -> int:
    from .evaluate.runs import RunStore
    from .render_eval import print_run
    with _open(args) as kb:
        run = RunStore(kb).load(args.run)
    if args.json:
        emit_json({**run.metrics, "folder": run.folder})
    else:
        print_run(run.metrics, folder=run.folder)
    return 0


def _compare(args) -> int:
    from .evaluate.compare import compare
    from .evaluate.report import comparison_html, markdown_summary
    from .evaluate.runs import RunStore, load_folder
    from .render_eval import print_comparison
    folders = [Path(r).expanduser() for r in (args.run_a, args.run_b)]
    if all((f / "metrics.json").is_file() for f in folders) and not args.judge:  # two run folders: no KB needed
        a, b = (load_folder(f) for f in folders)
        result = compare(a, b)
    else:
        with _open(args, _gen_overrides(args)) as kb:
            store = RunStore(kb)
            a, b = store.load(args.run_a), store.load(args.run_b)
            result = compare(a, b)
            if args.judge:
                _judge(kb, args).pairwise_flips(result, a, b)
    if args.report:
        Path(args.report).write_text(comparison_html(result), encoding="utf-8")
    if args.markdown:
        Path(args.markdown).write_text(markdown_summary(b.metrics, b.snapshot, comparison=result), encoding="utf-8")
    if args.json:
        emit_json(result)
    else:
        print_comparison(result)
    return 0


def _generate(args) -> int:
    from .answer.pipeline import sampling_from
    from .evaluate.synth import generate_cases, write_cases
    from .render_eval import SynthBar
    if args.n < 1:
        raise UsageError("--n must be at least 1")
    out = Path(args.out)
    if out.exists() and not args.force:
        raise UsageError(f"{out} already exists", "choose another --out file, or pass --force to replace it")
    with _open(args, _gen_overrides(args)) as kb:
        answerer = _answerer(kb)
        if answerer.generator is None:
            raise UsageError("eval generate needs a model", "drop --no-llm, or set generate.backend to local/openai")
        with SynthBar(args.n) as bar:
            result = generate_cases(kb, answerer.generator, args.n, seed=args.pick_seed, progress=bar,
                                    sampling=sampling_from(kb.settings.generate))
    write_cases(result.cases, out, overwrite=True)
    print(f"wrote {len(result.cases)} synthetic cases to {out} ({result.attempts} chunks tried, "
          f"{result.eligible} eligible)", file=sys.stderr)
    if result.drops:
        reasons = ", ".join(f"{k}: {v}" for k, v in sorted(result.drops.items(), key=lambda kv: -kv[1]))
        print(f"dropped: {reasons}", file=sys.stderr)
    if len(result.cases) < args.n:
        print(f"fewer than the {args.n} asked for: the model's drafts failed the checks above; "
              "a larger model (--model, or --backend openai) keeps more", file=sys.stderr)
    return 0 if result.cases else 1


def cmd_tune(args) -> int:
    from .evaluate.dataset import load_dataset
    from .evaluate.tune import TuneOptions, tune, write_choice
    from .render_eval import print_leaderboard
    dataset = load_dataset(args.dataset)
    if not dataset.cases:
        raise UsageError(f"no valid cases in {args.dataset}", "see docs/evaluation.md for the format")
    from .evaluate.gates import KNOWN
    args.metric = args.metric.strip().lower()
    if args.limit < 0:
        raise UsageError("--limit must be 0 (all) or more")
    if args.metric not in KNOWN:
        raise UsageError(f"unknown metric {args.metric!r}", f"known metrics: {', '.join(KNOWN)}")
    if args.metric not in ("hit@1", "hit@3", "hit@5", "hit@10", "mrr", "ndcg@10") and not args.answers:
        raise UsageError(f"{args.metric} is an answer metric", "add --answers to tune on answers (slow)")
    options = TuneOptions(metric=args.metric, quick=args.quick, answers=args.answers, rerank=args.rerank,
                          limit=args.limit)
    with _open(args, settings_overrides(args.setting)) as kb:
        board = tune(kb, dataset, options, progress=lambda msg: print(msg, file=sys.stderr, flush=True))
        if args.write and board.best is not None:
            path = write_choice(kb.settings.home, board.best)
    if args.json:
        emit_json(board.as_dict())
    else:
        print_leaderboard(board, written=args.write)
    if args.write and board.best is not None:
        print(f"wrote the winning settings to {path}", file=sys.stderr)
    return 0
