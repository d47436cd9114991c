"""CI gates: ``--fail-under METRIC=VALUE`` (``--fail-over`` for metrics where lower is better)."""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import UsageError
from .case_metrics import ANSWERS, LOWER_IS_BETTER, RETRIEVAL

KNOWN = RETRIEVAL + ANSWERS + ("judge_correctness", "judge_faithfulness")


@dataclass(frozen=True)
class Gate:
    metric: str
    threshold: float
    lower_is_better: bool  # the gate fails when the value is ABOVE the threshold

    @property
    def text(self) -> str:
        return f"{self.metric} {'<=' if self.lower_is_better else '>='} {self.threshold:g}"


@dataclass(frozen=True)
class GateResult:
    gate: Gate
    value: float | None

    @property
    def passed(self) -> bool:
        if self.value is None:
            return False
        return self.value <= self.gate.threshold if self.gate.lower_is_better else self.value >= self.gate.threshold


def parse_gate(spec: str, upper: bool = False) -> Gate:
    """``hit@5=0.85`` → Gate. ``upper`` is ``--fail-over`` (for false_refusal, unsupported_rate)."""
    name, sep, raw = spec.partition("=")
    name = name.strip().lower()
    flag = "--fail-over" if upper else "--fail-under"
    if not sep:
        raise UsageError(f"{flag} {spec!r} is not METRIC=VALUE", f"e.g. {flag} hit@5=0.85")
    if name not in KNOWN:
        raise UsageError(f"{flag}: unknown metric {name!r}", f"known metrics: {', '.join(KNOWN)}")
    try:
        value = float(raw)
    except ValueError:
        raise UsageError(f"{flag} {spec!r}: {raw!r} is not a number", "metrics are shares from 0 to 1") from None
    if not 0 <= value <= 1:
        raise UsageError(f"{flag} {spec!r}: {value:g} is outside 0–1", "metrics are shares from 0 to 1")
    if (name in LOWER_IS_BETTER) != upper:
        other = "--fail-over" if name in LOWER_IS_BETTER else "--fail-under"
        raise UsageError(f"{flag} {name}: for {name} {'lower' if name in LOWER_IS_BETTER else 'higher'} is better",
                         f"use {other} {name}={raw}")
    return Gate(name, value, upper)


def check(metrics: dict, gates: list[Gate]) -> list[GateResult]:
    """One result per gate; a metric the run did not measure fails its gate (never passes silently)."""
    return [GateResult(g, metrics.get(g.metric)) for g in gates]
