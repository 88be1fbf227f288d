"""The learned signal of the crisis detector: trained from the curated examples when the detector is built,
adding what the rules miss without raising look-alike worries (the figures are in bench/crisis.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from knowledge.crisis import CrisisDetector, LearnedConfig, Level
from knowledge.crisis_learned import NaiveBayes
from knowledge.models import KnowledgeBase
from knowledge.normalize import Normalizer


@pytest.fixture(scope="module")
def detectors(kb: KnowledgeBase) -> tuple[CrisisDetector, CrisisDetector]:
    normalizer = Normalizer(kb.synonyms)
    return CrisisDetector.for_kb(kb, normalizer), CrisisDetector.for_kb(
        kb, normalizer, learned=LearnedConfig(enabled=False)
    )


def test_trained_on_every_label_of_the_examples(kb: KnowledgeBase, detectors: tuple[CrisisDetector, ...]) -> None:
    model = detectors[0].model
    assert set(model.labels) == set(kb.crisis.examples) | {"none"}
    assert {label for label in model.labels if label.startswith("urgent:")} == {
        f"urgent:{c.id}" for c in kb.crisis.categories if c.level == "urgent"
    }
    # Built from the examples alone, the same every time: the model is reproducible from the YAML.
    examples = [(t, label) for label, texts in kb.crisis.examples.items() for t in texts]
    again = NaiveBayes(examples)
    text = "おかあさんが ごはん くれへん"
    assert again.predict(text) == NaiveBayes(examples).predict(text)
    assert len(kb.crisis.examples["none"]) >= 300 and sum(map(len, kb.crisis.examples.values())) >= 1000


def test_a_child_in_dialect_the_rules_miss_is_urgent(detectors: tuple[CrisisDetector, CrisisDetector]) -> None:
    learned, rules = detectors
    text = "おかあさんが ごはん くれへん"
    assert rules.assess(text).level == Level.NONE
    a = learned.assess(text)
    assert a.level == Level.URGENT and a.category == "child_sos"
    assert a.signals == ("learned:urgent:child_sos",)
    assert learned.screen(text), "the intake's screen must flag what the learned signal flags"


@pytest.mark.parametrize(
    "text",
    [
        "保育園に全部落ちてしまった",
        "2歳の娘がお友達を叩いちゃう",
        "子どもが熱を出して死ぬほど心配",
        "殺虫剤を子ども部屋で使っても平気？",
        "ボタン電池を飲み込まないようにする工夫",
        "孩子的疫苗在哪里打？",
        "my toddler keeps hitting the dog",
    ],
)
def test_look_alike_worries_are_not_raised_to_urgent(
    detectors: tuple[CrisisDetector, CrisisDetector], text: str
) -> None:
    assert detectors[0].assess(text).level != Level.URGENT


def test_on_only_with_the_kb_questions(kb: KnowledgeBase, detectors: tuple[CrisisDetector, CrisisDetector]) -> None:
    """Without the KB's questions among the ordinary examples the classifier is not trained."""
    assert len(CrisisDetector(kb.crisis, Normalizer(kb.synonyms)).model) == 0
    assert len(detectors[1].model) == 0 and len(detectors[0].model) > 10_000


def test_only_japanese_and_english_text_is_classified(detectors: tuple[CrisisDetector, CrisisDetector]) -> None:
    learned, rules = detectors
    for text in ("我的孩子每天都很开心", "아이가 오늘 유치원에 갔어요"):
        assert learned.assess(text) == rules.assess(text)


REVIEWED_ROUNDS = {f"crisis_heldout{n}.yaml" for n in range(2, 10)}


def test_no_bench_message_is_a_training_example(kb: KnowledgeBase) -> None:
    bench = Path(__file__).resolve().parents[2] / "bench"
    examples = {t for texts in kb.crisis.examples.values() for t in texts}
    for path in sorted(bench.glob("crisis_*.yaml")):
        if path.name == "crisis_baseline.yaml":  # the old detector's phrases, not messages
            continue
        if path.name in REVIEWED_ROUNDS:  # measured, fixed, then added as examples (knowledge/kb/crisis/reviewed.yaml)
            continue
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        items = data["items"] if isinstance(data, dict) else data
        assert examples.isdisjoint(i["text"] for i in items), path.name


@pytest.mark.parametrize("text", ["ワンオペで心がもうもたない", "気持ちがもたない"])
def test_confident_distress_the_rules_miss_is_offered_a_person(
    detectors: tuple[CrisisDetector, CrisisDetector], text: str
) -> None:
    learned, rules = detectors
    assert rules.assess(text).level == Level.NONE
    a = learned.assess(text)
    assert a.level == Level.DISTRESS and a.signals == ("learned:distress",)


def test_the_learned_signal_raises_no_kb_question(
    kb: KnowledgeBase, detectors: tuple[CrisisDetector, CrisisDetector]
) -> None:
    """Neither urgent nor the offer of a person for an ordinary question the KB answers."""
    learned, rules = detectors
    questions = [q for e in kb.entries.values() for _lang, q in e.question_list()]
    raised = [q for q in questions if learned.assess(q).level.rank > rules.assess(q).level.rank]
    assert raised == []


def test_the_look_alike_examples_are_not_raised(
    kb: KnowledgeBase, detectors: tuple[CrisisDetector, CrisisDetector]
) -> None:
    learned, rules = detectors
    raised = [t for t in kb.crisis.examples["none"] if learned.assess(t).level.rank > rules.assess(t).level.rank]
    assert raised == []


def test_a_child_hurting_a_sibling_is_not_a_parents_fear(detectors: tuple[CrisisDetector, CrisisDetector]) -> None:
    """The classifier does not know who acts: a child as the agent keeps it from reading a parent's fear."""
    learned, rules = detectors
    for text in ("娘が弟を蹴ってしまう", "上の子が赤ちゃんを叩いてしまいそう"):
        assert rules.assess(text).level == Level.NONE
        assert learned.assess(text).level != Level.URGENT, text


def test_distress_from_the_classifier_can_be_switched_off(kb: KnowledgeBase) -> None:
    off = CrisisDetector.for_kb(kb, Normalizer(kb.synonyms), learned=LearnedConfig(distress_margin=None))
    assert off.assess("ワンオペで心がもうもたない").level == Level.NONE
