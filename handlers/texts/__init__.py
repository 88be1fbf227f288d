"""What the bot says outside KB answers: one lookup, `t(lang, key, channel=...)`, over data files.

Each language has a file `<code>.yaml` beside this module (codes as in `knowledge.language.LANGUAGES`):
`texts` holds the wording for every channel, and a section named after a channel (`email`) holds the
variants worded for it — a mail has no buttons and is not a chat. A key missing from a channel section
falls back to the generic text of the same language; a key missing from a language falls back to
English, then Japanese. Other parts (crisis replies, appointments) can add keys to the same files and
look them up by the same language codes.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import yaml

from handlers.texts.phrases import ConsentAnswer, Manner, PhraseBook

__all__ = ["ConsentAnswer", "Manner", "PhraseBook", "has_text", "languages", "t"]

_DIR = Path(__file__).parent
FALLBACK_CHAIN = ("en", "ja")


@dataclass(frozen=True)
class _Table:
    texts: dict[str, str]
    channels: dict[str, dict[str, str]]


@functools.cache
def _tables() -> dict[str, _Table]:
    """Read once on first use (never at import time)."""
    tables: dict[str, _Table] = {}
    for path in sorted(_DIR.glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        texts = {str(k): str(v) for k, v in (data.pop("texts", None) or {}).items()}
        channels = {str(ch): {str(k): str(v) for k, v in (body or {}).items()} for ch, body in data.items()}
        tables[path.stem] = _Table(texts, channels)
    return tables


def languages() -> tuple[str, ...]:
    """The languages that have a text file."""
    return tuple(_tables())


def _lookup(lang: str, key: str, channel: str | None) -> str | None:
    tables = _tables()
    for code in (lang, *FALLBACK_CHAIN):
        table = tables.get(code)
        if table is None:
            continue
        if channel is not None and key in table.channels.get(channel, {}):
            return table.channels[channel][key]
        if key in table.texts:
            return table.texts[key]
    return None


def has_text(lang: str, key: str, channel: str | None = None) -> bool:
    """True when `lang` itself (not a fallback language) has `key`, for `channel` or generically."""
    table = _tables().get(lang)
    if table is None:
        return False
    return key in table.texts or (channel is not None and key in table.channels.get(channel, {}))


def t(lang: str, key: str, channel: str | None = None, **values: object) -> str:
    """The text `key` in `lang`, worded for `channel` where a variant exists."""
    text = _lookup(lang, key, channel)
    if text is None:
        raise KeyError(f"no text {key!r}")
    return text.format(**values) if values else text
