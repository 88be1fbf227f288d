"""Crisis detection: runs before any matching, on every message, in every conversation state.

Three outcomes (`Level`): URGENT (danger now or intent to harm: emergency numbers at once, a
life-and-safety case, staff alerted), DISTRESS (exhaustion, despair, loneliness, fear of losing control
without an act: kindness, a support line and the offer of a person, nothing opened without consent), NONE.

Signals, strongest first:
1. rules over the Japanese analyser's lemma stream and the folded surface (knowledge/crisis_ja.py) and
   over English (knowledge/crisis_en.py): the act, who does it to whom, verb forms of fear and of a slip,
   negation, and questions about where to report kept apart from a crisis happening now;
2. curated phrases per category and language in knowledge/kb/crisis.yaml (the only signal for the other
   languages: zh-Hans, zh-Hant, ko, vi, tl, pt, ne, id, th);
3. a learned signal (knowledge/crisis_learned.py): a naive Bayes classifier over character n-grams,
   trained when the detector is built (`for_kb`, under 0.1 s) from the curated examples
   (knowledge/kb/crisis/examples.yaml) and the KB's questions. On Japanese and English text where the
   rules found no urgent sign it may raise to urgent, only when the message also carries a rule-level cue
   (the screen's stems, so `screen` stays a superset) and the best urgent label outscores the ordinary one
   by a wide margin per gram. The margin was chosen on the development set, the older held-out sets and
   the look-alike worries of the tests: with it none of their ordinary messages, nor any KB question, is
   raised to urgent. It raises to distress (the offer of a person, nothing opened) by a margin chosen the
   same way. A discriminative alternative (softmax regression over the same grams, numpy) was measured
   beside it and not kept: no more urgent recall on the older held-out sets, and seconds to train;
4. similarity to curated examples (knowledge/crisis_similar.py), off by default: it may only *add*
   distress where the rules found nothing, or urgent when an urgent example is very close and no ordinary
   one is. bench/crisis.py measures it next to the rules alone; once the rules covered the kinds it used
   to catch it added nothing on any bench set and cost more than the rules, so it is switched off.

`screen` is the cheap superset check of the LINE intake (knowledge/crisis_screen.py).
"""

from __future__ import annotations

import math
import re
import threading
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

from knowledge.crisis_en import match_en, may_be_urgent_en
from knowledge.crisis_ja import (
    RuleHit,
    child_is_agent,
    fold_surface,
    ja_text,
    lemma_stream,
    match_rules,
    surface_may_be_urgent,
)
from knowledge.crisis_learned import NaiveBayes, Prediction
from knowledge.crisis_screen import ja_stem_pattern, kana_only
from knowledge.crisis_similar import Neighbour, SimilarityIndex
from knowledge.models import Crisis, CrisisCategory, KnowledgeBase
from knowledge.normalize import Normalizer, SudachiTokenizer, Tokenizer, clean

MAX_CHARS = 2000
ORDINARY_PER_ENTRY = 11  # the weight, in questions, of one KB entry's ordinary examples (see __init__)
_JA = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff\uff66-\uff9f]")
_LATIN = re.compile(r"[A-Za-z]")
_KANA = re.compile(r"[\u3040-\u30ff\uff66-\uff9f]")
_SPACE_FREE_SCRIPTS = re.compile(r"[\u4e00-\u9fff\uac00-\ud7af\u0e00-\u0e7f\u0900-\u097f\u3040-\u30ff]")
# A child writing: a school year, an age, or first-person words children use, in kana.
_CHILD_WRITER = re.compile(
    r"(?:小学|中学|中[1-3１-３]|高[1-3１-３]|高校生|高校[1-3１-３]年|こうこうせい|小[1-6１-６]|しょうがく|ちゅうがく|[0-9０-９]+(?:さい|歳)です|ねんせい|"
    r"ぼく|ぼくの|あたし|おれ(?:の|は|を)|\bi'?m (?:[5-9]|1[0-7])\b)"
)

