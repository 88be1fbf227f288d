"""Which language a parent writes in, by script: kana means Japanese, Latin letters English.

Kanji alone is ambiguous (児童手当 reads as Chinese to statistical detectors), so it counts as Japanese
for this service. More languages plug in through `SCRIPT_RULES` and the KB's answer translations.
"""

from __future__ import annotations

import re

# Ordered: the first rule whose pattern matches decides. Each maps to a BCP 47 primary language.
SCRIPT_RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"[\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f]"), "ja"),  # hiragana, katakana, half-width kana
    (re.compile(r"[\uac00-\ud7af\u1100-\u11ff]"), "ko"),  # hangul
    (re.compile(r"[ăâđêôơưạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹ]", re.IGNORECASE), "vi"),
    (re.compile(r"[\u4e00-\u9fff\u3400-\u4dbf]"), "ja"),  # kanji only: Japanese for this service
    (re.compile(r"[A-Za-z]"), "en"),
]


def detect_language(text: str) -> str | None:
    """The language of `text` by script, or None when it has no letters (emoji, digits, symbols)."""
    for pattern, lang in SCRIPT_RULES:
        if pattern.search(text):
            return lang
    return None


def choose_language(detected: str | None, known: str | None, supported: tuple[str, ...], default: str) -> str:
    """Keep the contact's language for short, letterless replies; fall back to a supported one."""
    lang = detected or known or default
    if lang in supported:
        return lang
    # A language the KB has no answers in yet: English serves foreign residents better than Japanese.
    return "en" if "en" in supported else default
