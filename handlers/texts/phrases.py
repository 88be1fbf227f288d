"""How the engine reads the KB's conversation phrases: a request for a person, a withdrawal, a consent
answer (yes / no / unclear) and manners (greetings, thanks, acknowledgements, help, the FAQ menu).

Consent is read clause by clause: a reply is a yes only when every clause is an unmistakable yes or a
polite filler (はい、同意します。よろしくお願いします). Words that often mean "no thanks" in Japanese
(大丈夫です, いいです, 結構です) and the noncommittal OK are not in the yes list, so they come out unclear.
A leading no wins over what follows (いいえ、やっぱりいいです): treating a doubtful reply as no only means
nothing is recorded, which is the safe direction.
"""

from __future__ import annotations

import re
import unicodedata
from enum import StrEnum

from knowledge.models import Phrases
from knowledge.normalize import Normalizer, clean, to_hiragana


class ConsentAnswer(StrEnum):
    YES = "yes"
    NO = "no"
    UNCLEAR = "unclear"


class Manner(StrEnum):
    GREETING = "greeting"
    THANKS = "thanks"
    ACK = "ack"
    BYE = "bye"
    HELP = "help"
    FAQ_MENU = "faq_menu"


def _folded(text: str) -> str:
    return to_hiragana(clean(text))


# Clause boundaries: Japanese and Latin punctuation, line breaks; emoji and symbols are dropped first.
_CLAUSES = re.compile(r"[、。,.!！?？\n;；:：…・〜~]+|\s{2,}")
_WORD_SPLIT = re.compile(r"\s+")
_YES, _NO, _FILLER, _OTHER = "yes", "no", "filler", "other"
# Spoken politeness that changes nothing: Thai particles, Tagalog "po"/"opo" as a trailing word.
_TRAILING = re.compile(r"(?:\s*(?:ครับ|ค่ะ|คะ|นะ|จ้ะ|จ้า)|\s+po)$")


def _without_symbols(text: str) -> str:
    return "".join(" " if unicodedata.category(ch)[0] in "SC" and ch not in "\n" else ch for ch in text)


def clauses(text: str) -> list[str]:
    """The folded clauses of a short reply, symbols and emoji removed."""
    folded = _folded(_without_symbols(text)) if text else ""
    return [c.strip() for c in _CLAUSES.split(folded) if c.strip()]


