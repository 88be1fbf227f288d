"""Personal data out of a parent's question before it is kept as FAQ feedback.

Pure: text in, text out. What goes, in this order (each leaves a marker staff can read):
email addresses 〔メール〕, phone numbers 〔電話番号〕, postal codes and street addresses (〒 codes, 丁目/番地/号
and 1-2-3 style) 〔住所〕, digit runs of five or more (card, insurance, case numbers) 〔番号〕, and personal names
〔名前〕: Japanese names the analyser tags 固有名詞・人名, a kana name before くん/ちゃん, a name after 名前は /
before と申します, and English names after "my name is", "I am", "I'm", "this is".

The text is NFKC-folded first, so full-width digits and letters are caught like their ASCII forms; the kept
question is that folded text.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from typing import Protocol

EMAIL = "〔メール〕"
PHONE = "〔電話番号〕"
ADDRESS = "〔住所〕"
NUMBER = "〔番号〕"
NAME = "〔名前〕"

_DASH_CHARS = r"\-‐‑‒–—―−ー"  # after NFKC: hyphens, dashes, the long vowel mark people type for a hyphen
_DASH = f"[{_DASH_CHARS}]"
_EMAIL = re.compile(r"[\w.+%-]+\s?(?:@|＠|\(at\)|\[at\])\s?[\w-]+(?:\.[\w-]+)+", re.ASCII | re.IGNORECASE)
# Japanese numbers: 0 then 9-10 digits in groups (0138-21-3619, 090 1234 5678, (0138)21-3619, 0120-123-456),
# +81 forms, and the short three-digit-first mobile forms written without separators.
_PHONE = re.compile(
    rf"(?<![\d{_DASH_CHARS}])(?:\+81\s?(?:\(0\))?|\(0\d{{1,4}}\)|0\d{{0,4}})"
    rf"(?:\s?{_DASH}?\s?\(?\d{{1,4}}\)?){{1,3}}(?![\d{_DASH_CHARS}])"
)
_PHONE_WORD = re.compile(r"(?:電話|でんわ|tel|携帯|けいたい|phone)[^\d]{0,6}(\d[\d\s-]{6,}\d)", re.IGNORECASE)
_POSTAL = re.compile(rf"〒\s?\d{{3}}(?:{_DASH}|\s)?\d{{4}}|(?<![\d-])\d{{3}}{_DASH}\d{{4}}(?![\d-])")
_KANJI_NUM = "一二三四五六七八九十〇"
_PLACE = r"[\u4e00-\u9fff々ヶァ-ヴー]{0,12}"  # the place name an address starts with (函館市美原)
_ADDRESS = re.compile(
    rf"{_PLACE}(?:"
    rf"(?:\d+|[{_KANJI_NUM}]+)\s?丁目(?:\s?\d+\s?(?:番地?|{_DASH}))?(?:\s?\d+\s?(?:号|{_DASH}\s?\d+)?)?"
    rf"|\d+\s?番地(?:\s?の?\s?\d+(?:\s?号)?)?"
    rf"|\d+\s?番\s?\d+\s?号"
    rf"|(?<=[町通条目])\s?\d+(?:{_DASH}\d+){{1,2}}"
    rf"|(?<![\d{_DASH_CHARS}])\d{{1,4}}{_DASH}\d{{1,4}}{_DASH}\d{{1,4}}(?![\d{_DASH_CHARS}])"
    rf")"
)
_LONG_DIGITS = re.compile(r"(?<!\d)\d(?:[\s-]?\d){4,}(?!\d)(?!\s?(?:円|yen))", re.IGNORECASE)
# A kana name before an honorific children are called by (はるとくん, ユイちゃん); family words are not names.
_KANA_NAME = re.compile(r"(?<![ぁ-んァ-ヴー])([ぁ-んァ-ヴー]{2,6})(?=くん|ちゃん|君)")
_FAMILY = {
    "あか", "おかあ", "おとう", "おにい", "おねえ", "おばあ", "おじい", "ばあ", "じい", "にい", "ねえ", "かあ",
    "とう", "ママ", "パパ", "あかちゃ", "おちび", "みんな", "みな", "ばぁ", "じぃ",
}  # fmt: skip
_JA_INTRO = re.compile(
    r"((?:名前|なまえ|氏名|本名)は\s?)([^\s、。,.!?！？]{1,12}?)(?=です|といいます|と申します|[、。,.!?！？\s]|$)"
    r"|([^\s、。,.!?！？はがをに]{1,12})(?=\s?(?:と申します|といいます|と言います))"
)
_EN_NAME_WORD = r"[A-Za-z][A-Za-z'’-]*"
_EN_INTRO_ANY = re.compile(rf"\b(my name is|my name's|name:)\s+({_EN_NAME_WORD}(?:\s+{_EN_NAME_WORD}){{0,2}})", re.I)
_EN_INTRO_CAP = re.compile(r"\b(I am|I'm|I’m|this is|it's|it is)\s+((?:[A-Z][a-z'’-]+)(?:\s+[A-Z][a-z'’-]+){0,2})")
# Capitalised words after "I am" that are not names.
_NOT_NAMES = {
    "japanese", "american", "chinese", "korean", "vietnamese", "filipino", "brazilian", "nepali", "nepalese",
    "indonesian", "thai", "english", "british", "indian", "australian", "canadian", "french", "german",
    "spanish", "russian", "i", "a", "an", "the", "not", "new", "pregnant", "sorry", "hakodate", "mom", "dad",
    "mum", "mother", "father", "from", "in", "at", "looking", "living", "here", "still", "just", "so", "very",
}  # fmt: skip
# Words after "my name is" that end the name ("my name is Anna and ...").
_NAME_STOP = {"and", "i", "my", "we", "our", "from", "in", "at", "with", "but", "so", "please", "is", "the", "a"}


class NameTagger(Protocol):
    def tag(self, text: str) -> Iterable[tuple[str, bool]]:
        """The text cut into pieces, each with whether it is a personal name; the pieces join to the text."""
        ...


class SudachiNames:
    """Personal names by SudachiPy's part of speech (名詞, 固有名詞, 人名), over the process's one dictionary."""

    def __init__(self) -> None:
        import threading

        self._local = threading.local()

    def _tokenizer(self) -> object:
        tok = getattr(self._local, "tok", None)
        if tok is None:
            from sudachipy import SplitMode

            from knowledge.normalize import shared_dictionary

            tok = self._local.tok = shared_dictionary().tokenizer(mode=SplitMode.C)
        return tok

    def tag(self, text: str) -> Iterable[tuple[str, bool]]:
        tok = self._tokenizer()
        for m in tok.tokenize(text):  # type: ignore[attr-defined]
            pos = m.part_of_speech()
            yield m.surface(), pos[1] == "固有名詞" and pos[2] == "人名"


def redact(text: str, names: NameTagger | None = None) -> str:
    """`text` with every kind of personal data above replaced by its marker."""
    text = unicodedata.normalize("NFKC", text)
    text = _EMAIL.sub(EMAIL, text)
    text = _PHONE_WORD.sub(lambda m: m.group(0)[: m.start(1) - m.start(0)] + PHONE, text)
    text = _PHONE.sub(_phone, text)
    text = _POSTAL.sub(ADDRESS, text)
    text = _ADDRESS.sub(ADDRESS, text)
    text = _LONG_DIGITS.sub(NUMBER, text)
    text = _english_names(text)
    text = _JA_INTRO.sub(_ja_intro, text)
    text = _KANA_NAME.sub(lambda m: m.group(0) if m.group(1) in _FAMILY else NAME, text)
    if names is not None:
        text = _tagged_names(text, names)
    return _merge(text)


def _phone(m: re.Match[str]) -> str:
    """A Japanese phone number has 10 or 11 digits from its leading 0 (9 or 10 after +81)."""
    digits = re.sub(r"\D", "", m.group(0))
    if digits.startswith("81") and m.group(0).startswith("+"):
        digits = "0" + digits[2:].removeprefix("0")
    return PHONE if 10 <= len(digits) <= 11 else m.group(0)


def _ja_intro(m: re.Match[str]) -> str:
    if m.group(1) is not None:
        return m.group(1) + NAME
    return NAME


def _english_names(text: str) -> str:
    def any_case(m: re.Match[str]) -> str:
        words = m.group(2).split()
        kept: list[str] = []
        for w in words:
            if w.casefold() in _NAME_STOP:
                break
            kept.append(w)
        if not kept:
            return m.group(0)
        rest = m.group(2)[len(" ".join(kept)) :]
        return f"{m.group(1)} {NAME}{rest}"

    def capitalised(m: re.Match[str]) -> str:
        words = m.group(2).split()
        if words[0].casefold() in _NOT_NAMES:
            return m.group(0)
        kept = [w for w in words if w.casefold() not in _NOT_NAMES]
        return f"{m.group(1)} {NAME}" + m.group(2)[len(" ".join(kept)) :]

    text = _EN_INTRO_ANY.sub(any_case, text)
    return _EN_INTRO_CAP.sub(capitalised, text)


def _tagged_names(text: str, names: NameTagger) -> str:
    # The markers are kept whole: the analyser would cut them into pieces.
    parts = re.split(r"(〔[^〕]*〕)", text)
    out: list[str] = []
    for part in parts:
        if not part or part.startswith("〔"):
            out.append(part)
            continue
        out.extend(NAME if is_name else piece for piece, is_name in names.tag(part))
    return "".join(out)


def _merge(text: str) -> str:
    """Neighbouring markers of one kind become one (山田〔名前〕花子〔名前〕 → 〔名前〕)."""
    for marker in (NAME, NUMBER, ADDRESS, PHONE):
        text = re.sub(f"(?:{re.escape(marker)}\\s?){{2,}}", marker, text)
    return text
