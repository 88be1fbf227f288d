"""Fuzzy matching of a parent's question against the KB's example questions.

Everything is compared after normalisation (`knowledge.normalize`): content words in their dictionary
form, and the hiragana reading of those words. Three pieces of evidence per entry:
- words: the share of the query's content words, weighted by rarity (IDF over entries), that the
  entry's example questions use. Words the KB has never seen count against the match, which is what
  holds back out-of-scope questions; a word the KB lacks but spells almost like a KB word (a typo) is
  mapped onto it with rapidfuzz first;
- sounds: IDF-weighted overlap of reading bigrams with the best example question (kana-only writing,
  wrong kanji with the right reading, small slips);
- shape: rapidfuzz's partial similarity of the readings, which rewards a question that appears nearly
  whole inside a longer message;
- meaning: a Japanese word the KB has never seen, but whose chiVe vector (knowledge/vectors.py) is close to
  a KB word's (預け先 and 保育園, 通院費 and 医療費), earns part of that word's credit instead of counting
  against the match; the part is its cosine similarity times `semantic_weight`, and only similarities of at
  least `semantic_min` count.
Candidates come from inverted indexes over words and bigrams, so cost grows with the postings touched,
not with the size of the KB. `decide` turns the ranking into answer, clarify or fallback, with thresholds
calibrated per language on the dev set (Japanese and English scores are spread differently: English has no
readings, so its sound and shape evidence is weaker).
"""

from __future__ import annotations

import heapq
import math
import re
from collections import defaultdict
from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import lru_cache
from typing import Literal

import numpy as np
from rapidfuzz import fuzz, process

from knowledge.models import KnowledgeBase
from knowledge.normalize import Normalized, Normalizer, clean, to_hiragana
from knowledge.vectors import WordVectors, shared_vectors

UNKNOWN_DF = 0.5
_JA_SCRIPT = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff\uff66-\uff9f]")
_CONTENT_SCRIPT = re.compile(r"[\u30a0-\u30ff\u4e00-\u9fff]")  # katakana or kanji


class Outcome(StrEnum):
    ANSWER = "answer"
    CLARIFY = "clarify"
    FALLBACK = "fallback"


@dataclass(frozen=True, slots=True)
class MatchConfig:
    """Thresholds chosen on the dev set (bench/match.py prints the evidence); overridable in settings."""

    answer_threshold: float = 36.0
    clarify_threshold: float = 28.0
    margin: float = 7.0  # the best must lead the best entry of another topic by this much ...
    word_weight: float = 0.5
    sound_weight: float = 0.3
    shape_weight: float = 0.2
    max_candidates: int = 3
    pool: int = 15  # entries re-ranked with the question-level measures
    seed_df: float = 0.1  # bigrams in more than this share of entries do not seed candidates
    typo_score: float = 80.0  # rapidfuzz score for mapping an unknown word onto a KB word
    min_coverage: float = 0.6  # share of the query's word weight an entry must use before it is answered
    sure_threshold: float = 45.0  # ... unless its score is at least this
    certain_threshold: float = 90.0  # a match this close is answered whatever its rivals score
    coverage_margin: float = 1.0  # ... or lead by covering this much more of the query (1.0: never)
    clarify_window: float = 15.0  # clarify options score within this of the best
    tie_margin: float = 1.5  # entries this close, covering as much, are not told apart by the message
    # English messages (no Japanese script): readings carry no extra evidence, scores run lower.
    en_min_coverage: float = 0.45
    en_sure_threshold: float = 45.0
    en_coverage_margin: float = 0.1
    # Meaning (Japanese words unknown to the KB): credit = cosine × semantic_weight, for up to semantic_top
    # KB words at least semantic_min close. Off (0) by default: on the dev set it rescued no question and
    # let out-of-scope ones through (bench/match.py prints both); MATCH__SEMANTIC_WEIGHT=0.5 switches it on.
    semantic_weight: float = 0.0
    semantic_min: float = 0.6
    semantic_top: int = 3
    semantic_df: float = 0.03  # KB words in more than this share of entries take no meaning credit
    # A long message (a story, then the question, often two) fits several entries of one topic at once: its
    # best entry is answered (the others follow as related questions) instead of asking which.
    long_chars: int = 80
    one_topic_answers: bool = False
    # Entries of the best one's own topic that the message fits as well: asked about (True), or the best answered
    # with the others as related questions (False). A bare keyword (ワクチン, "vaccines") fits every entry of its
    # topic equally: it is always asked about.
    same_topic_ties: bool = False
    keyword_chars: int = 8  # a Japanese message shorter than this (spaces aside) is a bare keyword
    keyword_words: int = 3  # an English one of fewer words

    def for_text(self, text: str) -> MatchConfig:
        """The thresholds for this message's language and length."""
        config = self
        if len(text) >= self.long_chars:
            config = replace(config, one_topic_answers=True)
        japanese = bool(_JA_SCRIPT.search(text))
        bare = len("".join(text.split())) < self.keyword_chars if japanese else len(text.split()) < self.keyword_words
        if bare and not config.same_topic_ties:
            config = replace(config, same_topic_ties=True)
        if japanese:
            return config
        return replace(
            config,
            min_coverage=self.en_min_coverage,
            sure_threshold=self.en_sure_threshold,
            coverage_margin=self.en_coverage_margin,
        )


