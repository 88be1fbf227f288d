"""Japanese-aware text normalisation used before fuzzy matching.

Pipeline: NFKC (width folding) and case folding, control characters dropped, staff synonyms folded to
their canonical form, then SudachiPy: each word replaced by its normalised form (子ども/子供/こども → 子供,
申込み → 申し込み), particles, auxiliaries, symbols and filler words dropped. A second key, the
hiragana reading of the same content words, lets kana-only and kanji spellings meet.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

import jaconv

from knowledge.models import Synonyms

_CONTROL = re.compile(r"[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e\ufeff]")
_SPACES = re.compile(r"\s+")
_LATIN_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
# Parts of speech that carry no meaning for matching.
_DROP_POS = {"助詞", "助動詞", "補助記号", "空白", "記号", "感動詞"}
_SEGMENTS = re.compile(r"[a-z0-9']+|[^a-z0-9'\s]+")
_EN_STOP = {
    "a",
    "an",
    "the",
    "i",
    "me",
    "my",
    "we",
    "our",
    "you",
    "your",
    "is",
    "are",
    "am",
    "be",
    "do",
    "does",
    "can",
    "could",
    "would",
    "should",
    "will",
    "to",
    "of",
    "in",
    "on",
    "for",
    "at",
    "it",
    "its",
    "and",
    "or",
    "please",
    "hi",
    "hello",
    "there",
    "what",
    "how",
    "where",
    "when",
    "which",
    "who",
    "about",
    "with",
    "get",
    "any",
    "some",
    "have",
    "has",
    "tell",
    "know",
    "want",
    "like",
    "thanks",
    "thank",
    "much",
    "this",
    "that",
    "if",
    "so",
    "just",
    "im",
    "i'm",
    "from",
    "by",
    "as",
}


def clean(text: str) -> str:
    """NFKC, case folding, control characters removed, white space collapsed."""
    text = unicodedata.normalize("NFKC", text)
    text = _CONTROL.sub(" ", text)
    return _SPACES.sub(" ", text).strip().casefold()


def to_hiragana(text: str) -> str:
    return str(jaconv.kata2hira(text))


class Tokenizer(Protocol):
    def tokens(self, text: str) -> list[tuple[str, str, str, str]]:
        """(surface, normalised form, reading, part of speech) per word."""
        ...


_DICTIONARY: Any = None
_DICTIONARY_LOCK = threading.Lock()


def shared_dictionary() -> Any:
    """The one SudachiPy core dictionary of this process, mapped on first use (never at import time).

    Mapping it costs tens of MB and a noticeable start-up time; every tokenizer in the process (the
    matcher's, crisis detection's, each thread's) reads this one. A `Dictionary` is immutable once
    built and safe to share; the tokenizers made from it are not, see `SudachiTokenizer`.
    """
    global _DICTIONARY
    if _DICTIONARY is None:
        with _DICTIONARY_LOCK:
            if _DICTIONARY is None:
                from sudachipy import Dictionary

                _DICTIONARY = Dictionary(dict="core")
    return _DICTIONARY


class SudachiTokenizer:
    """SudachiPy with the core dictionary, split mode B.

    A Sudachi tokenizer keeps mutable state and raises when two threads use it at once (the webhook
    thread and the inbox workers both normalise text), so each thread gets its own tokenizer over the
    process's one shared dictionary (`shared_dictionary`).
    """

    def __init__(self) -> None:
        from sudachipy import SplitMode

        self._dict = shared_dictionary()
        self._mode = SplitMode.B
        self._local = threading.local()

    def _tokenizer(self) -> Any:
        tok = getattr(self._local, "tok", None)
        if tok is None:
            tok = self._local.tok = self._dict.tokenizer(mode=self._mode)
        return tok

    def tokens(self, text: str) -> list[tuple[str, str, str, str]]:
        return [
            (m.surface(), m.normalized_form(), m.reading_form(), m.part_of_speech()[0])
            for m in self._tokenizer().tokenize(text)
        ]


@dataclass(frozen=True, slots=True)
class Normalized:
    """Matching keys of one text."""

    words: str  # normalised content words, space separated
    reading: str  # hiragana reading of the content words, no spaces
    cleaned: str  # the cleaned surface text
    sound: str = ""  # hiragana reading of the whole text, particles included (crisis sound-alikes)


class Normalizer:
    """Turns a parent's message or a KB question into matching keys."""

    def __init__(self, synonyms: Synonyms, tokenizer: Tokenizer | None = None) -> None:
        self._tok = tokenizer or SudachiTokenizer()
        pairs: list[tuple[str, str]] = []
        for canonical, variants in synonyms.groups.items():
            # The canonical form maps to itself so that a variant inside it (接種 in 予防接種) is not folded twice.
            for v in (canonical, *variants):
                pairs.append((clean(v), clean(canonical)))
        # Longest variant first so that 認可保育所 wins over 保育所.
        pairs.sort(key=lambda p: len(p[0]), reverse=True)
        self._synonyms = pairs
        self._synonym_re = re.compile("|".join(re.escape(v) for v, _ in pairs)) if pairs else None
        self._synonym_map = dict(pairs)
        self._stop = {clean(w) for w in synonyms.stopwords}
        fillers = sorted((w for w in self._stop if not _LATIN_WORD.fullmatch(w)), key=len, reverse=True)
        self._filler_re = re.compile("|".join(re.escape(w) for w in fillers)) if fillers else None
        self._cached = lru_cache(maxsize=4096)(self._normalize)

    @property
    def tokenizer(self) -> Tokenizer:
        """The analyser itself, shared with crisis detection (one dictionary per process)."""
        return self._tok

    def reading(self, text: str) -> str:
        """The whole text's hiragana reading, particles included (for sound-alike phrase search)."""
        return self(text).sound

    def fold_synonyms(self, text: str) -> str:
        if self._synonym_re is None:
            return text
        return self._synonym_re.sub(lambda m: self._synonym_map[m.group(0)], text)

    def __call__(self, text: str) -> Normalized:
        return self._cached(text[:1000])

    def _normalize(self, text: str) -> Normalized:
        cleaned = clean(text)
        folded = self.fold_synonyms(cleaned)
        if self._filler_re is not None:
            folded = self._filler_re.sub(" ", folded)
        words: list[str] = []
        reading: list[str] = []
        sound: list[str] = []
        for segment in _SEGMENTS.findall(folded):
            if _LATIN_WORD.fullmatch(segment):
                if segment in _EN_STOP or segment in self._stop:
                    continue
                word = _stem_en(segment)
                sound.append(segment)
                words.append(word)
                reading.append(word)
                continue
            for surface, norm, read, pos in self._tok.tokens(segment):
                sound.append(to_hiragana(read or surface))
                if pos in _DROP_POS or not norm.strip():
                    continue
                if surface in self._stop or norm in self._stop:
                    continue
                words.append(norm)
                reading.append(to_hiragana(read) if read else norm)
        return Normalized(words=" ".join(words), reading="".join(reading), cleaned=cleaned, sound="".join(sound))


def _stem_en(word: str) -> str:
    """A light English plural/verb-form folding; enough for short FAQ questions."""
    for suffix, repl in (("ies", "y"), ("ing", ""), ("es", ""), ("s", "")):
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            return word[: -len(suffix)] + repl
    return word


_SCRIPT_RUN = re.compile(
    r"[\u4e00-\u9fff\u3400-\u4dbf々]+|[\u30a0-\u30ffー]+|[\u3040-\u309f]+|[^\s\u3040-\u30ff\u4e00-\u9fff]+"
)


class ScriptTokenizer:
    """No analyser: words are runs of one script (kanji, katakana, hiragana). The benchmark's
    comparison point for SudachiPy; hiragana runs stand in for particles and are dropped when short."""

    def tokens(self, text: str) -> list[tuple[str, str, str, str]]:
        out: list[tuple[str, str, str, str]] = []
        for run in _SCRIPT_RUN.findall(text):
            hira = to_hiragana(run)
            pos = "助詞" if run == hira and len(run) <= 2 else "名詞"
            out.append((run, run, hira, pos))
        return out
