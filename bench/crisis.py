"""Crisis detection quality and speed, the measured detector next to the one it replaced.

Prints, for the development set (bench/crisis_dev.yaml, tuned on), the held-out set
(bench/crisis_heldout.yaml, written before tuning and never tuned on), a second held-out set
(bench/crisis_heldout2.yaml, written by another author without seeing the detector or the other sets; the
rules were later tuned on the kinds it missed, so it is held out no longer), a third
(bench/crisis_heldout3.yaml, written after that tuning and committed before the detector first ran on it;
its first-run figures are kept in the heading, then the rules were tuned on it too), a fourth
(bench/crisis_heldout4.yaml, the same), a fifth (bench/crisis_heldout5.yaml, written after all tuning and
never tuned on), a sixth (bench/crisis_heldout6.yaml, the same; first run urgent 84.6 %, ordinary->urgent
0.0 %, distress 86.1 %) and a seventh (bench/crisis_heldout7.yaml, written after all tuning on the sets above and
committed before the detector first ran on it, never tuned on: the held-out figure now):
- per category: urgent recall (the message got the emergency reply) and the right category;
- distress: the share offered a person (a distress or urgent reply);
- ordinary look-alike worries: the share raised to urgent (a false alarm: a record opened without consent)
  and to distress;
for the new detector and, side by side, for the old one (its algorithm is kept below as `OldCrisisDetector`,
verbatim from commit 1854b4e, with its phrases in bench/crisis_baseline.yaml). Then p50/p99 latency of one
assessment with a cold cache. The column "rules" is the detector without its learned signal (does the
classifier help?), with its own latency, then the time to train it; the column "+sim" is the detector with
the similarity signal switched on (it is off by default: does it help?), with its own latency.

Run: .venv/bin/python bench/crisis.py [--details]
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import knowledge.crisis as crisis_module  # noqa: E402
from knowledge.crisis import CrisisDetector, LearnedConfig, SimilarityConfig  # noqa: E402
from knowledge.loader import load_kb  # noqa: E402
from knowledge.models import Crisis, CrisisCategory  # noqa: E402
from knowledge.normalize import Normalizer, clean, to_hiragana  # noqa: E402

DEV = ROOT / "bench" / "crisis_dev.yaml"
HELDOUT = ROOT / "bench" / "crisis_heldout.yaml"
# A second held-out set written by another author, apart from the detector and the other sets.
HELDOUT2 = ROOT / "bench" / "crisis_heldout2.yaml"
# Written after the rules were tuned on HELDOUT2 and committed before the first run; tuned on since.
HELDOUT3 = ROOT / "bench" / "crisis_heldout3.yaml"
# Written after the rules were tuned on HELDOUT3 and committed before the first run; tuned on since.
HELDOUT4 = ROOT / "bench" / "crisis_heldout4.yaml"
# Written after the rules were tuned on HELDOUT4 and committed before the first run: the held-out figure
# (the one kind of its false alarms, dangers framed as a what-if, was fixed after that run).
HELDOUT5 = ROOT / "bench" / "crisis_heldout5.yaml"
# Written after all tuning on the sets above and committed before the detector first ran on it: never tuned on
# (first run: urgent 84.6 %, ordinary->urgent 0.0 %, distress offered a person 86.1 %, CPU p99 1.04 ms).
HELDOUT6 = ROOT / "bench" / "crisis_heldout6.yaml"
# Written after all tuning on the sets above and committed before the detector first ran on it: never tuned on,
# the held-out figure now (first run: urgent 83.2 %, ordinary->urgent 6.1 %, distress 74.4 %, CPU p99 0.86 ms).
HELDOUT7 = ROOT / "bench" / "crisis_heldout7.yaml"
# Written by a separate author who saw neither the detector nor the other sets, after all tuning on the sets
# above, and committed before the detector first ran on it (first run: urgent 60.8 %, ordinary->urgent 2.4 %,
# distress 72.1 %; 68.8 / 2.4 / 74.4 % with the first round of fixes); its kinds were fixed in a second round.
HELDOUT8 = ROOT / "bench" / "crisis_heldout8.yaml"
# The same way, after that second round (first run: urgent 67.2 %, ordinary->urgent 1.2 %, distress 81.4 %); its
# kinds were fixed in a third round.
HELDOUT9 = ROOT / "bench" / "crisis_heldout9.yaml"
# The same way, after the third round: never tuned on, the held-out figure now.
HELDOUT10 = ROOT / "bench" / "crisis_heldout10.yaml"
BASELINE = ROOT / "bench" / "crisis_baseline.yaml"
# The old detector had four categories; the new ones map onto them for "right category".
OLD_CATEGORY = {
    "child_danger": "child_danger",
    "poisoning": "child_danger",
    "abuse": "abuse",
    "parent_harm": "abuse",
    "child_sos": "abuse",
    "dv": "dv",
    "self_harm": "self_harm",
    "with_child": "self_harm",
}


@dataclass(frozen=True, slots=True)
class Item:
    text: str
    level: str
    category: str | None
    lang: str
    kind: str


@dataclass(frozen=True, slots=True)
class Verdict:
    level: str
    categories: tuple[str, ...]


def load_items(path: Path) -> list[Item]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if isinstance(data, dict):  # a mapping with `items:` (and room for notes), or a bare list
        data = data["items"]
    return [Item(i["text"], i["level"], i.get("category"), i.get("lang", "ja"), i.get("kind", "plain")) for i in data]


@dataclass(frozen=True, slots=True)
class OldHit:
    category: CrisisCategory
    phrase: str


# ----- the old detector, verbatim (only renamed)
def _fold(text: str) -> str:
    return to_hiragana(clean(text)).replace(" ", "")


class OldCrisisDetector:
    """Phrase stems per category, matched after width/kana folding; English phrases match whole words.
    With a normaliser, Japanese stems also match by sound: on the whole reading (a homophone slip of the
    input method: 氏にたい) and on the reading of the content words alone, so dropped particles and kana
    spelling do not hide a crisis (首を絞められた / 首しめられた / くびをしめられた)."""

    SOUND_MIN_LEN = 6  # whole readings shorter than this hide inside ordinary words (おしにたいして)
    CONTENT_MIN_LEN = 4

    def __init__(self, crisis: Crisis, normalizer: Normalizer | None = None) -> None:
        self._norm = normalizer
        self._ja: list[tuple[str, CrisisCategory]] = []
        self._sounds: list[tuple[str, str, CrisisCategory]] = []
        self._contents: list[tuple[str, str, CrisisCategory]] = []
        self._en: list[tuple[str, CrisisCategory]] = []
        for cat in crisis.categories:
            for lang, phrases in cat.phrases.items():
                for p in phrases:
                    if lang == "en":
                        self._en.append((clean(p), cat))
                        continue
                    self._ja.append((_fold(p), cat))
                    if normalizer is not None:
                        n = normalizer(p)
                        if len(n.sound) >= self.SOUND_MIN_LEN:
                            self._sounds.append((n.sound, p, cat))
                        # Only stems of two content words or more: 「虐待している」 leaves just 虐待, which
                        # would also catch 「虐待の相談窓口は？」.
                        if len(n.reading) >= self.CONTENT_MIN_LEN and len(n.words.split()) >= 2:
                            self._contents.append((n.reading, p, cat))
        # One pass per script: an alternation of every stem; the earliest category in the file wins.
        self._rank = {cat.id: i for i, cat in enumerate(crisis.categories)}
        self._ja_cat = {phrase: cat for phrase, cat in reversed(self._ja)}
        self._en_cat = {phrase: cat for phrase, cat in reversed(self._en)}
        self._ja_re = _alternation(list(self._ja_cat), words=False)
        self._en_re = _alternation(list(self._en_cat), words=True)

    def detect(self, text: str) -> OldHit | None:
        folded = _fold(text)
        if not folded:
            return None
        english = clean(text).replace("\u2019", "'")
        hits = [OldHit(self._ja_cat[m], m) for m in _find_all(self._ja_re, folded)]
        hits += [OldHit(self._en_cat[m], m) for m in _find_all(self._en_re, english)]
        if hits:
            return min(hits, key=lambda h: self._rank[h.category.id])
        if self._norm is not None:
            n = self._norm(text[:2000])
            sound = n.sound.replace(" ", "")
            for reading, phrase, cat in self._sounds:
                if reading in sound:
                    return OldHit(cat, phrase)
            for reading, phrase, cat in self._contents:
                if reading in n.reading:
                    return OldHit(cat, phrase)
        return None


def _alternation(phrases: list[str], *, words: bool) -> re.Pattern[str] | None:
    if not phrases:
        return None
    body = "|".join(re.escape(p) for p in sorted(phrases, key=len, reverse=True))
    return re.compile(rf"(?<![a-z])(?:{body})(?![a-z])" if words else f"(?:{body})")


def _find_all(pattern: re.Pattern[str] | None, text: str) -> list[str]:
    """Every stem found, overlapping ones included (a longer stem must not hide a shorter one)."""
    if pattern is None:
        return []
    found = []
    pos = 0
    while (m := pattern.search(text, pos)) is not None:
        found.append(m.group(0))
        pos = m.start() + 1
    return found


# ----- scoring
@dataclass
class Scores:
    rows: dict[str, list[int]]  # category -> [n, urgent, right category]
    distress: list[int]  # [n, offered a person]
    ordinary: list[int]  # [n, raised to urgent, raised to distress]
    misses: list[str]
    alarms: list[str]


def score(items: list[Item], judge: object, old: bool = False) -> Scores:
    s = Scores({}, [0, 0], [0, 0, 0], [], [])
    for item in items:
        v: Verdict = judge(item.text)  # type: ignore[operator]
        if item.level == "urgent":
            row = s.rows.setdefault(item.category or "?", [0, 0, 0])
            row[0] += 1
            want = OLD_CATEGORY.get(item.category or "", "") if old else item.category
            if v.level == "urgent":
                row[1] += 1
                row[2] += want in v.categories
            else:
                s.misses.append(f"{item.category}: {item.text}  -> {v.level}")
        elif item.level == "distress":
            s.distress[0] += 1
            s.distress[1] += v.level in ("distress", "urgent")
            if v.level == "none":
                s.misses.append(f"distress: {item.text}  -> none")
        else:
            s.ordinary[0] += 1
            s.ordinary[1] += v.level == "urgent"
            s.ordinary[2] += v.level == "distress"
            if v.level != "none":
                s.alarms.append(f"{item.text}  -> {v.level} {v.categories}")
    return s


def pct(a: int, b: int) -> str:
    return f"{a / b:6.1%}" if b else "    - "


def report(name: str, new: Scores, old: Scores, sim: Scores, rules: Scores) -> None:
    print(f"\n== {name}")
    print(
        f"{'category':<14}{'n':>4}  {'new urgent':>10} {'new cat':>8}  {'rules urg':>10} {'rules cat':>9}"
        f"  {'  +sim urg':>10}  {'old urgent':>10} {'old cat':>8}"
    )
    total = [0, 0, 0, 0, 0, 0, 0]
    for cat in sorted(new.rows):
        n, u, c = new.rows[cat]
        _n, ou, oc = old.rows.get(cat, [n, 0, 0])
        _n2, fu, _fc = sim.rows.get(cat, [n, 0, 0])
        _n3, ru, rc = rules.rows.get(cat, [n, 0, 0])
        total = [total[0] + n, total[1] + u, total[2] + c, total[3] + ou, total[4] + fu, total[5] + ru, total[6] + rc]
        print(
            f"{cat:<14}{n:>4}  {pct(u, n):>10} {pct(c, n):>8}  {pct(ru, n):>10} {pct(rc, n):>9}"
            f"  {pct(fu, n):>10}  {pct(ou, n):>10} {pct(oc, n):>8}"
        )
    n = total[0]
    print(
        f"{'all urgent':<14}{n:>4}  {pct(total[1], n):>10} {pct(total[2], n):>8}  {pct(total[5], n):>10}"
        f" {pct(total[6], n):>9}  {pct(total[4], n):>10}  {pct(total[3], n):>10}"
    )
    d = new.distress
    print(
        f"{'distress':<14}{d[0]:>4}  offered a person: new {pct(d[1], d[0])}  rules {pct(rules.distress[1], d[0])}"
        f"  +sim {pct(sim.distress[1], d[0])}  old {pct(old.distress[1], d[0])}"
    )
    o = new.ordinary
    print(
        f"{'ordinary':<14}{o[0]:>4}  raised to urgent: new {pct(o[1], o[0])} ({o[1]})"
        f"  rules {pct(rules.ordinary[1], o[0])} ({rules.ordinary[1]})  +sim {pct(sim.ordinary[1], o[0])}"
        f"  old {pct(old.ordinary[1], o[0])} ({old.ordinary[1]});  raised to distress: new {pct(o[2], o[0])} ({o[2]})"
    )


def latency(detector: CrisisDetector, texts: list[str], rounds: int = 20) -> tuple[float, float, float, float]:
    """p50/p99 in µs of wall-clock time and of this thread's CPU time: on a shared machine the wall clock
    also counts time the process waited for a core."""
    wall, cpu = [], []
    for _ in range(rounds):
        detector.clear_cache()
        for t in texts:
            w, c = time.perf_counter(), time.thread_time()
            detector.assess(t)
            cpu.append(time.thread_time() - c)
            wall.append(time.perf_counter() - w)
    wall.sort()
    cpu.sort()
    p99 = int(len(wall) * 0.99)
    return statistics.median(wall) * 1e6, wall[p99] * 1e6, statistics.median(cpu) * 1e6, cpu[p99] * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--details", action="store_true", help="list misses and false alarms")
    args = parser.parse_args()
    kb = load_kb()
    normalizer = Normalizer(kb.synonyms)
    new = CrisisDetector.for_kb(kb, normalizer)
    with_sim = CrisisDetector.for_kb(kb, normalizer, SimilarityConfig(enabled=True))
    rules_only = CrisisDetector.for_kb(kb, normalizer, learned=LearnedConfig(enabled=False))
    old_crisis = Crisis.model_validate(yaml.safe_load(BASELINE.read_text(encoding="utf-8")))
    old = OldCrisisDetector(old_crisis, normalizer)

    def judge_new(det: CrisisDetector) -> object:
        def judge(text: str) -> Verdict:
            a = det.assess(text)
            return Verdict(a.level.value, a.categories)

        return judge

    def judge_old(text: str) -> Verdict:
        hit = old.detect(text)
        return Verdict("urgent", (hit.category.id,)) if hit else Verdict("none", ())

    sets = (
        ("development set (tuned on)", DEV),
        ("held-out set (never tuned on)", HELDOUT),
        ("second held-out set (another author; tuned on since, no longer held out)", HELDOUT2),
        (
            "third held-out set (first run: urgent 74.5 %, ordinary->urgent 3.1 %, distress 65 %; tuned on since)",
            HELDOUT3,
        ),
        (
            "fourth held-out set (first run: urgent 83.7 %, ordinary->urgent 1.5 %, distress 85 %; tuned on since)",
            HELDOUT4,
        ),
        (
            "fifth held-out set (first run: urgent 76.5 %, ordinary->urgent 6.2 %, distress 82.5 %;"
            " only its what-if false alarms fixed since)",
            HELDOUT5,
        ),
        (
            "sixth held-out set (first run: urgent 84.6 %, ordinary->urgent 0.0 %, distress 86.1 %; never tuned on)",
            HELDOUT6,
        ),
        (
            "seventh held-out set (first run: urgent 83.2 %, ordinary->urgent 6.1 %, distress 74.4 %;"
            " the kinds it missed were fixed since)",
            HELDOUT7,
        ),
        (
            "eighth held-out set (another author; first run: urgent 60.8 %, ordinary->urgent 2.4 %, distress 72.1 %;"
            " tuned on since)",
            HELDOUT8,
        ),
        (
            "ninth held-out set (another author; first run: urgent 67.2 %, ordinary->urgent 1.2 %, distress 81.4 %;"
            " tuned on since)",
            HELDOUT9,
        ),
        ("tenth held-out set (another author; never tuned on: the held-out figure)", HELDOUT10),
    )
    for name, path in sets:
        items = load_items(path)
        s_new = score(items, judge_new(new))
        s_sim = score(items, judge_new(with_sim))
        s_old = score(items, judge_old, old=True)
        s_rules = score(items, judge_new(rules_only))
        report(f"{name}: {path.name}, {len(items)} messages", s_new, s_old, s_sim, s_rules)
        if args.details and path == DEV:  # the held-out set is never looked at item by item
            for line in s_new.misses:
                print("  MISS ", line)
            for line in s_new.alarms:
                print("  ALARM", line)
    texts = [
        i.text
        for p in (DEV, HELDOUT, HELDOUT2, HELDOUT3, HELDOUT4, HELDOUT5, HELDOUT6, HELDOUT7, HELDOUT8, HELDOUT9)
        for i in load_items(p)
    ] + [i.text for i in load_items(HELDOUT10)]
    p50, p99, c50, c99 = latency(new, texts)
    long_text = "。".join(texts[:60])[:2000]
    lp50, lp99, lc50, lc99 = latency(new, [long_text], rounds=50)
    print(
        f"\nlatency per message (cold cache, {len(texts)} messages x 20): wall p50 {p50:.0f} µs, p99 {p99:.0f} µs;"
        f" CPU p50 {c50:.0f} µs, p99 {c99:.0f} µs"
    )
    print(
        f"a 2,000-character message: wall p50 {lp50:.0f} µs, p99 {lp99:.0f} µs;"
        f" CPU p50 {lc50:.0f} µs, p99 {lc99:.0f} µs"
    )
    rp50, rp99, rc50, rc99 = latency(rules_only, texts)
    print(
        f"the rules alone, without the learned signal: wall p50 {rp50:.0f} µs, p99 {rp99:.0f} µs;"
        f" CPU p50 {rc50:.0f} µs, p99 {rc99:.0f} µs"
    )
    crisis_module._MODELS.clear()  # the trained model is shared per process: time a first build
    t0 = time.perf_counter()
    CrisisDetector.for_kb(kb, normalizer)
    print(
        f"building the detector (training the learned signal on {len(new.model.labels)} labels,"
        f" {len(new.model)} grams): {(time.perf_counter() - t0) * 1e3:.0f} ms"
    )
    sp50, sp99, sc50, sc99 = latency(with_sim, texts)
    print(
        f"with the similarity signal ({with_sim.example_count} examples): wall p50 {sp50:.0f} µs, p99 {sp99:.0f} µs;"
        f" CPU p50 {sc50:.0f} µs, p99 {sc99:.0f} µs"
    )


if __name__ == "__main__":
    main()
