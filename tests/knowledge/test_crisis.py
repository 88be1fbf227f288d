from __future__ import annotations

import pytest

from knowledge.crisis import CrisisDetector
from knowledge.models import KnowledgeBase
from knowledge.normalize import Normalizer


@pytest.fixture(scope="module")
def detector(kb: KnowledgeBase) -> CrisisDetector:
    return CrisisDetector(kb.crisis, Normalizer(kb.synonyms))


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("もう死にたい", "self_harm"),
        ("ｼﾆﾀｲ", "self_harm"),
        ("I want to die", "self_harm"),
        ("夫に殴られました", "dv"),
        ("My husband hits me when he drinks", "dv"),
        ("子どもを叩いてしまうのが止められない", "parent_harm"),
        ("隣の家から毎晩泣き叫ぶ声がする", "abuse"),
        ("赤ちゃんが息をしていない", "child_danger"),
        ("my baby swallowed a button", "child_danger"),
        ("子どもがボタン電池を飲み込んだ", "poisoning"),
        ("くびを しめられた", "dv"),
        ("もう しにたい", "self_harm"),
    ],
)
def test_crisis_messages_are_caught(detector: CrisisDetector, text: str, category: str) -> None:
    hit = detector.detect(text)
    assert hit is not None and hit.category.id == category


@pytest.mark.parametrize(
    "text",
    [
        "子どもがいる家庭の手続き",
        "I play with my kids at the park",
        "虐待かもしれないと思ったらどこに連絡？",
        "Where can I report child abuse?",
        "DVの相談窓口を教えて",
        "児童手当はいつ振り込まれますか",
    ],
)
def test_information_questions_are_not_crises(detector: CrisisDetector, text: str) -> None:
    assert detector.detect(text) is None


def test_no_kb_example_question_sets_off_the_detector(detector: CrisisDetector, kb: KnowledgeBase) -> None:
    hits = [q for e in kb.entries.values() for _l, q in e.question_list() if detector.detect(q)]
    assert hits == []
