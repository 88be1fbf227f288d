"""Matching quality and speed.

Prints, side by side on the same dev set (bench/devset.yaml, kept apart from the KB's examples):
- our pipeline (crisis words, handoff phrases, SudachiPy normalisation, word + reading evidence);
- the same pipeline with a script-run tokenizer instead of SudachiPy (is the analyser worth it?);
- the pipeline with the meaning signal switched on (chiVe vectors, knowledge/vectors.py; off by default);
- a naive baseline: rapidfuzz WRatio on the raw text against every example question, at its best threshold.
Then match latency p50/p99 (cold normaliser cache) with the real KB and synthetic KBs of 1,000 and
10,000 entries, and peak RSS.

Run: .venv/bin/python bench/match.py [--details]
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

from rapidfuzz import fuzz, process

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.settings import Settings  # noqa: E402
from handlers.engine import Engine  # noqa: E402
from knowledge.evaluation import DevItem, Report, Verdict, evaluate, load_devset  # noqa: E402
from knowledge.loader import load_kb  # noqa: E402
from knowledge.matcher import Candidate, MatchConfig, Matcher, MatchResult, Outcome  # noqa: E402
from knowledge.models import Entry, KnowledgeBase  # noqa: E402
from knowledge.normalize import Normalizer, ScriptTokenizer  # noqa: E402

DEVSET = ROOT / "bench" / "devset.yaml"
MEANING_WEIGHT = 0.5  # the meaning signal switched on, for the "+ meaning" lines (off by default)
# Held out: never used to tune.
TESTSETS = tuple(ROOT / "bench" / f"testset{n}.yaml" for n in ("", "2", "3", "4", "5", "6"))


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def engine_for(kb: KnowledgeBase, normalizer: Normalizer, settings: Settings) -> Engine:
    matcher = Matcher(kb, normalizer, settings.match.config())
    return Engine(kb, matcher, sessions=lambda: None, config=settings.engine_config())  # type: ignore[arg-type,return-value]


class PreviousMatcher(Matcher):
    """The matcher as it decided before per-language calibration: one margin over any other topic, one
    coverage rule, one-option clarify menus. Same scores; kept here to print next to the current one."""

    def match(self, text: str) -> MatchResult:
        return previous_decide(self.scores(text), self.config)


def previous_decide(ranked: list[Candidate], config: MatchConfig) -> MatchResult:
    if not ranked or ranked[0].score < 28.0:
        return MatchResult(Outcome.FALLBACK, ranked[: config.max_candidates])
    best = ranked[0]
    rival = next((c for c in ranked[1:] if c.topic != best.topic), None)
    ahead = rival is None or best.score - rival.score >= 10.0
    covered = best.coverage >= 0.45 or best.score >= 50.0
    if best.score >= 36.0 and ahead and covered:
        return MatchResult(Outcome.ANSWER, [best])
    return MatchResult(Outcome.CLARIFY, [c for c in ranked if c.score >= 28.0][: config.max_candidates])


def ours(engine: Engine) -> object:
    def classify(item: DevItem) -> Verdict:
        d = engine.classify(item.q)
        return Verdict(
            d.action, d.topic, tuple(c.topic for c in d.candidates), d.crisis.category.id if d.crisis else None
        )

    return classify


def baseline(kb: KnowledgeBase, items: list[DevItem]) -> tuple[Report, float]:
    choices: list[str] = []
    topics: list[str] = []
    for e in kb.entries.values():
        for _lang, q in e.question_list():
            choices.append(q)
            topics.append(e.topic)
    best: tuple[float, Report] | None = None
    hits = {i: process.extractOne(i.q, choices, scorer=fuzz.WRatio) for i in items}
    for threshold in range(40, 100, 2):

        def classify(item: DevItem, t: int = threshold) -> Verdict:
            hit = hits[item]
            if hit is None or hit[1] < t:
                return Verdict("fallback")
            return Verdict("answer", topics[hit[2]])

        r = evaluate(items, classify)
        if best is None or r.rate() > best[1].rate():
            best = (threshold, r)
    assert best is not None
    return best[1], best[0]


def synthetic_kb(kb: KnowledgeBase, n: int, seed: int = 7) -> KnowledgeBase:
    """n entries: real entries cloned with their questions varied by extra words from the KB's vocabulary."""
    rng = random.Random(seed)
    real = list(kb.entries.values())
    vocab = sorted(
        {w for e in real for _l, q in e.question_list() for w in q.split()}
        | {
            "函館",
            "市内",
            "近く",
            "平日",
            "土曜",
            "午後",
            "午前",
            "先月",
            "来月",
            "上の子",
            "下の子",
            "双子",
            "保護者",
            "祖父母",
            "職場",
            "駅前",
            "五稜郭",
            "湯の川",
            "美原",
            "本町",
            "西部地区",
            "冬休み",
            "夏休み",
            "春休み",
        }
    )
    entries: dict[str, Entry] = {}
    for i in range(n):
        base = real[i % len(real)]
        if i < len(real):
            entries[base.id] = base
            continue
        questions = {
            lang: [f"{rng.choice(vocab)} {q} {rng.choice(vocab)}" for q in qs] for lang, qs in base.questions.items()
        }
        clone = base.model_copy(update={"id": f"{base.id}-s{i}", "questions": questions, "related": []})
        entries[clone.id] = clone
    return kb.model_copy(update={"entries": entries})


