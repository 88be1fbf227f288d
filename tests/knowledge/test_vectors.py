"""knowledge/vectors.py: chiVe's vectors as built by `make setup` (scripts/build_vectors.py), looked up by
spaCy's own word keys, and the matcher's meaning signal that reads them (off by default)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from knowledge.matcher import Matcher
from knowledge.models import KnowledgeBase
from knowledge.normalize import Normalizer
from knowledge.vectors import DEFAULT_PATH, WordVectors, shared_vectors


@pytest.fixture(scope="module")
def vectors() -> WordVectors:
    found = shared_vectors()
    assert found is not None, f"{DEFAULT_PATH} is missing: `make setup` builds it (scripts/build_vectors.py)"
    return found


def test_word_keys_are_spacys_so_the_words_are_found(vectors: WordVectors) -> None:
    assert len(vectors) == 480_443 and vectors.dims == 300
    for word in ("保育園", "医療費", "予防接種", "離乳食", "熱"):
        assert vectors.vector(word) is not None, word  # a wrong hash would find (almost) nothing
    assert vectors.vector("ほげほげ保育園ふがふが") is None


def test_near_words_are_near_and_others_are_not(vectors: WordVectors) -> None:
    def cos(a: str, b: str) -> float:
        va, vb = vectors.vector(a), vectors.vector(b)
        assert va is not None and vb is not None
        return float(np.dot(va, vb))

    assert cos("保育所", "保育園") > 0.85
    assert cos("予防接種", "ワクチン") > 0.7
    assert cos("保育園", "公園") < 0.5


def test_the_meaning_signal_credits_an_unknown_word_close_to_a_kb_word(kb: KnowledgeBase) -> None:
    normalizer = Normalizer(kb.synonyms)
    off = Matcher(kb, normalizer)
    on = Matcher(kb, normalizer, replace(off.config, semantic_weight=0.5))
    question = "母乳のことで相談したい"  # 母乳 is not a KB word; 授乳 is
    best = on.scores(question)[0]
    before = {c.entry_id: c.coverage for c in off.scores(question)}
    assert best.coverage > before.get(best.entry_id, 0.0)
    assert off.config.semantic_weight == 0.0  # off unless configured (MATCH__SEMANTIC_WEIGHT)
