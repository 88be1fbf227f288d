"""`concierge kb check`: the KB linter staff run before publishing changes."""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections import Counter
from pathlib import Path

from knowledge.consent import check_notices
from knowledge.loader import Problem, load_raw
from knowledge.matcher import MatchConfig, Matcher
from knowledge.models import KnowledgeBase
from knowledge.normalize import Normalizer

MIN_QUESTIONS = {"ja": 4, "en": 2}
# A reply must fit a phone screen: the answer itself (before contacts and the source line) stays short.
MAX_ANSWER_CHARS = 400
# Parents see source and contact URLs; long or percent-encoded ones are unreadable on a phone.
MAX_URL_CHARS = 100
# Phone numbers as they appear in answers: 0138-26-7010, 0120-0-78310, #8000.
_PHONE_IN_TEXT = re.compile(r"(?<![\d-])(?:0\d{1,4}-\d{1,4}-\d{3,5}|#\d{4})(?![\d-])")
# English house style (the review found these mixed): what to look for and what to write instead.
_EN_STYLE = (
    (re.compile(r"child-?rearing", re.IGNORECASE), "write 'parenting', not 'child-rearing'"),
    (re.compile(r"\bCenter\b"), "spell it 'Centre' (one spelling throughout)"),
    (re.compile(r"\bSodan\b"), "spell it 'Soudan' (one spelling throughout, as in 'DV Soudan Plus')"),
    (re.compile(r"\b\w+\(s\)"), "write the number and the word out ('1 year', '2 years'), not 'year(s)'"),
    (re.compile(r"[：；（）]"), "full-width punctuation in English text"),
)


def check_kb(
    path: Path,
    *,
    max_source_age_days: int = 365,
    max_answer_chars: int = MAX_ANSWER_CHARS,
    today: dt.date | None = None,
    config: MatchConfig | None = None,
    languages: tuple[str, ...] = ("ja", "en"),
    loaded: tuple[KnowledgeBase | None, list[Problem]] | None = None,
) -> list[Problem]:
    """Every problem found: schema, references, translations, stale sources, conflicts, and consent notices
    changed after publication. `loaded` is a KB already assembled on this folder (the live one, from
    `knowledge.loader.assemble`) to check instead of the folder's own entries and contacts."""
    kb, problems = load_raw(path) if loaded is None else loaded
    problems = [*problems, *check_notices(path / "consent")]
    if kb is None:
        return problems
    today = today or dt.date.today()
    problems += _references(kb, languages, max_source_age_days, today)
    problems += _replies(kb, languages, max_answer_chars)
    problems += _conflicts(kb, config or MatchConfig())
    return problems


def check_candidate(
    kb: KnowledgeBase,
    *,
    entries: set[str],
    contacts: set[str] | None = None,
    max_source_age_days: int = 365,
    max_answer_chars: int = MAX_ANSWER_CHARS,
    today: dt.date | None = None,
    config: MatchConfig | None = None,
    languages: tuple[str, ...] = ("ja", "en"),
    matcher: Matcher | None = None,
) -> list[Problem]:
    """The checks of `check_kb` on a candidate KB (a draft applied), restricted to what the change touches:
    the changed entries and contacts, the entries using a changed contact, and their neighbours (the entries
    the changed questions come close to, the same topic, the related entries) for conflicts both ways."""
    config = config or MatchConfig()
    today = today or dt.date.today()
    contacts = {c for c in contacts or set() if c in kb.contacts}
    matcher = matcher or Matcher(kb, Normalizer(kb.synonyms), config)
    touched = {e for e in entries if e in kb.entries}
    touched |= {e.id for e in kb.entries.values() if set(e.contacts) & contacts}
    neighbours = set(touched)
    for eid in touched:
        entry = kb.entries[eid]
        neighbours |= {r for r in entry.related if r in kb.entries}
        neighbours |= {e.id for e in kb.entries.values() if e.topic == entry.topic}
        for _lang, q in entry.question_list():
            neighbours |= {c.entry_id for c in itertools.islice(matcher.scores(q), 5)}
    problems = _references(kb, languages, max_source_age_days, today, entries=touched, contacts=contacts)
    problems += _replies(kb, languages, max_answer_chars, entries=touched, contacts=contacts)
    problems += _conflicts(kb, config, matcher=matcher, only=neighbours, against=touched)
    return problems