@dataclass(frozen=True, slots=True)
class Candidate:
    entry_id: str
    topic: str
    score: float
    coverage: float = 1.0  # share of the query's (IDF-weighted) words this entry's questions use


@dataclass(frozen=True, slots=True)
class MatchResult:
    outcome: Outcome
    candidates: list[Candidate] = field(default_factory=list)

    @property
    def best(self) -> Candidate | None:
        return self.candidates[0] if self.candidates else None


def _meaningful(word: str) -> bool:
    """A word that can carry a topic: two characters or more, with kanji or katakana (kana-only words are
    mostly function words and split readings)."""
    return len(word) >= 2 and _CONTENT_SCRIPT.search(word) is not None


def bigrams(reading: str) -> set[str]:
    if len(reading) < 2:
        return {reading} if reading else set()
    return {reading[i : i + 2] for i in range(len(reading) - 1)}


class Matcher:
    """Index of the KB's example questions; `match` is pure and safe to share between threads."""

    def __init__(
        self,
        kb: KnowledgeBase,
        normalizer: Normalizer,
        config: MatchConfig | None = None,
        vectors: WordVectors | Literal["shared"] | None = "shared",
    ) -> None:
        self.kb = kb
        self.normalize = normalizer
        self.config = config or MatchConfig()
        self._entry_ids: list[str] = list(kb.entries)
        # Out-of-scope words (synonyms.yaml) and, per entry, its example questions folded the same way.
        self._out_of_scope = [(_scope_fold(w), w.isascii()) for w in kb.synonyms.out_of_scope if _scope_fold(w)]
        self._entry_text = {
            eid: " ".join(_scope_fold(q) for _lang, q in kb.entries[eid].question_list()) for eid in self._entry_ids
        }
        self._entry_topics: list[str] = [kb.entries[e].topic for e in self._entry_ids]
        self._questions: list[list[tuple[str, set[str]]]] = []  # per entry: (reading, bigrams) per question
        word_post: dict[str, list[int]] = defaultdict(list)
        gram_post: dict[str, list[int]] = defaultdict(list)
        for idx, eid in enumerate(self._entry_ids):
            words: set[str] = set()
            grams: set[str] = set()
            qs: list[tuple[str, set[str]]] = []
            for _lang, question in kb.entries[eid].question_list():
                n = normalizer(question)
                b = bigrams(n.reading)
                qs.append((n.reading, b))
                words.update(n.words.split())
                grams |= b
            self._questions.append(qs)
            for w in words:
                word_post[w].append(idx)
            for g in grams:
                gram_post[g].append(idx)
        n_entries = max(len(self._entry_ids), 1)
        self._n = n_entries
        # Postings as index arrays: a query adds its weight to every entry of a posting in one step.
        self._word_post = {w: np.array(p, dtype=np.intp) for w, p in word_post.items()}
        seed_limit = n_entries * self.config.seed_df
        # Bigrams in too many entries find no candidates (they still count in re-ranking).
        self._seed_post = {g: np.array(p, dtype=np.intp) for g, p in gram_post.items() if len(p) <= seed_limit}
        self._word_idf = {w: math.log((n_entries + 1) / (len(p) + 0.5)) for w, p in word_post.items()}
        self._gram_idf = {g: math.log((n_entries + 1) / (len(p) + 0.5)) for g, p in gram_post.items()}
        self._unknown_idf = math.log((n_entries + 1) / UNKNOWN_DF)
        self._vocab_by_len: dict[int, list[str]] = defaultdict(list)
        for w in sorted(self._word_idf):
            self._vocab_by_len[len(w)].append(w)
        self._typo_fix = lru_cache(maxsize=8192)(self._nearest_word)
        # Self-weight of each question's bigrams, for the cosine-like sound measure.
        self._q_mass = [[self._mass(b) for _r, b in qs] for qs in self._questions]
        # Meaning: the vectors of the KB's Japanese words, one row each.
        if self.config.semantic_weight <= 0:
            self._vectors: WordVectors | None = None  # not even loaded
        else:
            self._vectors = shared_vectors() if vectors == "shared" else vectors
        self._sem_words: list[str] = []
        rows: list[np.ndarray] = []
        if self._vectors is not None:
            # Only topical KB words (used by few entries) take credit: a generic word (方, 物, 今週) is near
            # too many others to say anything about the question.
            topical = math.log((n_entries + 1) / (n_entries * self.config.semantic_df + 0.5))
            for w in sorted(self._word_idf):
                v = self._vectors.vector(w) if _meaningful(w) and self._word_idf[w] >= topical else None
                if v is not None:
                    self._sem_words.append(w)
                    rows.append(v)
        self._sem_matrix = np.vstack(rows) if rows else np.zeros((0, 1), dtype=np.float32)
        self._near = lru_cache(maxsize=8192)(self._nearest_meaning)

    def _mass(self, grams: set[str]) -> float:
        return sum(self._gram_idf.get(g, self._unknown_idf) for g in grams)

    def _nearest_word(self, word: str) -> str:
        """The KB word spelt most like an unknown word (a typo), or the word itself.

        Only words of a length that can reach the score are compared: rapidfuzz's ratio is at most
        2·min/(la+lb), so a cutoff of 80 needs 2/3 ≤ lb/la ≤ 3/2 (in general (100-c)/(100+c) ≤ ...).
        """
        la = len(word)
        cutoff = self.config.typo_score
        lo = math.ceil(la * (100 - cutoff) / (100 + cutoff))
        hi = math.floor(la * (100 + cutoff) / (100 - cutoff)) if cutoff < 100 else la
        choices = [v for length in range(lo, hi + 1) for v in self._vocab_by_len.get(length, ())]
        hit = process.extractOne(word, sorted(choices), scorer=fuzz.ratio, score_cutoff=cutoff)
        return str(hit[0]) if hit is not None else word

    def _nearest_meaning(self, word: str) -> tuple[tuple[str, float], ...]:
        """KB words close in meaning to an unknown word, with the credit each earns (closest first)."""
        if not self._sem_words or self._vectors is None or not _meaningful(word):
            return ()
        v = self._vectors.vector(word)
        if v is None:
            return ()
        cfg = self.config
        sims = self._sem_matrix @ v
        top = np.argsort(-sims)[: cfg.semantic_top]
        return tuple(
            (self._sem_words[i], float(sims[i]) * cfg.semantic_weight) for i in top if sims[i] >= cfg.semantic_min
        )

    def _query_words(self, n: Normalized) -> tuple[dict[str, float], list[tuple[float, tuple[tuple[str, float], ...]]]]:
        """Query words with their weights (unknown words that look like KB words are mapped onto them), and
        the unknown words close in meaning to KB words: (weight, the KB words with their credit)."""
        out: dict[str, float] = {}
        soft: list[tuple[float, tuple[tuple[str, float], ...]]] = []
        for w in n.words.split():
            if w not in self._word_idf and len(w) >= 2:
                w = self._typo_fix(w)
            if w not in self._word_idf:
                near = self._near(w)
                if near:
                    soft.append((self._word_idf[near[0][0]], near))
                    continue
            out[w] = self._word_idf.get(w, self._unknown_idf)
        return out, soft

    def scores(self, text: str) -> list[Candidate]:
        """Entries with any evidence, best first."""
        n = self.normalize(text)
        words, soft = self._query_words(n)
        grams = bigrams(n.reading)
        if not words and not soft and not grams:
            return []
        cfg = self.config
        word_total = (sum(words.values()) + sum(weight for weight, _near in soft)) or 1.0
        word_score = np.zeros(self._n)
        for w, weight in words.items():
            post = self._word_post.get(w)
            if post is not None:
                word_score[post] += weight / word_total  # an entry appears once per posting
        for weight, near in soft:
            gain = np.zeros(self._n)  # per entry, the best credit of the KB words it uses
            for kb_word, credit in near:
                post = self._word_post[kb_word]
                gain[post] = np.maximum(gain[post], credit)
            word_score += gain * (weight / word_total)
        q_mass = self._mass(grams) or 1.0
        gram_idf = self._gram_idf
        gram_score = np.zeros(self._n)
        for g in grams:
            post = self._seed_post.get(g)
            if post is not None:
                gram_score[post] += gram_idf[g] / q_mass
        ww = cfg.word_weight
        rough = ww * word_score + (1 - ww) * gram_score
        found = np.flatnonzero(rough)
        if len(found) > cfg.pool:
            found = found[np.argpartition(-rough[found], cfg.pool - 1)[: cfg.pool]]
        pool = sorted(found.tolist(), key=lambda i: (-rough[i], i))
        known = grams & gram_idf.keys()
        ranked: list[tuple[float, int]] = []
        for idx in pool:
            sounds = []
            for qi, ((_reading, qgrams), mass) in enumerate(zip(self._questions[idx], self._q_mass[idx], strict=True)):
                common = known & qgrams
                if common:
                    overlap = sum(map(gram_idf.__getitem__, common))
                    sounds.append((overlap / math.sqrt(q_mass * (mass or 1.0)), qi))
            sound = max(sounds)[0] if sounds else 0.0
            shape = 0.0
            if n.reading:
                # The spelling measure is costlier: only for the questions that already sound closest.
                for _s, qi in heapq.nlargest(3, sounds):
                    reading = self._questions[idx][qi][0]
                    shape = max(shape, fuzz.partial_ratio(n.reading, reading) / 100.0)
            score = 100.0 * (ww * float(word_score[idx]) + cfg.sound_weight * sound + cfg.shape_weight * shape)
            ranked.append((score, idx))
        ranked.sort(key=lambda p: (-p[0], self._entry_ids[p[1]]))
        return [
            Candidate(self._entry_ids[i], self._entry_topics[i], round(s, 2), round(float(word_score[i]), 3))
            for s, i in ranked
        ]

    def match(self, text: str) -> MatchResult:
        ranked = self.scores(text)
        named = self._out_of_scope_words(text)
        if named:  # only entries that are about the out-of-scope word may answer (or be offered)
            ranked = [c for c in ranked if any(_has_word(self._entry_text[c.entry_id], w, a) for w, a in named)]
        return decide(ranked, self.config.for_text(text))

    def _out_of_scope_words(self, text: str) -> list[tuple[str, bool]]:
        if not self._out_of_scope:
            return []
        folded = _scope_fold(text)
        return [(w, ascii_word) for w, ascii_word in self._out_of_scope if _has_word(folded, w, ascii_word)]


