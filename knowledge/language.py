"""Which language a parent writes in: script rules first, a statistical detector only for Latin text.

The codes (BCP 47) are shared by every part that speaks to parents (fixed texts, crisis replies, the
consent ledger): ja, en, zh-Hans, zh-Hant, ko, vi, tl, pt, ne, id, th.

Why script rules first: statistical detectors label kanji-only Japanese (児童手当) as Chinese and have no
Nepali (Devanagari is Hindi to them). Kana, hangul, Thai and Devanagari decide at once; Vietnamese has
letters no other language here uses; Han text without kana is Chinese only when it carries Chinese
function words or letter forms Japanese does not use, and simplified or traditional by those forms.
Latin text goes to lingua with the four Latin-script languages of the service; lingua ships its models
inside the wheel, so nothing is downloaded. Short replies (はい, ok) are not re-detected: see
`choose_language`, and the engine keeps the language per contact.
"""

from __future__ import annotations

import functools
import re
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lingua import LanguageDetector

LANGUAGES: tuple[str, ...] = ("ja", "en", "zh-Hans", "zh-Hant", "ko", "vi", "tl", "pt", "ne", "id", "th")

# Names as a parent of that language would look for them (language menus, "which languages I read").
LANGUAGE_NAMES: dict[str, str] = {
    "ja": "日本語",
    "en": "English",
    "zh-Hans": "简体中文",
    "zh-Hant": "繁體中文",
    "ko": "한국어",
    "vi": "Tiếng Việt",
    "tl": "Filipino",
    "pt": "Português",
    "ne": "नेपाली",
    "id": "Bahasa Indonesia",
    "th": "ภาษาไทย",
}

_KANA = re.compile(r"[\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f]")
_HANGUL = re.compile(r"[\uac00-\ud7af\u1100-\u11ff\u3130-\u318f]")
_THAI = re.compile(r"[\u0e00-\u0e7f]")
_DEVANAGARI = re.compile(r"[\u0900-\u097f]")
# Letters only Vietnamese writes (â, ê, ô are Portuguese too, so they do not decide alone).
_VIETNAMESE = re.compile(r"[ăđơưạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹ]", re.IGNORECASE)
_HAN = re.compile(r"[\u4e00-\u9fff\u3400-\u4dbf\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z\u00c0-\u024f]")

# Han letter forms that Japanese does not write: simplified-only and traditional-only ones. Forms that
# Japanese shares (学, 会, 時, 給, 請, 園...) are left out on purpose: they tell nothing.
_SIMPLIFIED = frozenset(
    "这们说对还吗么为时过进发经问题儿钱妈给请谢让认识应该现习读书长车东见开关门间听买卖电话码园烧补贴"
    "钟头样种乐带岁险证续气图网页龄养劳动费办帮边难询谘"
)
_TRADITIONAL = frozenset("這們說對沒嗎麼發經兒錢媽應學讀關聽賣號醫燒樂帶歲險證續氣圖齡勞辦幫邊裡詢")
# Chinese function words that kanji-only Japanese practically never contains.
_CHINESE_WORDS = frozenset("我你她吗嗎呢吧怎什么麼哪谁誰很也吃")
# Letter forms only Japanese writes (shinjitai and kokuji).
_JAPANESE = frozenset("児働込払円県駅気様歳険証続関経発対応銭売読説変広転価図絵楽済")
_JAPANESE_EXCLUSIVE = _JAPANESE - _SIMPLIFIED - _TRADITIONAL

# Nepali and Hindi share Devanagari; a few Hindi-only function words tell a Hindi writer apart. The
# service has no Hindi texts, so Devanagari is Nepali unless it is clearly Hindi (then: English).
_HINDI_WORDS = ("है", "हैं", "मैं", "नहीं", "क्या", "और", "मुझे")
_NEPALI_WORDS = ("छ", "छु", "छन्", "हो", "म ", "मलाई", "के", "होइन", "गर्न")

LATIN_LANGUAGES = ("en", "pt", "id", "tl", "vi")  # the languages written in Latin letters
MIN_LATIN_LETTERS = 8  # below this lingua guesses: keep the contact's language instead
MIN_CONFIDENCE = 0.5


_LINGUA_LOCK = threading.Lock()


