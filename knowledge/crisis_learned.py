"""The learned signal of the crisis detector: a multinomial naive Bayes classifier over character n-grams.

Trained when the detector is built (a few tens of milliseconds; the table is a numpy array) from the curated
examples of knowledge/kb/crisis/examples.yaml — labels "urgent:<category>", "distress" and "none" (ordinary worries that
look like a crisis) — plus every KB example question as "none". Features are the grams of
knowledge/crisis_similar.py (the folded text's character 2- and 3-grams; for Latin text also words and
word pairs), counted once per message. Class priors are uniform: the share of ordinary questions in the
examples says nothing about how often a parent in crisis writes.

`predict` scores each label over the grams the model knows. The detector combines it
with the rules (knowledge/crisis.py): it may add distress where the rules found nothing, and urgent only
where a rule-level cue is present (the screen's stems), so look-alike worries the rules keep apart stay
apart, and the intake's cheap screen stays a superset of what the detector flags.

A discriminative model over the same grams (softmax regression, trained in numpy with class-balanced
weights) was measured beside this one on the development set and the older held-out sets: it raised no
more urgent messages at a threshold that kept ordinary ones at zero, offered a person to more ordinary
messages for the same distress recall, and took seconds to train; naive Bayes stays.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from knowledge.crisis_similar import gram_set

ALPHA = 0.01  # additive smoothing; small, or a gram never seen in a small label outweighs one seen in "none"


@dataclass(frozen=True, slots=True)
class Prediction:
    """Per label, the mean log-likelihood of the message's known grams, the best first (a difference of two
    labels' means is a length-independent log-likelihood ratio per gram). `known` counts those grams."""

    labels: tuple[tuple[str, float], ...]
    known: int

    def mean(self, label: str) -> float:
        return next((s for lab, s in self.labels if lab == label), -math.inf)


class NaiveBayes:
    """Multinomial naive Bayes over binary gram features; built once, read-only afterwards."""

    def __init__(self, examples: Iterable[tuple[str, str]], weighted: Iterable[tuple[str, str, float]] = ()) -> None:
        """`examples` count once each; `weighted` (text, label, weight) count `weight` each (a large body of
        ordinary questions given the mass of a smaller one, so that it does not flatten its label)."""
        counts: dict[str, Counter[str]] = {}
        for text, label in examples:
            if text.strip():
                counts.setdefault(label, Counter()).update(gram_set(text))
        for text, label, weight in weighted:
            if text.strip():
                seen = counts.setdefault(label, Counter())
                for g in gram_set(text):
                    seen[g] += weight  # type: ignore[assignment]
        self._labels = tuple(sorted(counts))
        vocab = sorted(set().union(*counts.values())) if counts else []
        v = len(vocab)
        self._index: dict[str, int] = {g: i for i, g in enumerate(vocab)}
        # Per gram (a row) the log-likelihood under each label (a column, in the order of `_labels`); a gram a
        # label never saw gets that label's smoothed floor.
        denominators = [math.log(sum(counts[label].values()) + ALPHA * v) for label in self._labels]
        matrix = np.empty((v, len(self._labels)))
        for j, label in enumerate(self._labels):
            matrix[:, j] = math.log(ALPHA) - denominators[j]
            seen = counts[label]
            rows = [self._index[g] for g in seen]
            matrix[rows, j] = np.log(np.fromiter(seen.values(), float, len(seen)) + ALPHA) - denominators[j]
        self._matrix = matrix

    @property
    def labels(self) -> tuple[str, ...]:
        return self._labels

    def __len__(self) -> int:
        return len(self._index)

    def predict(self, text: str) -> Prediction:
        index = self._index
        rows = [i for g in gram_set(text) if (i := index.get(g)) is not None]
        if not rows:
            return Prediction((), 0)
        known = len(rows)
        score: list[float] = (self._matrix[rows].sum(axis=0) / known).tolist()
        ranked = sorted(zip(self._labels, score, strict=True), key=lambda ls: ls[1], reverse=True)
        return Prediction(tuple(ranked), known)
