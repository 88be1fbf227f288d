"""Scoring a classifier on the dev set (bench/devset.yaml): shared by the benchmark and the floor test."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


@dataclass(frozen=True, slots=True)
class DevItem:
    q: str
    lang: str
    expect: str  # answer | urgent | fallback | handoff
    topic: str | None
    kind: str


@dataclass(frozen=True, slots=True)
class Verdict:
    action: str
    topic: str | None = None
    candidate_topics: tuple[str, ...] = ()
    crisis: str | None = None


@dataclass
class Report:
    total: int = 0
    correct: int = 0  # answers must be the right topic; a clarify does not count
    correct_lenient: int = 0  # a clarify listing the right topic counts (the bot asked instead of guessing)
    by_expect: Counter[str] = field(default_factory=Counter)
    ok_by_expect: Counter[str] = field(default_factory=Counter)
    by_kind: Counter[str] = field(default_factory=Counter)
    ok_by_kind: Counter[str] = field(default_factory=Counter)
    wrong_answers: int = 0  # confident answers with the wrong topic (the worst failure)
    false_alarms: int = 0  # urgent on a non-crisis message
    failures: list[tuple[DevItem, Verdict]] = field(default_factory=list)

    def rate(self, expect: str | None = None) -> float:
        if expect is None:
            return self.correct / self.total if self.total else 0.0
        n = self.by_expect[expect]
        return self.ok_by_expect[expect] / n if n else 0.0

    @property
    def lenient_rate(self) -> float:
        return self.correct_lenient / self.total if self.total else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "overall": round(self.rate(), 4),
            "overall_with_clarify": round(self.lenient_rate, 4),
            "answer": round(self.rate("answer"), 4),
            "crisis": round(self.rate("urgent"), 4),
            "out_of_scope_held_back": round(self.rate("fallback"), 4),
            "handoff": round(self.rate("handoff"), 4),
            "wrong_answers": self.wrong_answers,
            "false_alarms": self.false_alarms,
        }


def load_devset(path: Path) -> list[DevItem]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [
        DevItem(str(i["q"]), str(i["lang"]), str(i["expect"]), i.get("topic"), str(i.get("kind", "")))
        for i in data["items"]
    ]


def judge(item: DevItem, v: Verdict) -> tuple[bool, bool]:
    """(strictly correct, correct when a clarify with the right topic counts)."""
    if item.expect == "answer":
        strict = v.action == "answer" and v.topic == item.topic
        return strict, strict or (v.action == "clarify" and item.topic in v.candidate_topics)
    if item.expect == "urgent":
        ok = v.action == "urgent"
        return ok, ok
    if item.expect == "fallback":
        ok = v.action in ("fallback", "clarify")
        return ok, ok
    ok = v.action == item.expect
    return ok, ok


def evaluate(items: list[DevItem], classify: Callable[[DevItem], Verdict]) -> Report:
    r = Report()
    for item in items:
        v = classify(item)
        strict, lenient = judge(item, v)
        r.total += 1
        r.correct += strict
        r.correct_lenient += lenient
        r.by_expect[item.expect] += 1
        r.ok_by_expect[item.expect] += strict
        r.by_kind[item.kind] += 1
        r.ok_by_kind[item.kind] += strict
        if v.action == "answer" and v.topic != item.topic:
            r.wrong_answers += 1
        if v.action == "urgent" and item.expect != "urgent":
            r.false_alarms += 1
        if not strict:
            r.failures.append((item, v))
    return r