def _references(
    kb: KnowledgeBase,
    languages: tuple[str, ...],
    max_age: int,
    today: dt.date,
    *,
    entries: set[str] | None = None,
    contacts: set[str] | None = None,
) -> list[Problem]:
    """References, translations and sources of the given entries and contacts (default: all of them, plus
    the whole KB's topic coverage and crisis categories)."""
    whole = entries is None and contacts is None
    out: list[Problem] = []
    for e in kb.entries.values():
        if entries is not None and e.id not in entries:
            continue
        where = f"entry {e.id}"
        if e.topic not in kb.topics:
            out.append(Problem("error", where, f"unknown topic id {e.topic!r}", "topic", (e.topic,)))
        for c in e.contacts:
            if c not in kb.contacts:
                out.append(Problem("error", where, f"unknown contact id {c!r}", "contact", (c,)))
        for r in e.related:
            if r not in kb.entries:
                out.append(Problem("error", where, f"related entry {r!r} does not exist", "related", (r,)))
            elif r == e.id:
                out.append(Problem("warning", where, "an entry relates to itself", "self_related"))
        for lang in languages:
            if not e.answer.get(lang, "").strip():
                out.append(Problem("error", where, f"missing answer translation {lang!r}", "no_answer", (lang,)))
            n = len(e.questions.get(lang, []))
            if n == 0:
                out.append(Problem("error", where, f"no example questions in {lang!r}", "no_questions", (lang,)))
            elif n < MIN_QUESTIONS.get(lang, 1):
                out.append(
                    Problem(
                        "warning", where, f"only {n} example question(s) in {lang!r}", "few_questions", (lang, str(n))
                    )
                )
        age = (today - e.source.checked).days
        if age > max_age:
            stale = f"source checked {age} days ago (limit {max_age}): recheck it"
            out.append(Problem("warning", where, stale, "stale", (str(age), str(max_age))))
        if age < 0:
            future = f"source check date {e.source.checked} is in the future"
            out.append(Problem("error", where, future, "future", (str(e.source.checked),)))
        dupes = [q for q, n in Counter(q for _, q in e.question_list()).items() if n > 1]
        for q in dupes:
            out.append(Problem("warning", where, f"example question repeated: {q!r}", "repeated", (q,)))
    if whole:
        covered = {e.topic for e in kb.entries.values()}
        for t in kb.topics:
            if t not in covered:
                out.append(Problem("warning", f"topic {t}", "no entry covers this topic"))
    for contact in kb.contacts.values():
        if contacts is not None and contact.id not in contacts:
            continue
        where = f"contact {contact.id}"
        for lang in languages:
            if lang not in contact.name:
                out.append(Problem("error", where, f"missing name translation {lang!r}", "no_name", (lang,)))
            for fname, value in (("address", contact.address), ("hours", contact.hours)):
                if value is not None and lang not in value:
                    missing = f"missing {fname} translation {lang!r}"
                    out.append(Problem("error", where, missing, "no_translation", (fname, lang)))
        if not (contact.phone or contact.email or contact.url or contact.address):
            out.append(Problem("error", where, "no way to reach this contact", "unreachable"))
    if not whole:
        return out
    for cat in kb.crisis.categories:
        for cid in cat.contacts:
            if cid not in kb.contacts:
                out.append(Problem("error", f"crisis {cat.id}", f"unknown contact id {cid!r}"))
        for lang in languages:
            if lang not in cat.message:
                out.append(Problem("error", f"crisis {cat.id}", f"missing message translation {lang!r}"))
    return out