def latency(engine: Engine, queries: list[str]) -> tuple[float, float, float, float]:
    """p50 and p99 of wall time, then of this thread's CPU time (ms). On a loaded machine the wall time
    includes the waits for a core; the CPU time is the work classify() itself does."""
    engine.classify("ウォームアップ")  # the language detector and crisis patterns are built on first use
    wall: list[float] = []
    cpu: list[float] = []
    for q in queries:
        t0, c0 = time.perf_counter_ns(), time.thread_time_ns()
        engine.classify(q)
        cpu.append((time.thread_time_ns() - c0) / 1e6)
        wall.append((time.perf_counter_ns() - t0) / 1e6)
    out: list[float] = []
    for samples in (wall, cpu):
        samples.sort()
        out += [statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.99))]]
    return out[0], out[1], out[2], out[3]


def fmt(r: Report) -> str:
    d = r.as_dict()
    return (
        f"overall {d['overall']:.1%}  (with clarify {d['overall_with_clarify']:.1%})  answer {d['answer']:.1%}  "
        f"crisis {d['crisis']:.1%}  out-of-scope held back {d['out_of_scope_held_back']:.1%}  "
        f"handoff {d['handoff']:.1%}  wrong answers {d['wrong_answers']}  false alarms {d['false_alarms']}"
    )