# Written in kana alone, naming a brother, sister or parent as a child does: a child writing.
_KANA_CHILD = re.compile(
    r"(?:おにいちゃん|おねえちゃん|にいに|ねえね|いもうと|おとうと|まま|ぱぱ|おかあさん|おとうさん|おかん|おとん)"
)
_KANJI = re.compile(r"[\u4e00-\u9fff]")
_POLITE_TL = re.compile(r"(?<![a-z'])(?:po|ho) (?=[a-z])")


class Level(StrEnum):
    NONE = "none"
    DISTRESS = "distress"
    URGENT = "urgent"

    @property
    def rank(self) -> int:
        return {"none": 0, "distress": 1, "urgent": 2}[self.value]


@dataclass(frozen=True, slots=True)
class Assessment:
    """The judgement of one message. `categories` lists every category found, the leading one first;
    `signals` names what fired (rule ids, phrase categories, "similar:<label>"), never message text."""

    level: Level
    category: str | None = None
    categories: tuple[str, ...] = ()
    signals: tuple[str, ...] = ()
    similarity: float = 0.0
    lang: str | None = None  # the language of a curated phrase that matched (zh-Hans, vi...), if any


@dataclass(frozen=True, slots=True)
class CrisisHit:
    """An urgent finding, as the engine and the LINE intake use it."""

    category: CrisisCategory
    phrase: str  # the signal that fired (a rule id or "phrase:<lang>"), for statistics and tests
    also: tuple[CrisisCategory, ...] = ()  # further categories found in the same message
    lang: str | None = None  # the language the message was recognised in by a curated phrase


@dataclass(frozen=True, slots=True)
class SimilarityConfig:
    """The similarity signal: off unless enabled; thresholds chosen on bench/crisis_dev.yaml (bench/crisis.py)."""

    enabled: bool = False
    k: int = 5
    urgent_min: float = 0.62  # an urgent example at least this close...
    urgent_margin: float = 0.15  # ...and closer than any ordinary example by this much
    distress_min: float = 0.40  # a distress (or urgent) example this close, closer than ordinary ones


def fold_latin(text: str) -> str:
    """Case folded, diacritics removed (Vietnamese is often typed without them), đ → d."""
    text = unicodedata.normalize("NFKD", clean(text).replace("đ", "d").replace("\u2019", "'"))
    # Tagalog's polite "po"/"ho" stands anywhere in a sentence: phrases are written and read without it.
    return _POLITE_TL.sub("", "".join(ch for ch in text if not unicodedata.combining(ch)))


@dataclass(frozen=True, slots=True)
class LearnedConfig:
    """The learned signal; margins are mean log-likelihood differences per known gram, chosen on
    bench/crisis_dev.yaml and the older held-out sets (bench/crisis.py)."""

    enabled: bool = True
    # Best urgent label over "none" (and not below "distress"). Re-measured with the wider examples: 2.0 raised
    # one more urgent message on each of two older held-out sets, but also four more of some 240 look-alike
    # worries written for the kinds; 2.5 kept those apart.
    urgent_margin: float = 2.5
    # Distress or urgent over "none", where the rules found nothing (None: off). At 2.5 it offers a person
    # to one more distress message on the older held-out sets and to no further ordinary message of the
    # development set, the older sets or the KB's questions; at 1.5 it offered a person to ordinary ones.
    distress_margin: float | None = 2.5
    min_grams: int = 3  # fewer known grams say too little