@functools.cache
def _lingua() -> LanguageDetector:
    """Built on the first Latin-script message of a process (never at import time), under a lock so that
    concurrent workers build it once; the detector itself is thread-safe. High-accuracy mode: on the KB's 246
    English questions (with romanised Japanese words such as jidokan, kodomo-en) it mistook 1, below the
    confidence floor, where low-accuracy mode mistook 10 (most for Tagalog) — an English-speaking parent sent
    to "we only answer in Japanese and English" would be a real failure. The price: the five languages'
    models load in a few seconds and take about 100 MB."""
    from lingua import Language, LanguageDetectorBuilder

    languages = [Language.ENGLISH, Language.PORTUGUESE, Language.INDONESIAN, Language.TAGALOG, Language.VIETNAMESE]
    with _LINGUA_LOCK:
        return LanguageDetectorBuilder.from_languages(*languages).with_preloaded_language_models().build()


def prepare() -> None:
    """Load the detector's models now (e.g. at start-up) rather than on a parent's first Latin message."""
    _lingua()


# Words only English uses among the Latin-script languages here ("a", "do", "no" are Portuguese or Tagalog
# too): two of them make a message English whatever romanised Japanese words it carries.
_ENGLISH_WORDS = frozenset(
    [
        "the",
        "is",
        "are",
        "what",
        "when",
        "where",
        "who",
        "which",
        "how",
        "can",
        "could",
        "my",
        "your",
        "you",
        "i",
        "i'm",
        "does",
        "there",
        "this",
        "that",
        "with",
        "and",
        "for",
        "to",
        "of",
        "from",
        "have",
        "has",
        "need",
        "want",
        "please",
    ]
)
# English nouns of this service's questions that the other Latin-script languages here do not use: with the
# words above, two of them make a short keyword question ("pay nursery fee") English.
_ENGLISH_WORDS = _ENGLISH_WORDS | frozenset(
    [
        "child",
        "children",
        "kid",
        "kids",
        "baby",
        "babies",
        "nursery",
        "daycare",
        "fee",
        "fees",
        "pay",
        "payment",
        "allowance",
        "school",
        "hospital",
        "clinic",
        "price",
        "cost",
        "food",
        "donation",
        "young",
        "carer",
        "room",
        "booking",
        "visit",
        "hard",
        "help",
        "checkup",
        "vaccine",
    ]
)
# Romanised Japanese words of child-rearing services, as foreign residents write them between English words
# (or alone, as keywords: "byouji hoiku", "kodomo shokudo"). Statistical detectors read these syllables as
# Tagalog or Indonesian; the message is a question for this service, answered in English.
_ROMAJI_WORDS = frozenset(
    [
        "akachan",
        "asobiba",
        "azukari",
        "boryoku",
        "boshi",
        "byoji",
        "byouji",
        "chibikko",
        "chiryou",
        "chokusetsu",
        "enjo",
        "famisapo",
        "fuiku",
        "fukushi",
        "funin",
        "futago",
        "futoukou",
        "fuyo",
        "fuyou",
        "gakudo",
        "genkyo",
        "hattatsu",
        "hikazei",
        "hiroba",
        "hitorioya",
        "hoiku",
        "hoikuen",
        "hoikuryo",
        "hoikusho",
        "hokago",
        "houkago",
        "hoken",
        "ichiji",
        "ichijikin",
        "ikuji",
        "iryo",
        "iryou",
        "iryouhi",
        "iyaiya",
        "jido",
        "jidokan",
        "jidou",
        "jikan",
        "josan",
        "josei",
        "jukyo",
        "jukyusha",
        "kakuho",
        "katei",
        "kateinai",
        "katsuyo",
        "katsuyou",
        "kenko",
        "kenshin",
        "kodomo",
        "kodomoen",
        "kokuho",
        "kokumin",
        "konnichiwa",
        "koseki",
        "kosodate",
        "kyubyo",
        "kyufu",
        "kyufukin",
        "kyukanshitsu",
        "kyukyu",
        "mendan",
        "mochimono",
        "nandemo",
        "ninkagai",
        "ninpu",
        "ninshin",
        "nintei",
        "nyugaku",
        "nyuin",
        "nyuyoji",
        "omutsu",
        "oshirase",
        "oyako",
        "rinyushoku",
        "ryoiku",
        "ryouiku",
        "sango",
        "sanpu",
        "satogaeri",
        "seido",
        "sesshu",
        "settei",
        "shaho",
        "shien",
        "shiharai",
        "shisetsu",
        "shokudo",
        "shomeisho",
        "shoto",
        "shougaiji",
        "shugaku",
        "shugakuji",
        "shussan",
        "shussho",
        "soudan",
        "soudanshitsu",
        "sutei",
        "takuji",
        "teate",
        "techo",
        "teikyubi",
        "tennyu",
        "todoke",
        "toiraito",
        "tokubetsu",
        "tokuji",
        "yakan",
        "yonaki",
        "yoshinhyo",
        "youchien",
        "youikuhi",
        "yoyaku",
        "yoyu",
        "zairyu",
    ]
)
# Tagalog particles and markers, which English sentences do not contain.
_TAGALOG_WORDS = frozenset(["po", "opo", "ang", "ng", "mga", "sa", "ko", "ba", "naman", "kasi"])
_WORDS = re.compile(r"[a-z']+")