def _plain(text: str) -> str:
    """The answer as a plain-text channel shows it: runs of whitespace count as one character."""
    return re.sub(r"\s+", " ", text).strip()


def _url_problem(url: str) -> str | None:
    if "%" in url:
        return f"URL is percent-encoded ({url[:60]}...): link a readable address"
    if len(url) > MAX_URL_CHARS:
        return f"URL is {len(url)} characters long (limit {MAX_URL_CHARS}): link a shorter page"
    return None


def _numbers(*texts: str | None) -> set[str]:
    return {m for t in texts if t for m in _PHONE_IN_TEXT.findall(t)}


def _replies(
    kb: KnowledgeBase,
    languages: tuple[str, ...],
    max_chars: int,
    *,
    entries: set[str] | None = None,
    contacts: set[str] | None = None,
) -> list[Problem]:
    """What a parent sees: answer length, phone numbers the contacts do not back, URLs, English style (of the
    given entries and contacts; default all)."""
    out: list[Problem] = []
    for e in kb.entries.values():
        if entries is not None and e.id not in entries:
            continue
        where = f"entry {e.id}"
        known: set[str] = set()
        for c in kb.entry_contacts(e):
            known |= {n for n in (c.phone, c.fax) if n}
            known |= _numbers(*c.name.values(), *(c.hours or {}).values())
        for lang in languages:
            text = e.answer.get(lang, "")
            n = len(_plain(text))
            if n > max_chars:
                too_long = f"answer in {lang!r} is {n} characters (limit {max_chars})"
                out.append(Problem("error", where, too_long, "length", (lang, str(n), str(max_chars))))
            for number in sorted(_numbers(text) - known):
                unbacked = f"answer in {lang!r} gives {number}, which none of its contacts has"
                out.append(Problem("error", where, unbacked, "phone", (lang, number)))
        if (bad_url := _url_problem(e.source.url)) is not None:
            out.append(Problem("error", where, f"source {bad_url}", "url"))
        for text in (e.answer.get("en", ""), *e.questions.get("en", [])):
            for pattern, advice in _EN_STYLE:
                if pattern.search(text):
                    out.append(Problem("warning", where, f"English: {advice}: {text[:50]!r}"))
    for contact in kb.contacts.values():
        if contacts is not None and contact.id not in contacts:
            continue
        if entries is not None and contacts is None:
            break
        if contact.url and (bad_url := _url_problem(contact.url)) is not None:
            out.append(Problem("error", f"contact {contact.id}", bad_url))
        english = (contact.name.get("en"), (contact.hours or {}).get("en"), (contact.address or {}).get("en"))
        for text in filter(None, english):
            for pattern, advice in _EN_STYLE:
                if pattern.search(text):
                    out.append(Problem("warning", f"contact {contact.id}", f"English: {advice}: {text[:50]!r}"))
    return out


def _conflicts(
    kb: KnowledgeBase,
    config: MatchConfig,
    *,
    matcher: Matcher | None = None,
    only: set[str] | None = None,
    against: set[str] | None = None,
) -> list[Problem]:
    """An example question that another entry (of another topic) would answer instead is a conflict. `only`
    limits the questions looked at to these entries' and `against` the conflicts to those involving one of
    these entries."""
    out: list[Problem] = []
    matcher = matcher or Matcher(kb, Normalizer(kb.synonyms), config)
    seen: set[tuple[str, str]] = set()
    for e in kb.entries.values():
        if only is not None and e.id not in only:
            continue
        for _lang, q in e.question_list():
            ranked = matcher.scores(q)
            for other in itertools.islice(ranked, 3):
                if other.entry_id == e.id or other.score < config.answer_threshold:
                    continue
                if against is not None and e.id not in against and other.entry_id not in against:
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
                            "conflict",
                            (q, other.entry_id, f"{other.score:.0f}", f"{own:.0f}"),
                        )
                    )
    return out