class CrisisDetector:
    """Pure: reads the KB's crisis section once; `assess` costs well under a millisecond for a chat message."""

    def __init__(
        self,
        crisis: Crisis,
        normalizer: Normalizer | None = None,
        config: SimilarityConfig | None = None,
        learned: LearnedConfig | None = None,
        *,
        ordinary: Sequence[str] = (),
        entries: int = 0,
        replies: Sequence[str] = (),
    ) -> None:
        """`ordinary`: the KB's questions (`for_kb`), from `entries` entries; `replies`: the short replies the
        engine knows (yes, no, greetings, thanks), ordinary examples of full weight: a message of a few grams
        must not read as distress for want of ordinary short texts."""
        self._crisis = crisis
        self._tok: Tokenizer | None = normalizer.tokenizer if normalizer is not None else None
        self._config = config or SimilarityConfig()
        self._rank = {c.id: i for i, c in enumerate(crisis.categories)}
        self._cats = {c.id: c for c in crisis.categories}
        # Curated phrases, one alternation per script family; each phrase maps back to its category.
        # phrase -> (category, language); the language also tells which texts to answer in.
        dense: dict[str, tuple[str, str]] = {}  # CJK, Hangul, Thai, Devanagari: compared with spaces removed
        latin: dict[str, tuple[str, str]] = {}  # Latin scripts: whole words, case and diacritics folded
        # A phrase with "…" between its parts lets a few words stand there (爸爸…打我 finds 爸爸每天打我).
        self._gapped: list[tuple[re.Pattern[str], bool, str, str]] = []  # pattern, Latin script, category, lang
        for cat in crisis.categories:
            for lang, phrases in cat.phrases.items():
                for p in phrases:
                    if "…" in p:
                        self._gapped.append((*_gapped_pattern(p, lang), cat.id, lang))
                    elif _LATIN.search(p) and lang not in ("ja", "zh-Hans", "zh-Hant", "ko", "th", "ne"):
                        latin.setdefault(fold_latin(p), (cat.id, lang))
                    elif fold_surface(p):
                        dense.setdefault(fold_surface(p), (cat.id, lang))
        self._dense = dense
        self._latin = latin
        # One search per script tells whether any gapped phrase is there at all (most messages have none).
        by_script: dict[bool, list[str]] = {}
        for pattern, is_latin, _cat, _lang in self._gapped:
            by_script.setdefault(is_latin, []).append(f"(?:{pattern.pattern})")
        self._gapped_any = {script: re.compile("|".join(parts)) for script, parts in by_script.items()}
        self._dense_re = _alternation(dense, words=False)
        self._latin_re = _alternation(latin, words=True)
        examples = [(text, label) for label, texts in crisis.examples.items() for text in texts]
        examples += [(text, "none") for text in replies]
        self._index = SimilarityIndex([*examples, *((q, "none") for q in ordinary)] if self._config.enabled else [])
        # The learned signal needs the KB's ordinary questions among its "none" examples (`for_kb`): the
        # curated look-alikes alone are too few to keep ordinary questions apart. Off otherwise. Naive Bayes
        # flattens a label as its text grows, so a KB many times larger than the crisis examples would make
        # every ordinary gram look rare and tip look-alike worries to urgent: all of the KB's questions count,
        # with the weight of ORDINARY_PER_ENTRY questions an entry, whatever its size.
        self._learned = learned or LearnedConfig(enabled=False)
        share = min(1.0, ORDINARY_PER_ENTRY * max(entries, 1) / len(ordinary)) if ordinary else 1.0
        self._model = _trained(tuple(examples), tuple(ordinary), share) if self._learned.enabled else NaiveBayes([])
        self._assess = lru_cache(maxsize=2048)(self._assess_uncached)
        self._stems = ja_stem_pattern(fold_surface)
        self._urgent_cats = {c.id for c in crisis.categories if c.level == Level.URGENT.value}

    @classmethod
    def for_kb(
        cls,
        kb: KnowledgeBase,
        normalizer: Normalizer | None = None,
        config: SimilarityConfig | None = None,
        learned: LearnedConfig | None = None,
    ) -> CrisisDetector:
        """Ordinary KB questions join the look-alike examples of the learned and the similarity signal."""
        ordinary = [q for e in kb.entries.values() for _lang, q in e.question_list()]
        p = kb.phrases
        replies = [
            text for group in (p.yes, p.no, p.filler, *p.manners.values()) for texts in group.values() for text in texts
        ]
        return cls(
            kb.crisis,
            normalizer,
            config,
            learned or LearnedConfig(),
            ordinary=ordinary,
            entries=len(kb.entries),
            replies=replies,
        )

    @property
    def crisis(self) -> Crisis:
        return self._crisis

    def category(self, category_id: str) -> CrisisCategory:
        return self._cats[category_id]

    @property
    def example_count(self) -> int:
        return len(self._index)

    @property
    def model(self) -> NaiveBayes:
        return self._model

    def clear_cache(self) -> None:
        self._assess.cache_clear()

    # ----- the API
    def assess(self, text: str) -> Assessment:
        return self._assess(text[:MAX_CHARS])

    def detect(self, text: str) -> CrisisHit | None:
        """A hit only for urgent messages (the LINE intake lets these jump the queue)."""
        return self.hit_for(self.assess(text))

    def screen(self, text: str) -> bool:
        """Could this message be urgent? Never false when `detect` would flag it, and far cheaper: no
        analyser (knowledge/crisis_screen.py). For the intake lane only; `assess` still decides."""
        text = text[:MAX_CHARS]
        if not text.strip():
            return False
        if self._config.enabled:  # the similarity signal has no cheap stand-in
            return self.detect(text) is not None
        return self._cue(text)

    def _cue(self, text: str, phrases: list[tuple[str, str]] | None = None, surface: str | None = None) -> bool:
        """The rules' urgent signs without their guards, and the surface stems of the lemma rules' words:
        a superset of the rules, also required of the learned signal before it raises to urgent. An
        assessment passes the phrases and the folded surface it has already computed."""
        if phrases is None:
            phrases = self._phrases(text)
        if any(cat in self._urgent_cats for cat, _lang in phrases):
            return True
        if not _JA.search(text):
            return bool(_LATIN.search(text)) and may_be_urgent_en(clean(text).replace("\u2019", "'"))
        if surface is None:
            surface = fold_surface(text)
        if self._stems.search(surface) or kana_only(text) or surface_may_be_urgent(surface):
            return True
        return bool(_LATIN.search(text)) and may_be_urgent_en(clean(text).replace("\u2019", "'"))

    def hit_for(self, assessment: Assessment) -> CrisisHit | None:
        if assessment.level != Level.URGENT or assessment.category not in self._cats:
            return None
        also = tuple(self._cats[c] for c in assessment.categories[1:] if c in self._cats)
        signal = assessment.signals[0] if assessment.signals else assessment.category
        return CrisisHit(self._cats[assessment.category], signal, also, assessment.lang)

    # ----- signals
    def _assess_uncached(self, text: str) -> Assessment:
        if not text.strip():
            return Assessment(Level.NONE)
        surface = fold_surface(text)
        hits = self._rules(text, surface)
        phrase_hits = self._phrases(text, surface)
        found: dict[str, str] = {}  # category -> first signal
        for h in hits:
            found.setdefault(h.rule.category, h.rule.id)
        for cat_id, lang in phrase_hits:
            found.setdefault(cat_id, f"phrase:{lang}")
        lang_of = next((lang for _c, lang in phrase_hits if lang not in ("ja", "en")), None)
        if lang_of in ("zh-Hans", "zh-Hant"):
            lang_of = _zh_variant(text)  # a phrase written the same in both scripts says neither
        urgent = [c for c in found if self._level(c) == Level.URGENT]
        distress = [c for c in found if self._level(c) == Level.DISTRESS]
        if urgent:
            cats = self._child_writer(text, sorted(urgent, key=self._rank_of))
            signals = tuple(found[c] for c in cats if c in found)
            return Assessment(Level.URGENT, cats[0], tuple(cats), signals, lang=lang_of)
        learned = self._learned_level(text, rules_distress=bool(distress), phrases=phrase_hits, surface=surface)
        if learned is not None and learned[0] == Level.URGENT:
            cats = self._child_writer(text, [learned[1]])
            return Assessment(Level.URGENT, cats[0], tuple(cats), (f"learned:urgent:{learned[1]}",), lang=lang_of)
        near = self._index.nearest(text, self._config.k) if len(self._index) else []
        top = near[0].score if near else 0.0
        sim = self._similar(near)
        if sim is not None and sim[0] == Level.URGENT and not distress:
            cat = sim[1]
            return Assessment(Level.URGENT, cat, (cat,), (f"similar:urgent:{cat}",), top)
        if distress:
            signals = tuple(found[c] for c in distress)
            return Assessment(Level.DISTRESS, distress[0], tuple(distress), signals, top, lang_of)
        if learned is not None:
            return Assessment(Level.DISTRESS, "distress", ("distress",), ("learned:distress",), top)
        if sim is not None:
            return Assessment(Level.DISTRESS, "distress", ("distress",), (f"similar:{sim[1]}",), top)
        return Assessment(Level.NONE, similarity=top)

    def _learned_level(
        self, text: str, *, rules_distress: bool, phrases: list[tuple[str, str]], surface: str
    ) -> tuple[Level, str] | None:
        """Urgent (with its category) or distress from the classifier, within the limits set out above.
        Japanese and English only: in the other languages the curated phrases decide."""
        cfg = self._learned
        if not len(self._model) or not (_KANA.search(text) or _LATIN.search(text)):
            return None
        cue = self._cue(text, phrases, surface)
        if not cue and (cfg.distress_margin is None or rules_distress):  # nothing it could raise: skip it
            return None
        p = self._model.predict(text)
        if p.known < cfg.min_grams:
            return None
        decision = _learned_decision(p, cfg, rules_distress, cue)
        if decision == (Level.URGENT, "parent_harm") and child_is_agent(surface):
            return None  # a child hurting a sibling or a friend: a parenting question, not a parent's fear
        return decision

    def _rules(self, text: str, surface: str) -> list[RuleHit]:
        hits: list[RuleHit] = []
        if _JA.search(text):
            tok = self._tokenizer()
            hits += match_rules(lemma_stream(tok.tokens(ja_text(text))), surface)
        if _LATIN.search(text):
            hits += match_en(clean(text).replace("\u2019", "'"))
        return hits

    def _tokenizer(self) -> Tokenizer:
        if self._tok is None:
            self._tok = SudachiTokenizer()
        return self._tok

    def _phrases(self, text: str, surface: str | None = None) -> list[tuple[str, str]]:
        """(category, language) of every curated phrase found; `surface` is the folded text, if computed."""
        out: list[tuple[str, str]] = []
        if self._dense_re is not None and _SPACE_FREE_SCRIPTS.search(text):
            folded = fold_surface(text) if surface is None else surface
            found = [self._dense[p] for p in _find_all(self._dense_re, folded)]
            if _KANA.search(text):  # Japanese: Chinese phrases (中毒, 窒息) would read ordinary kanji words
                found = [(cat, lang) for cat, lang in found if not lang.startswith("zh")]
            out += found
        if self._latin_re is not None and _LATIN.search(text):
            out += [self._latin[p] for p in _find_all(self._latin_re, fold_latin(text))]
        if self._gapped:
            dense = fold_surface(text) if surface is None else surface
            scripts = {False: dense, True: fold_latin(text) if _LATIN.search(text) else ""}
            hit = {script: bool(any_re.search(scripts[script])) for script, any_re in self._gapped_any.items()}
            for pattern, is_latin, cat_id, lang in self._gapped:
                if not hit.get(is_latin) or (lang.startswith("zh") and _KANA.search(text)):
                    continue
                if pattern.search(scripts[is_latin]):
                    out.append((cat_id, lang))
        return out

    def _similar(self, near: list[Neighbour]) -> tuple[Level, str] | None:
        """Urgent only when an urgent example is very close and clearly closer than any ordinary one;
        distress when a distress or urgent example is close and closer than the ordinary ones."""
        if not near:
            return None
        cfg = self._config
        best_none = max((n.score for n in near if n.label == "none"), default=0.0)
        top = near[0]
        if (
            top.label.startswith("urgent:")
            and top.score >= cfg.urgent_min
            and top.score - best_none >= cfg.urgent_margin
        ):
            return Level.URGENT, top.label.split(":", 1)[1]
        if top.label != "none" and top.score >= cfg.distress_min and top.score > best_none:
            return Level.DISTRESS, top.label
        return None

    def _level(self, category_id: str) -> Level:
        cat = self._cats.get(category_id)
        return Level(cat.level) if cat is not None else Level.URGENT

    def _rank_of(self, category_id: str) -> int:
        return self._rank.get(category_id, len(self._rank))

    def _child_writer(self, text: str, cats: list[str]) -> list[str]:
        """A child telling of being hit or not fed needs the children's lines, not the DV or the
        reporting lines: switch the lead when the writer reads as a child."""
        if "child_sos" in cats or not {"dv", "abuse"} & set(cats) or "child_sos" not in self._cats:
            return cats
        if _CHILD_WRITER.search(clean(text)) or (_KANA_CHILD.search(text) and not _KANJI.search(text)):
            return ["child_sos", *[c for c in cats if c != "dv"]]
        return cats