def _scope_fold(text: str) -> str:
    return to_hiragana(clean(text)).replace("\u3000", " ")


def _has_word(text: str, word: str, ascii_word: bool) -> bool:
    """A Japanese word anywhere in the text; an English one as whole words (pension, not suspension)."""
    if not ascii_word:
        return word in text.replace(" ", "")
    return re.search(rf"(?<![a-z]){re.escape(word)}(?![a-z])", text) is not None


def decide(ranked: list[Candidate], config: MatchConfig) -> MatchResult:
    """Answer when the best entry is sure; ask between genuinely different answers when it is not; else fall back.

    Sure: strong enough, using enough of the question's words, and ahead of every entry of another
    topic (entries of its own topic close behind are variants of the same answer, not a doubt), or
    nearly identical to one of its example questions; but entries of other topics that the message
    fits equally well (a bare keyword) are asked about. A clarify offers the 2-3 entries that score close
    to the best; a lone option is no question to ask, so that falls back instead.
    """
    if not ranked or ranked[0].score < config.clarify_threshold:
        return MatchResult(Outcome.FALLBACK, ranked[: config.max_candidates])
    best = ranked[0]
    rival = next((c for c in ranked[1:] if c.topic != best.topic), None)
    floor = max(config.clarify_threshold, best.score - config.clarify_window)
    shortlist = [c for c in ranked if c.score >= floor][: config.max_candidates]  # what a clarify would offer
    one_topic = all(c.topic == best.topic for c in shortlist)
    if config.one_topic_answers and best.score >= config.answer_threshold and one_topic:
        return MatchResult(Outcome.ANSWER, [best])
    tied = [
        c
        for c in ranked[1:]
        if best.score - c.score < config.tie_margin
        and c.coverage >= best.coverage
        and (config.same_topic_ties or c.topic != best.topic)
    ]
    if tied:  # a bare keyword (手当) fits answers of several topics equally well: ask which
        return MatchResult(Outcome.CLARIFY, [best, *tied][: config.max_candidates])
    if best.score >= config.certain_threshold:
        return MatchResult(Outcome.ANSWER, [best])
    lead = best.score - rival.score if rival is not None else best.score
    ahead = lead >= config.margin or (
        lead > 0 and rival is not None and best.coverage - rival.coverage >= config.coverage_margin
    )
    covered = best.coverage >= config.min_coverage or best.score >= config.sure_threshold
    if best.score >= config.answer_threshold and ahead and covered:
        return MatchResult(Outcome.ANSWER, [best])
    if len(shortlist) < 2:
        return MatchResult(Outcome.FALLBACK, ranked[: config.max_candidates])
    return MatchResult(Outcome.CLARIFY, shortlist)
