"""The learned signal of the crisis detector: a multinomial naive Bayes classifier over character n-grams.

Trained when the detector is built (a few tens of milliseconds, pure Python) from the curated examples of
knowledge/kb/crisis/examples.yaml — labels "urgent:<category>", "distress" and "none" (ordinary worries that
look like a crisis) — plus every KB example question as "none". Features are the grams of
knowledge/crisis_similar.py (the folded text's character 2- and 3-grams; for Latin text also words and
word pairs), counted once per message. Class priors are uniform: the share of ordinary questions in the
examples says nothing about how often a parent in crisis writes.

`predict` scores each label over the grams the model knows. The detector combines it
with the rules (knowledge/crisis.py): it may add distress where the rules found nothing, and urgent only
where a rule-level cue is present (the screen's stems), so look-alike worries the rules keep apart stay
apart, and the intake's cheap screen stays a superset of what the detector flags.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from knowledge.crisis_similar import grams

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

    def __init__(self, examples: Iterable[tuple[str, str]]) -> None:
        counts: dict[str, Counter[str]] = {}
        for text, label in examples:
            if text.strip():
                counts.setdefault(label, Counter()).update(set(grams(text)))
        self._labels = tuple(sorted(counts))
        vocab = set().union(*counts.values()) if counts else set()
        v = len(vocab)
        # Per gram: the log-likelihood under each label, in the order of `_labels`; a gram a label never saw
        # gets that label's smoothed floor.
        denominators = [math.log(sum(counts[label].values()) + ALPHA * v) for label in self._labels]
        floor = [math.log(ALPHA) - d for d in denominators]
        table: dict[str, list[float]] = {g: list(floor) for g in vocab}
        for i, label in enumerate(self._labels):
            d = denominators[i]
            for g, c in counts[label].items():
                table[g][i] = math.log(c + ALPHA) - d
        self._weights: dict[str, tuple[float, ...]] = {g: tuple(w) for g, w in table.items()}

    @property
    def labels(self) -> tuple[str, ...]:
        return self._labels

    def __len__(self) -> int:
        return len(self._weights)

    def predict(self, text: str) -> Prediction:
        weights = self._weights
        rows = [w for g in set(grams(text)) if (w := weights.get(g)) is not None]
        if not rows:
            return Prediction((), 0)
        known = len(rows)
        score = [sum(col) / known for col in zip(*rows, strict=True)]
        ranked = sorted(zip(self._labels, score, strict=True), key=lambda ls: ls[1], reverse=True)
        return Prediction(tuple(ranked), known)
