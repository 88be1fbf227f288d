"""The similarity signal: nearest neighbours over character n-gram TF-IDF vectors of curated examples.

The examples (knowledge/kb/crisis/examples.yaml) are crisis, distress and look-alike ordinary messages,
plus every KB example question as an ordinary message. A message is folded like the rules' surface
(width, case, katakana → hiragana, spaces removed for Japanese), cut into 2- and 3-grams (Latin text:
words and word pairs too), weighted by TF-IDF and compared by cosine with an inverted index, so only
examples that share a gram are scored. Pure Python: a few hundred examples answer in well under 0.1 ms.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from knowledge.normalize import clean, to_hiragana

_LATIN = re.compile(r"[a-z][a-z']*")
_NON_CJK_SPACE = re.compile(r"\s+")
COMMON_SHARE = 0.01


def grams(text: str) -> Counter[str]:
    """Character 2/3-grams of the folded text; for Latin words, the words and adjacent word pairs."""
    folded = to_hiragana(clean(text)).replace("\u2019", "'")
    out: Counter[str] = Counter()
    words = _LATIN.findall(folded)
    for w in words:
        out["w:" + w] += 1
    for a, b in itertools.pairwise(words):
        out[f"w:{a} {b}"] += 1
    compact = _NON_CJK_SPACE.sub("", folded) if len(words) < 2 else folded
    for n in (2, 3):
        for i in range(len(compact) - n + 1):
            g = compact[i : i + n]
            if " " not in g:
                out[g] += 1
    return out


def gram_set(text: str) -> set[str]:
    """The distinct grams of `grams`, built without counting (the learned signal reads presence only)."""
    folded = to_hiragana(clean(text)).replace("\u2019", "'")
    words = _LATIN.findall(folded)
    out = {"w:" + w for w in words}
    out.update(f"w:{a} {b}" for a, b in itertools.pairwise(words))
    compact = _NON_CJK_SPACE.sub("", folded) if len(words) < 2 else folded
    out.update(g for n in (2, 3) for i in range(len(compact) - n + 1) if " " not in (g := compact[i : i + n]))
    return out


@dataclass(frozen=True, slots=True)
class Neighbour:
    label: str  # "urgent:<category>" | "distress" | "none"
    score: float


class SimilarityIndex:
    """Cosine nearest neighbours over TF-IDF vectors, built once from labelled examples."""

    def __init__(self, examples: Iterable[tuple[str, str]]) -> None:
        docs = [(label, grams(text)) for text, label in examples if text.strip()]
        df: Counter[str] = Counter()
        for _label, g in docs:
            df.update(g.keys())
        n = len(docs) or 1
        self._idf = {g: math.log((1 + n) / (1 + c)) + 1.0 for g, c in df.items()}
        # Grams in more than a few percent of the examples (です, ます, the...) cost the most to score and say
        # the least: they stay in the vectors' norms but are not looked up.
        self._common = {g for g, c in df.items() if c > max(4, n * COMMON_SHARE)}
        self._labels: list[str] = []
        self._postings: dict[str, list[tuple[int, float]]] = defaultdict(list)
        for i, (label, g) in enumerate(docs):
            vec = self._weigh(g)
            self._labels.append(label)
            for gram, w in vec.items():
                self._postings[gram].append((i, w))

    def _weigh(self, g: Counter[str]) -> dict[str, float]:
        vec = {k: (1.0 + math.log(c)) * self._idf.get(k, 0.0) for k, c in g.items()}
        norm = math.sqrt(sum(w * w for w in vec.values())) or 1.0
        return {k: w / norm for k, w in vec.items() if w > 0}

    def __len__(self) -> int:
        return len(self._labels)

    def nearest(self, text: str, k: int = 5) -> list[Neighbour]:
        vec = self._weigh(grams(text))
        scores: dict[int, float] = defaultdict(float)
        for gram, w in vec.items():
            if gram in self._common:
                continue
            for i, wd in self._postings.get(gram, ()):
                scores[i] += w * wd
        best = sorted(scores.items(), key=lambda kv: kv[1], reverse=True)[:k]
        return [Neighbour(self._labels[i], s) for i, s in best]
