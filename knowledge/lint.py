"""`concierge kb check`: the KB linter staff run before publishing changes."""

from __future__ import annotations

import datetime as dt
import itertools
from collections import Counter
from pathlib import Path

from knowledge.loader import Problem, load_raw
from knowledge.matcher import MatchConfig, Matcher
from knowledge.models import KnowledgeBase
from knowledge.normalize import Normalizer

MIN_QUESTIONS = {"ja": 4, "en": 2}


def check_kb(
    path: Path,
    *,
    max_source_age_days: int = 365,
    today: dt.date | None = None,
    config: MatchConfig | None = None,
    languages: tuple[str, ...] = ("ja", "en"),
) -> list[Problem]:
    """Every problem found: schema, references, translations, stale sources, conflicts."""
    kb, problems = load_raw(path)
    if kb is None:
        return problems
    today = today or dt.date.today()
    problems += _references(kb, languages, max_source_age_days, today)
    problems += _conflicts(kb, config or MatchConfig())
    return problems


def _references(kb: KnowledgeBase, languages: tuple[str, ...], max_age: int, today: dt.date) -> list[Problem]:
    out: list[Problem] = []
    for e in kb.entries.values():
        where = f"entry {e.id}"
        if e.topic not in kb.topics:
            out.append(Problem("error", where, f"unknown topic id {e.topic!r}"))
        for c in e.contacts:
            if c not in kb.contacts:
                out.append(Problem("error", where, f"unknown contact id {c!r}"))
        for r in e.related:
            if r not in kb.entries:
                out.append(Problem("error", where, f"related entry {r!r} does not exist"))
            elif r == e.id:
                out.append(Problem("warning", where, "an entry relates to itself"))
        for lang in languages:
            if not e.answer.get(lang, "").strip():
                out.append(Problem("error", where, f"missing answer translation {lang!r}"))
            n = len(e.questions.get(lang, []))
            if n == 0:
                out.append(Problem("error", where, f"no example questions in {lang!r}"))
            elif n < MIN_QUESTIONS.get(lang, 1):
                out.append(Problem("warning", where, f"only {n} example question(s) in {lang!r}"))
        age = (today - e.source.checked).days
        if age > max_age:
            out.append(Problem("warning", where, f"source checked {age} days ago (limit {max_age}): recheck it"))
        if age < 0:
            out.append(Problem("error", where, f"source check date {e.source.checked} is in the future"))
        dupes = [q for q, n in Counter(q for _, q in e.question_list()).items() if n > 1]
        for q in dupes:
            out.append(Problem("warning", where, f"example question repeated: {q!r}"))
    covered = {e.topic for e in kb.entries.values()}
    for t in kb.topics:
        if t not in covered:
            out.append(Problem("warning", f"topic {t}", "no entry covers this topic"))
    for contact in kb.contacts.values():
        where = f"contact {contact.id}"
        for lang in languages:
            if lang not in contact.name:
                out.append(Problem("error", where, f"missing name translation {lang!r}"))
            for fname, value in (("address", contact.address), ("hours", contact.hours)):
                if value is not None and lang not in value:
                    out.append(Problem("error", where, f"missing {fname} translation {lang!r}"))
        if not (contact.phone or contact.email or contact.url or contact.address):
            out.append(Problem("error", where, "no way to reach this contact"))
    for cat in kb.crisis.categories:
        for cid in cat.contacts:
            if cid not in kb.contacts:
                out.append(Problem("error", f"crisis {cat.id}", f"unknown contact id {cid!r}"))
        for lang in languages:
            if lang not in cat.message:
                out.append(Problem("error", f"crisis {cat.id}", f"missing message translation {lang!r}"))
    return out


def _conflicts(kb: KnowledgeBase, config: MatchConfig) -> list[Problem]:
    """An example question that another entry (of another topic) would answer instead is a conflict."""
    out: list[Problem] = []
    matcher = Matcher(kb, Normalizer(kb.synonyms), config)
    seen: set[tuple[str, str]] = set()
    for e in kb.entries.values():
        for _lang, q in e.question_list():
            ranked = matcher.scores(q)
            for other in itertools.islice(ranked, 3):
                if other.entry_id == e.id or other.score < config.answer_threshold:
                    continue
                own = next((c.score for c in ranked if c.entry_id == e.id), 0.0)
                if other.score >= own:
                    key = (e.id, other.entry_id)
                    if key in seen:
                        continue
                    seen.add(key)
                    level = "error" if kb.entries[other.entry_id].topic != e.topic else "warning"
                    out.append(
                        Problem(
                            level,
                            f"entry {e.id}",
                            f"question {q!r} matches entry {other.entry_id!r} ({other.score:.0f}) "
                            f"at least as well as its own ({own:.0f})",
                        )
                    )
    return out
