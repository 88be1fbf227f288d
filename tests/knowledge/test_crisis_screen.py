"""The intake screen is a superset of urgent detection: it never turns away a message `detect` flags.

Checked on every message of every bench set (development and held-out), every training example, every
KB question and the urgent kinds of the detector's own tests; and it must let most ordinary questions
pass without the analyser, or it would not be worth having.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from knowledge.crisis import CrisisDetector, SimilarityConfig
from knowledge.models import KnowledgeBase
from knowledge.normalize import Normalizer
from tests.knowledge.test_crisis_kinds import URGENT_KINDS

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _bench_texts() -> list[str]:
    texts = []
    for path in sorted(BENCH.glob("crisis_*.yaml")):
        if path.name == "crisis_baseline.yaml":  # the old detector's phrases, not messages
            continue
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        items = data["items"] if isinstance(data, dict) else data
        texts += [i["text"] for i in items]
    return texts


@pytest.fixture(scope="module")
def detector(kb: KnowledgeBase) -> CrisisDetector:
    return CrisisDetector.for_kb(kb, Normalizer(kb.synonyms))


def test_bench_sets_are_all_read() -> None:
    names = {p.name for p in BENCH.glob("crisis_*.yaml")}
    assert {
        f"crisis_{n}.yaml"
        for n in ("dev", "heldout", "heldout2", "heldout3", "heldout4", "heldout5", "heldout6", "heldout7")
    } <= names


def test_screen_never_misses_an_urgent_message(detector: CrisisDetector, kb: KnowledgeBase) -> None:
    texts = _bench_texts()
    texts += [t for examples in kb.crisis.examples.values() for t in examples]
    texts += [q for e in kb.entries.values() for _lang, q in e.question_list()]
    texts += [t for t, _category in URGENT_KINDS]
    flagged = [t for t in texts if detector.detect(t) is not None]
    assert len(flagged) > 700
    missed = [t for t in flagged if not detector.screen(t)]
    assert not missed, missed


def test_screen_lets_most_ordinary_questions_pass(detector: CrisisDetector, kb: KnowledgeBase) -> None:
    questions = [q for e in kb.entries.values() for _lang, q in e.question_list()]
    passed = [q for q in questions if not detector.screen(q)]
    assert len(passed) >= 0.8 * len(questions)
    for text in ("児童手当はいつ振り込まれますか", "一時預かりの料金は？", "北海道の助成制度は？", "", "   "):
        assert not detector.screen(text), text


def test_kana_only_messages_always_go_on(detector: CrisisDetector) -> None:
    # the analyser reads kana freely, so no stem list can stand in for it
    assert detector.screen("ほいくえんの もうしこみ")


def test_with_the_similarity_signal_the_screen_is_detection_itself(kb: KnowledgeBase) -> None:
    det = CrisisDetector.for_kb(kb, Normalizer(kb.synonyms), SimilarityConfig(enabled=True))
    for text in ("児童手当はいつ振り込まれますか", "子どもが息をしていない"):
        assert det.screen(text) == (det.detect(text) is not None)