_LINGUA_CODES = {"ENGLISH": "en", "PORTUGUESE": "pt", "INDONESIAN": "id", "TAGALOG": "tl", "VIETNAMESE": "vi"}


def _han_language(text: str, known: str | None) -> str:
    chars = set(text)
    simplified = len(chars & _SIMPLIFIED)
    traditional = len(chars & _TRADITIONAL)
    chinese = simplified + traditional + len(chars & _CHINESE_WORDS)
    japanese = len(chars & _JAPANESE_EXCLUSIVE)
    if chinese > japanese:
        if traditional == simplified and known in ("zh-Hans", "zh-Hant"):
            return known  # no letter form tells: the contact's own script so far
        return "zh-Hant" if traditional > simplified else "zh-Hans"
    return "ja"  # kanji-only Japanese (児童手当) is the common case for this service


def _latin_language(text: str, known: str | None) -> str:
    letters = sum(1 for ch in text if _LATIN.match(ch))
    if letters < MIN_LATIN_LETTERS:
        return known if known in LATIN_LANGUAGES else "en"
    words = set(_WORDS.findall(text.casefold()))
    if len(words & _TAGALOG_WORDS) >= 2:  # Taglish: English nouns in a Tagalog sentence
        return "tl"
    if len(words & _ENGLISH_WORDS) >= 2 or words & _ROMAJI_WORDS:
        return "en"
    values = _lingua().compute_language_confidence_values(text)
    if not values or values[0].value < MIN_CONFIDENCE:
        return known if known in LATIN_LANGUAGES else "en"
    return _LINGUA_CODES.get(values[0].language.name, "en")


def has_kana(text: str) -> bool:
    return _KANA.search(text) is not None


def detect_language(text: str, known: str | None = None) -> str | None:
    """The language of `text`, or None when it has no letters (emoji, digits, symbols).

    `known` is the contact's language so far: short Latin text (ok, yes) keeps it when it is Latin-script.
    """
    if _KANA.search(text):
        # An English sentence quoting a Japanese name or word (what is ハコダテシ... in my bank book) is English.
        if not _LATIN.search(text):
            return "ja"
        words = _WORDS.findall(text.casefold())
        return "en" if len(set(words) & _ENGLISH_WORDS) >= 2 and len(words) >= 4 else "ja"
    if _HANGUL.search(text):
        return "ko"
    if _THAI.search(text):
        return "th"
    if _DEVANAGARI.search(text):
        hindi = sum(text.count(w) for w in _HINDI_WORDS)
        nepali = sum(text.count(w) for w in _NEPALI_WORDS)
        return "en" if hindi > nepali else "ne"
    if _HAN.search(text):
        return _han_language(text, known)
    if _VIETNAMESE.search(text):
        return "vi"
    if _LATIN.search(text):
        return _latin_language(text, known)
    return None


def choose_language(detected: str | None, known: str | None, supported: tuple[str, ...], default: str) -> str:
    """Keep the contact's language for short, letterless replies; fall back to a supported one."""
    lang = detected or known or default
    if lang in supported:
        return lang
    # A language without texts: English serves foreign residents better than Japanese.
    return "en" if "en" in supported else default
