"""The judge as the eval commands use it: which model judges, per-case scores, run figures, pairwise flips."""
from __future__ import annotations

import dataclasses
import time

from ..errors import UsageError
from .judge import Judge, reference_for, summarise


class RunJudge:
    """Wraps ``Judge`` for ``zhiku eval --judge`` and ``zhiku eval compare --judge``."""

    def __init__(self, judge: Judge, model_name: str) -> None:
        self.judge = judge
        self.model_name = model_name
        self.seconds = 0.0

    @classmethod
    def for_kb(cls, kb, judge_model: str | None = None) -> "RunJudge":
        """The configured generator, or ``judge_model`` (a bundled pack, .gguf path or endpoint model id)."""
        from ..answer.pipeline import sampling_from
        from ..backends.generators import make_generator
        cfg = kb.settings.generate
        if judge_model:
            cfg = dataclasses.replace(cfg, model=judge_model)
        if cfg.backend == "none":
            raise UsageError("--judge needs a model, but generate.backend is none (or --no-llm was given)",
                             "judge with a model: --judge-model qwen2.5-1.5b, or --backend local/openai")
        gen = make_generator(cfg, kb.settings.model_dir)
        return cls(Judge(gen, sampling_from(cfg)), cfg.model)

    def judge_case(self, case, record: dict) -> dict:
        t = time.perf_counter()
        try:
            return self.judge.judge_case(case, record)
        finally:
            self.seconds += time.perf_counter() - t

    def summarise(self, run) -> None:
        """Add judge_correctness/judge_faithfulness and the judge's agreement figures to the run's metrics."""
        s = summarise(run.cases, self.model_name)
        for name in ("judge_correctness", "judge_faithfulness"):
            value = s[name]
            run.metrics["metrics"][name] = None if value is None else round(value, 4)
            run.metrics["higher_is_better"][name] = True
        run.metrics["judge"] = {**s["judge"], "seconds": round(self.seconds, 2)}

    def pairwise_flips(self, comparison: dict, a, b) -> None:
        """Judge every shared case whose answer changed, in both orders; only consistent wins count."""
        by_a = {c["id"]: c for c in a.cases if c.get("answer") is not None and not c.get("error")}
        tally = {"a": 0, "b": 0, "inconsistent": 0, "tie": 0}
        cases = []
        for cb in b.cases:
            ca = by_a.get(cb["id"])
            if ca is None or cb.get("answer") is None or cb.get("error") or ca["answer"] == cb["answer"]:
                continue
            verdict = self.judge.pairwise(cb["question"], ca["answer"], cb["answer"], reference_for(cb))
            tally[verdict.winner] = tally.get(verdict.winner, 0) + 1
            cases.append({"id": cb["id"], **verdict.as_dict()})
        comparison["judge_pairwise"] = {"model": self.model_name, "changed_answers": len(cases),
                                        "a_wins": tally["a"], "b_wins": tally["b"],
                                        "inconsistent": tally["inconsistent"] + tally["tie"], "cases": cases}
