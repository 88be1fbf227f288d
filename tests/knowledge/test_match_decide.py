"""The answer/clarify/fallback decision and the process-wide Sudachi dictionary."""

from __future__ import annotations

import threading
from dataclasses import replace

from knowledge.matcher import Candidate, MatchConfig, Matcher, Outcome, decide
from knowledge.normalize import SudachiTokenizer, shared_dictionary

CFG = MatchConfig()


def test_a_near_exact_match_is_answered_even_with_a_close_rival_topic() -> None:
    # A clarify whose best option scores 100 is a failure.
    ranked = [Candidate("a", "t1", 100.0, 1.0), Candidate("b", "t2", 95.0, 1.0)]
    result = decide(ranked, CFG)
    assert result.outcome == Outcome.ANSWER
    assert result.best is not None and result.best.entry_id == "a"


def test_a_keyword_that_fits_entries_of_several_topics_equally_is_asked_about() -> None:
    ranked = [Candidate("a", "t1", 92.0, 1.0), Candidate("b", "t2", 91.5, 1.0), Candidate("c", "t3", 91.0, 1.0)]
    result = decide(ranked, CFG)
    assert result.outcome == Outcome.CLARIFY
    assert [c.entry_id for c in result.candidates] == ["a", "b", "c"]


def test_entries_of_one_topic_that_fit_equally_are_not_asked_about() -> None:
    """Variants of one topic's answer (the others follow as related questions): the best is answered."""
    ranked = [Candidate("a", "t1", 92.0, 1.0), Candidate("a2", "t1", 91.5, 1.0), Candidate("a3", "t1", 91.0, 1.0)]
    result = decide(ranked, CFG)
    assert result.outcome == Outcome.ANSWER and [c.entry_id for c in result.candidates] == ["a"]
    asked = decide(ranked, replace(CFG, same_topic_ties=True))
    assert asked.outcome == Outcome.CLARIFY


def test_entries_of_the_same_topic_close_behind_do_not_stop_an_answer() -> None:
    ranked = [
        Candidate("a", "t1", 60.0, 0.8),
        Candidate("a2", "t1", 57.0, 0.8),
        Candidate("b", "t2", 40.0, 0.5),
    ]
    assert decide(ranked, CFG).outcome == Outcome.ANSWER


def test_close_entries_of_different_topics_are_asked_about() -> None:
    ranked = [Candidate("a", "t1", 50.0, 0.6), Candidate("b", "t2", 47.0, 0.6), Candidate("c", "t3", 20.0, 0.1)]
    result = decide(ranked, CFG)
    assert result.outcome == Outcome.CLARIFY
    assert [c.entry_id for c in result.candidates] == ["a", "b"]  # the far one is no sensible option


def test_a_lone_option_is_no_clarify() -> None:
    ranked = [Candidate("a", "t1", 33.0, 0.2), Candidate("b", "t2", 12.0, 0.1)]
    assert decide(ranked, CFG).outcome == Outcome.FALLBACK


def test_weak_coverage_is_not_answered() -> None:
    # Most of the question's words are unknown to the entry: out of scope more likely than not.
    ranked = [Candidate("a", "t1", 40.0, 0.3), Candidate("b", "t2", 20.0, 0.1)]
    assert decide(ranked, CFG).outcome != Outcome.ANSWER


def test_thresholds_follow_the_messages_language() -> None:
    assert CFG.for_text("保育園の申し込み") is CFG
    en = CFG.for_text("How do I apply for daycare?")
    assert en.min_coverage == CFG.en_min_coverage
    assert en.sure_threshold == CFG.en_sure_threshold
    # English: a lead in coverage over the rival topic counts even when the scores are close.
    ranked = [Candidate("a", "t1", 40.0, 0.6), Candidate("b", "t2", 37.0, 0.3)]
    assert decide(ranked, CFG).outcome == Outcome.CLARIFY
    assert decide(ranked, en).outcome == Outcome.ANSWER


def test_one_dictionary_per_process_shared_by_every_tokenizer() -> None:
    first, second = SudachiTokenizer(), SudachiTokenizer()
    assert first._dict is second._dict is shared_dictionary()


def test_the_shared_dictionary_is_built_once_under_concurrent_first_use() -> None:
    import knowledge.normalize as normalize

    saved = normalize._DICTIONARY
    normalize._DICTIONARY = None
    try:
        seen: list[int] = []
        barrier = threading.Barrier(4)

        def work() -> None:
            barrier.wait()
            tok = SudachiTokenizer()
            assert tok.tokens("保育園")
            seen.append(id(tok._dict))

        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(seen) == 4 and len(set(seen)) == 1
    finally:
        normalize._DICTIONARY = saved


def test_a_typo_is_looked_up_among_words_of_a_reachable_length_only(matcher: Matcher) -> None:
    # The length window may not change the result: the same word as a search of the whole vocabulary.
    from rapidfuzz import fuzz, process

    vocab = sorted(matcher._word_idf)
    for word in ("予坊接種", "ほいくえん", "託自室", "児童てあて", "vaccinatoin", "kindergarden", "ab"):
        hit = process.extractOne(word, vocab, scorer=fuzz.ratio, score_cutoff=matcher.config.typo_score)
        assert matcher._nearest_word(word) == (hit[0] if hit else word)


def test_a_long_message_whose_options_share_one_topic_is_answered_by_its_best_entry() -> None:
    """A story followed by two questions fits several entries of one topic: answer the best, not "which?"."""
    ranked = [
        Candidate("vacancy", "nursery", 38.1, 0.26),
        Candidate("april", "nursery", 36.1, 0.31),
        Candidate("apply", "nursery", 34.1, 0.24),
        Candidate("types", "facilities", 31.9, 0.35),
    ]
    story = "来年の4月から仕事に復帰する予定で、今1歳の娘を保育園に預けたいと思っています。" * 2
    assert len(story) >= CFG.long_chars
    assert decide(ranked, CFG.for_text("保育園 空き 申し込み")).outcome == Outcome.CLARIFY
    long = decide(ranked, CFG.for_text(story))
    assert long.outcome == Outcome.ANSWER and long.best is not None and long.best.entry_id == "vacancy"
    # Options of different topics are still asked about, however long the message.
    mixed = [ranked[0], Candidate("types", "facilities", 37.0, 0.35), ranked[1]]
    assert decide(mixed, CFG.for_text(story)).outcome == Outcome.CLARIFY


def test_a_bare_keyword_is_asked_about_even_within_one_topic() -> None:
    assert MatchConfig().for_text("ワクチン").same_topic_ties
    assert MatchConfig().for_text("vaccines").same_topic_ties
    assert not MatchConfig().for_text("予防接種の日に持っていく物は？").same_topic_ties
    assert not MatchConfig().for_text("What do I bring on vaccination day?").same_topic_ties
