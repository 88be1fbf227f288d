"""Crisis detection: runs before any matching, on every message, in every state."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from knowledge.models import Crisis, CrisisCategory
from knowledge.normalize import clean, to_hiragana


@dataclass(frozen=True, slots=True)
class CrisisHit:
    category: CrisisCategory
    phrase: str


def _fold(text: str) -> str:
    return to_hiragana(clean(text)).replace(" ", "")


class CrisisDetector:
    """Phrase stems per category, matched after width/kana folding; English phrases match whole words.
    With a `reader` (the text's full kana reading), long stems also match by sound, so a homophone slip
    of the input method (氏にたい, 虐退) does not hide a crisis."""

    READING_MIN_LEN = 6  # shorter readings hide inside ordinary words (おしにたいして)

    def __init__(self, crisis: Crisis, reader: Callable[[str], str] | None = None) -> None:
        self._reader = reader
        self._ja: list[tuple[str, CrisisCategory]] = []
        self._sounds: list[tuple[str, str, CrisisCategory]] = []
        self._en: list[tuple[re.Pattern[str], str, CrisisCategory]] = []
        for cat in crisis.categories:
            for lang, phrases in cat.phrases.items():
                for p in phrases:
                    if lang == "en":
                        pattern = re.compile(r"(?<![a-z])" + re.escape(clean(p)) + r"(?![a-z])")
                        self._en.append((pattern, p, cat))
                        continue
                    self._ja.append((_fold(p), cat))
                    if reader is not None:
                        sound = reader(p)
                        if len(sound) >= self.READING_MIN_LEN:
                            self._sounds.append((sound, p, cat))

    def detect(self, text: str) -> CrisisHit | None:
        folded = _fold(text)
        if not folded:
            return None
        english = clean(text).replace("\u2019", "'")
        # In file order: child danger comes before the rest.
        for phrase, cat in self._ja:
            if phrase in folded:
                return CrisisHit(cat, phrase)
        for pattern, phrase, cat in self._en:
            if pattern.search(english):
                return CrisisHit(cat, phrase)
        if self._sounds and self._reader is not None:
            sound = self._reader(text[:2000])
            for reading, phrase, cat in self._sounds:
                if reading in sound:
                    return CrisisHit(cat, phrase)
        return None