_MODELS: dict[int, tuple[tuple[tuple[str, str], ...], tuple[str, ...], float, NaiveBayes]] = {}
_MODELS_LOCK = threading.Lock()


def _trained(examples: tuple[tuple[str, str], ...], ordinary: tuple[str, ...], share: float) -> NaiveBayes:
    """The learned signal for these examples, trained once per process: apps, KB reloads and tests that load
    the same KB share one read-only model (training takes a few hundred milliseconds)."""
    key = hash((examples, ordinary, share))
    with _MODELS_LOCK:
        found = _MODELS.get(key)
        if found is not None and found[:3] == (examples, ordinary, share):
            return found[3]
    model = NaiveBayes(examples, [(q, "none", share) for q in ordinary])
    with _MODELS_LOCK:
        if len(_MODELS) >= 4:  # a few KB versions at most (a reload keeps the old one until it is swapped)
            _MODELS.pop(next(iter(_MODELS)))
        _MODELS[key] = (examples, ordinary, share, model)
    return model


def _learned_decision(p: Prediction, cfg: LearnedConfig, rules_distress: bool, cue: bool) -> tuple[Level, str] | None:
    means = dict(p.labels)
    none = means.get("none", -math.inf)
    distress = means.get("distress", -math.inf)
    best = max((label for label in means if label.startswith("urgent:")), key=means.__getitem__, default=None)
    urgent = means[best] if best is not None else -math.inf
    if best is not None and urgent - none >= cfg.urgent_margin and urgent >= distress and cue:
        return Level.URGENT, best.split(":", 1)[1]
    if cfg.distress_margin is not None and not rules_distress and max(urgent, distress) - none >= cfg.distress_margin:
        return Level.DISTRESS, "distress"
    return None