def by_lang(items: list[DevItem], engine: Engine) -> str:
    """Right first time among the answerable messages of each language, and confident wrong answers over all."""
    parts = []
    for lang in sorted({i.lang for i in items}):
        sub = [i for i in items if i.lang == lang]
        r = evaluate(sub, ours(engine))  # type: ignore[arg-type]
        parts.append(
            f"{lang} answerable {r.rate('answer'):.1%} ({r.by_expect['answer']}),"
            f" wrong {r.wrong_answers / len(sub):.1%}"
        )
    return "; ".join(parts)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--details", action="store_true", help="list the dev-set failures")
    args = ap.parse_args()
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    kb = load_kb(settings.kb_path)
    items = load_devset(DEVSET)
    print(f"dev set: {len(items)} messages; KB: {len(kb.entries)} entries, {len(kb.topics)} topics")

    t0 = time.perf_counter()
    sudachi = Normalizer(kb.synonyms)
    engine = engine_for(kb, sudachi, settings)
    build_ms = (time.perf_counter() - t0) * 1000
    report = evaluate(items, ours(engine))  # type: ignore[arg-type]
    print(f"ours (SudachiPy)      : {fmt(report)}")
    previous = Engine(
        kb,
        PreviousMatcher(kb, sudachi, settings.match.config()),
        sessions=lambda: None,
        config=settings.engine_config(),
    )  # type: ignore[arg-type,return-value]
    print(f"previous decision     : {fmt(evaluate(items, ours(previous)))}")  # type: ignore[arg-type]
    meaning = Engine(
        kb,
        Matcher(kb, sudachi, replace(settings.match.config(), semantic_weight=MEANING_WEIGHT)),
        sessions=lambda: None,
        config=settings.engine_config(),
    )  # type: ignore[arg-type,return-value]
    print(f"ours + meaning (chiVe): {fmt(evaluate(items, ours(meaning)))}")  # type: ignore[arg-type]
    script_engine = engine_for(kb, Normalizer(kb.synonyms, ScriptTokenizer()), settings)
    print(f"ours (script tokens)  : {fmt(evaluate(items, ours(script_engine)))}")  # type: ignore[arg-type]
    base, threshold = baseline(kb, items)
    print(f"baseline WRatio @{threshold:<3}   : {fmt(base)}")
    print(f"ratio ours/baseline overall: {report.rate() / max(base.rate(), 1e-9):.2f}x")
    kinds = ", ".join(f"{k} {report.ok_by_kind[k]}/{n}" for k, n in sorted(report.by_kind.items()))
    print(f"ours by kind: {kinds}")
    print(f"  by language: {by_lang(items, engine)}")
    for path in TESTSETS:
        held_out = load_devset(path)
        held = evaluate(held_out, ours(engine))  # type: ignore[arg-type]
        held_base, _t = baseline(kb, held_out)
        print(f"held-out {path.name} ({len(held_out)} messages), same settings:")
        print(f"  ours                : {fmt(held)}")
        print(f"  by language         : {by_lang(held_out, engine)}")
        print(f"  + meaning (chiVe)   : {fmt(evaluate(held_out, ours(meaning)))}")  # type: ignore[arg-type]
        print(f"  previous decision   : {fmt(evaluate(held_out, ours(previous)))}")  # type: ignore[arg-type]
        print(f"  previous by language: {by_lang(held_out, previous)}")
        print(f"  baseline WRatio     : {fmt(held_base)}")
    if args.details:
        for item, v in report.failures:
            print(
                f"  MISS [{item.kind}] {item.q!r}: expected {item.expect}/{item.topic}, got {v.action}/{v.topic}"
                f" {v.candidate_topics}"
            )

    rng = random.Random(1)
    fillers = ["", "すみません、", "あの、", "教えてください。", "至急", "ねえ"]
    queries = [
        f"{rng.choice(fillers)}{i.q}{rng.choice(['', '？', 'です', ' please'])}" for i in items for _ in range(4)
    ]
    queries = list(dict.fromkeys(queries))
    print(f"\nlatency of classify() over {len(queries)} distinct queries, cold cache (index build time in brackets):")
    p50, p99, c50, c99 = latency(engine_for(kb, Normalizer(kb.synonyms), settings), queries)
    print(
        f"  real KB ({len(kb.entries)} entries) [{build_ms:.0f} ms]: wall p50 {p50:.2f} ms  p99 {p99:.2f} ms;"
        f"  CPU p50 {c50:.2f} ms  p99 {c99:.2f} ms"
    )
    for n, target in ((1000, 5.0), (10000, 30.0)):
        big = synthetic_kb(kb, n)
        t0 = time.perf_counter()
        eng = engine_for(big, Normalizer(big.synonyms), settings)
        build = time.perf_counter() - t0
        p50, p99, c50, c99 = latency(eng, queries)
        verdict = "ok" if p99 <= target else "OVER TARGET"
        print(
            f"  synthetic {n:>6} entries [{build:.1f} s]: wall p50 {p50:.2f} ms  p99 {p99:.2f} ms"
            f" (target p99 <= {target:.0f} ms: {verdict});  CPU p50 {c50:.2f} ms  p99 {c99:.2f} ms"
        )
    print(f"  load average while measuring: {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    print(f"peak RSS: {rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
