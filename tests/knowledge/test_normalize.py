from __future__ import annotations

import pytest

from knowledge.language import choose_language, detect_language
from knowledge.models import KnowledgeBase
from knowledge.normalize import Normalizer, clean


@pytest.fixture(scope="module")
def norm(kb: KnowledgeBase) -> Normalizer:
    return Normalizer(kb.synonyms)


@pytest.mark.parametrize("variant", ["子ども", "子供", "こども"])
def test_child_spellings_meet(norm: Normalizer, variant: str) -> None:
    assert "子供" in norm(f"{variant}の健診").words.split()


def test_width_and_case_fold() -> None:
    assert clean("ＡＢＣ　１２３ Hello") == "abc 123 hello"


def test_control_characters_are_dropped() -> None:
    assert clean("保育\u0000園\u200b\x1b") == "保育 園"


def test_synonyms_fold_to_one_form(norm: Normalizer) -> None:
    assert norm("ワクチンの予約").words == norm("予防接種の予約").words
    assert norm("保育所の申込み").words == norm("保育園の申し込み").words


def test_synonym_inside_its_canonical_form_is_not_folded_twice(norm: Normalizer) -> None:
    assert norm("予防接種").words == norm("ワクチン").words


def test_fillers_and_polite_endings_are_removed(norm: Normalizer) -> None:
    assert norm("すみません、児童手当について教えてください").words == norm("児童手当").words


def test_kana_only_and_kanji_share_a_reading(norm: Normalizer) -> None:
    assert norm("じどうてあて").reading == norm("児童手当").reading


def test_homophone_typo_keeps_the_reading(norm: Normalizer) -> None:
    assert norm("予防摂取").reading == norm("予防接種").reading


def test_english_stopwords_and_plurals(norm: Normalizer) -> None:
    assert norm("Where can I get vaccinations for my kids?").words == "vaccination kid"


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("児童手当", "ja"),
        ("ほいくえん", "ja"),
        ("daycare please", "en"),
        ("어린이집", "ko"),
        ("Tôi cần giúp", "vi"),
        ("🙂🙂", None),
        ("123", None),
    ],
)
def test_language_by_script(text: str, lang: str | None) -> None:
    assert detect_language(text) == lang


def test_unsupported_language_falls_back_to_english_and_short_replies_keep_the_known_one() -> None:
    assert choose_language("ko", None, ("ja", "en"), "ja") == "en"
    assert choose_language(None, "en", ("ja", "en"), "ja") == "en"
    assert choose_language(None, None, ("ja", "en"), "ja") == "ja"


def test_sudachi_tokenizer_is_safe_to_share_between_threads() -> None:
    # The webhook thread and the inbox workers normalise text at the same time.
    import threading

    from knowledge.normalize import SudachiTokenizer

    tokenizer = SudachiTokenizer()
    failures: list[BaseException] = []

    def work() -> None:
        try:
            for i in range(200):
                assert tokenizer.tokens(f"キッズプラザの料金{i}")
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