# Characters common in one Chinese script and written differently in the other.
_TRADITIONAL = set("鄰這個們來說會裡麼沒對媽後無經還過時與為點醫歲電話請謝學見開關間問題讓給錢長門東車樣發現國臺灣孫殺")
_SIMPLIFIED = set("邻这个们来说会里么没对妈后无经还过时与为点医岁电话请谢学见开关间问题让给钱长门东车样发现国台湾孙杀")


def _zh_variant(text: str) -> str:
    trad = sum(ch in _TRADITIONAL for ch in text)
    simp = sum(ch in _SIMPLIFIED for ch in text)
    return "zh-Hant" if trad > simp else "zh-Hans"


_LATIN_GAP = r"(?:\s+\S+){0,3}?\s+"  # up to three words
_DENSE_GAP = ".{0,8}?"  # up to eight characters, spaces removed


def _gapped_pattern(phrase: str, lang: str) -> tuple[re.Pattern[str], bool]:
    """A phrase whose parts, split at "…", may have a few words between them, in the same sentence."""
    parts = [p.strip() for p in phrase.split("…") if p.strip()]
    latin = bool(_LATIN.search(phrase)) and lang not in ("ja", "zh-Hans", "zh-Hant", "ko", "th", "ne")
    if latin:
        body = _LATIN_GAP.join(re.escape(fold_latin(p)) for p in parts)
        return re.compile(rf"(?<![a-z])(?:{body})(?![a-z])"), True
    return re.compile(_DENSE_GAP.replace(".", "[^。.!?！？]").join(re.escape(fold_surface(p)) for p in parts)), False


def _alternation(phrases: Iterable[str], *, words: bool) -> re.Pattern[str] | None:
    if not phrases:
        return None
    body = "|".join(re.escape(p) for p in sorted(phrases, key=len, reverse=True))
    return re.compile(rf"(?<![a-z])(?:{body})(?![a-z])" if words else f"(?:{body})")


def _find_all(pattern: re.Pattern[str], text: str) -> list[str]:
    """Every phrase found, overlapping ones included (a longer phrase must not hide a shorter one)."""
    found = []
    pos = 0
    while (m := pattern.search(text, pos)) is not None:
        found.append(m.group(0))
        pos = m.start() + 1
    return found