class PhraseBook:
    """The KB's conversation phrases, folded once."""

    SOUND_MIN_LEN = 5

    def __init__(self, phrases: Phrases, normalizer: Normalizer | None = None) -> None:
        self._norm = normalizer
        self._handoff = self._pattern(phrases.handoff)
        self._withdraw = self._pattern(phrases.withdraw)
        # Japanese phrases also by sound, so kana-only writing (たんとうしゃとはなしたい) is understood.
        self._handoff_sounds = self._sounds(phrases.handoff.get("ja", []))
        self._withdraw_sounds = self._sounds(phrases.withdraw.get("ja", []))
        self._yes = self._words(phrases.yes)
        self._no = self._words(phrases.no)
        self._filler = self._words(phrases.filler)
        # Manners: folded phrase -> (kind, language of the phrase).
        self._manners: dict[str, tuple[Manner, str]] = {}
        for kind, by_lang in phrases.manners.items():
            for lang, words in by_lang.items():
                for w in words:
                    for key in self._keys(w):
                        self._manners.setdefault(key, (Manner(kind), lang))

    def _keys(self, phrase: str) -> set[str]:
        """A phrase's folded form, trailing politeness trimmed, and (Japanese) its sound."""
        folded = _TRAILING.sub("", " ".join(clauses(phrase)))
        keys = {folded}
        if self._norm is not None and folded and not folded.isascii():
            keys.add(self._norm(folded).sound.replace(" ", ""))
        return {k for k in keys if k}

    def _words(self, by_lang: dict[str, list[str]]) -> set[str]:
        return {k for ws in by_lang.values() for w in ws for k in self._keys(w)}

    @staticmethod
    def _pattern(by_lang: dict[str, list[str]]) -> re.Pattern[str] | None:
        words = sorted({_folded(w) for ws in by_lang.values() for w in ws}, key=len, reverse=True)
        return re.compile("|".join(re.escape(w) for w in words)) if words else None

    def _sounds(self, words: list[str]) -> list[str]:
        if self._norm is None:
            return []
        sounds = {self._norm(w).sound.replace(" ", "") for w in words}
        return sorted(s for s in sounds if len(s) >= self.SOUND_MIN_LEN)

    def _search(self, pattern: re.Pattern[str] | None, sounds: list[str], text: str) -> bool:
        if pattern is None:
            return False
        folded = _folded(text)
        # Japanese is often written with spaces between words (にんげんの ひとと はなしたい).
        if pattern.search(folded) or pattern.search(folded.replace(" ", "")):
            return True
        if sounds and self._norm is not None:
            heard = self._norm(text[:2000]).sound.replace(" ", "")
            return any(s in heard for s in sounds)
        return False

    def wants_person(self, text: str) -> bool:
        return self._search(self._handoff, self._handoff_sounds, text)

    def wants_withdraw(self, text: str) -> bool:
        return self._search(self._withdraw, self._withdraw_sounds, text)

    # ----- consent
    def _in(self, words: set[str], clause: str) -> bool:
        clause = _TRAILING.sub("", clause)
        if clause in words or clause.replace(" ", "") in words:
            return True
        if self._norm is not None and not clause.isascii():
            return self._norm(clause).sound.replace(" ", "") in words
        return False

    def _clause_kind(self, clause: str, *, split: bool = True) -> str:
        if self._in(self._no, clause):
            return _NO
        if self._in(self._yes, clause):
            return _YES
        if self._in(self._filler, clause):
            return _FILLER
        if split and " " in clause:  # "yes please", "はい 同意します": judge the words
            return _combine([self._clause_kind(w, split=False) for w in _WORD_SPLIT.split(clause)]).value
        return _OTHER

    def consent_answer(self, text: str) -> ConsentAnswer:
        """The one decision on a typed consent reply, for every channel (a mail hands its first lines)."""
        parts = clauses(text)
        if not parts or len(parts) > 6:  # a long reply is not a yes; the engine reads it as a question first
            return ConsentAnswer.UNCLEAR
        return _combine([self._clause_kind(p) for p in parts])

    def yes_no(self, text: str) -> bool | None:
        """`consent_answer` as True (yes) / False (no) / None (unclear), for callers that predate it."""
        answer = self.consent_answer(text)
        return None if answer == ConsentAnswer.UNCLEAR else answer == ConsentAnswer.YES

    # ----- manners
    def manner(self, text: str) -> tuple[Manner, str] | None:
        """A message made only of greetings, thanks, acknowledgements, help or FAQ-menu requests (and
        polite fillers): its kind (the first one said) and the language of the phrase. None otherwise."""
        parts = clauses(text)
        if not parts or len(parts) > 4:
            return None
        found: tuple[Manner, str] | None = None
        for part in parts:
            hit = self._manner_clause(part)
            if hit is None:
                if self._in(self._filler, part):
                    continue
                return None
            found = found or hit
        return found

    def _manner_clause(self, clause: str) -> tuple[Manner, str] | None:
        clause = _TRAILING.sub("", clause)
        for key in (clause, clause.replace(" ", "")):
            if key in self._manners:
                return self._manners[key]
        if self._norm is not None and not clause.isascii():
            return self._manners.get(self._norm(clause).sound.replace(" ", ""))
        return None


def _combine(kinds: list[str]) -> ConsentAnswer:
    if _NO in kinds and _YES not in kinds:
        return ConsentAnswer.NO
    if _YES in kinds and all(k in (_YES, _FILLER) for k in kinds):
        return ConsentAnswer.YES
    return ConsentAnswer.UNCLEAR
