"""What the language, manners and consent decisions cost per message, and how well languages are told apart.

Prints the detector's load time, median and p99 per call after warm-up, and the share of the language
samples (tests/fixtures/language_samples.yaml) and of the KB's own ja/en questions detected right.

    .venv/bin/python bench/language.py [--rounds 300]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from handlers.texts import PhraseBook
from knowledge.language import detect_language, prepare
from knowledge.loader import load_kb
from knowledge.normalize import Normalizer

SAMPLES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "language_samples.yaml"


def _timed(fn: Callable[[str], object], texts: list[str], rounds: int) -> tuple[float, float]:
    for text in texts:
        fn(text)
    times = []
    for _ in range(rounds):
        for text in texts:
            start = time.perf_counter()
            fn(text)
            times.append(time.perf_counter() - start)
    times.sort()
    return statistics.median(times) * 1e6, times[int(len(times) * 0.99)] * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()
    kb = load_kb()
    book = PhraseBook(kb.phrases, Normalizer(kb.synonyms))
    start = time.perf_counter()
    prepare()
    print(f"lingua models loaded in {time.perf_counter() - start:.2f} s")
    samples: dict[str, list[str]] = yaml.safe_load(SAMPLES.read_text(encoding="utf-8"))
    texts = [t for ts in samples.values() for t in ts] + ["ありがとうございました", "大丈夫です", "はい、同意します"]
    latin = [t for lang in ("en", "pt", "id", "tl") for t in samples[lang]]
    checks: list[tuple[str, Callable[[str], object], list[str]]] = [
        ("detect (all)", detect_language, texts),
        ("detect (Latin)", detect_language, latin),
        ("manner", book.manner, texts),
        ("consent_answer", book.consent_answer, texts),
    ]
    for name, fn, inputs in checks:
        median, p99 = _timed(fn, inputs, args.rounds)
        print(f"{name:16} median {median:8.1f} µs   p99 {p99:8.1f} µs")
    right = sum(detect_language(t) == lang for lang, ts in samples.items() for t in ts)
    total = sum(len(ts) for ts in samples.values())
    print(f"language samples: {right}/{total} right ({len(samples)} languages)")
    kb_questions = [(lang, q) for e in kb.entries.values() for lang in ("ja", "en") for q in e.questions.get(lang, [])]
    kb_right = sum(detect_language(q) == lang for lang, q in kb_questions)
    print(f"KB questions (ja/en): {kb_right}/{len(kb_questions)} kept their language")


if __name__ == "__main__":
    main()
