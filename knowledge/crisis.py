"""Crisis detection: runs before any matching, on every message, in every state."""

from __future__ import annotations

import re
from dataclasses import dataclass

from knowledge.models import Crisis, CrisisCategory
from knowledge.normalize import Normalizer, clean, to_hiragana


@dataclass(frozen=True, slots=True)
class CrisisHit:
    category: CrisisCategory
    phrase: str


def _fold(text: str) -> str:
    return to_hiragana(clean(text)).replace(" ", "")


class CrisisDetector:
    """Phrase stems per category, matched after width/kana folding; English phrases match whole words.
    With a normaliser, Japanese stems also match by sound: on the whole reading (a homophone slip of the
    input method: 氏にたい) and on the reading of the content words alone, so dropped particles and kana
    spelling do not hide a crisis (首を絞められた / 首しめられた / くびをしめられた)."""

    SOUND_MIN_LEN = 6  # whole readings shorter than this hide inside ordinary words (おしにたいして)
    CONTENT_MIN_LEN = 4

    def __init__(self, crisis: Crisis, normalizer: Normalizer | None = None) -> None:
        self._norm = normalizer
        self._ja: list[tuple[str, CrisisCategory]] = []
        self._sounds: list[tuple[str, str, CrisisCategory]] = []
        self._contents: list[tuple[str, str, CrisisCategory]] = []
        self._en: list[tuple[str, CrisisCategory]] = []
        for cat in crisis.categories:
            for lang, phrases in cat.phrases.items():
                for p in phrases:
                    if lang == "en":
                        self._en.append((clean(p), cat))
                        continue
                    self._ja.append((_fold(p), cat))
                    if normalizer is not None:
                        n = normalizer(p)
                        if len(n.sound) >= self.SOUND_MIN_LEN:
                            self._sounds.append((n.sound, p, cat))
                        # Only stems of two content words or more: 「虐待している」 leaves just 虐待, which
                        # would also catch 「虐待の相談窓口は？」.
                        if len(n.reading) >= self.CONTENT_MIN_LEN and len(n.words.split()) >= 2:
                            self._contents.append((n.reading, p, cat))
        # One pass per script: an alternation of every stem; the earliest category in the file wins.
        self._rank = {cat.id: i for i, cat in enumerate(crisis.categories)}
        self._ja_cat = {phrase: cat for phrase, cat in reversed(self._ja)}
        self._en_cat = {phrase: cat for phrase, cat in reversed(self._en)}
        self._ja_re = _alternation(list(self._ja_cat), words=False)
        self._en_re = _alternation(list(self._en_cat), words=True)

    def detect(self, text: str) -> CrisisHit | None:
        folded = _fold(text)
        if not folded:
            return None
        english = clean(text).replace("\u2019", "'")
        hits = [CrisisHit(self._ja_cat[m], m) for m in _find_all(self._ja_re, folded)]
        hits += [CrisisHit(self._en_cat[m], m) for m in _find_all(self._en_re, english)]
        if hits:
            return min(hits, key=lambda h: self._rank[h.category.id])
        if self._norm is not None:
            n = self._norm(text[:2000])
            sound = n.sound.replace(" ", "")
            for reading, phrase, cat in self._sounds:
                if reading in sound:
                    return CrisisHit(cat, phrase)
            for reading, phrase, cat in self._contents:
                if reading in n.reading:
                    return CrisisHit(cat, phrase)
        return None


def _alternation(phrases: list[str], *, words: bool) -> re.Pattern[str] | None:
    if not phrases:
        return None
    body = "|".join(re.escape(p) for p in sorted(phrases, key=len, reverse=True))
    return re.compile(rf"(?<![a-z])(?:{body})(?![a-z])" if words else f"(?:{body})")


def _find_all(pattern: re.Pattern[str] | None, text: str) -> list[str]:
    """Every stem found, overlapping ones included (a longer stem must not hide a shorter one)."""
    if pattern is None:
        return []
    found = []
    pos = 0
    while (m := pattern.search(text, pos)) is not None:
        found.append(m.group(0))
        pos = m.start() + 1
    return found
