"""Reads the staff-curated YAML knowledge base into a `KnowledgeBase`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from knowledge.models import Contact, Crisis, Entry, KnowledgeBase, Phrases, Synonyms, Topic

DEFAULT_KB_PATH = Path(__file__).resolve().parent / "kb"


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding of the loader or the linter."""

    level: str  # "error" | "warning"
    where: str
    message: str
    # What kind of finding (conflict, length, phone...) and its particulars, for messages in other words
    # (the console says them in Japanese); empty for findings that have no kind of their own.
    code: str = ""
    detail: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"{self.level}: {self.where}: {self.message}"


class KnowledgeBaseError(Exception):
    """The KB could not be loaded; `problems` lists why."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


def _read(path: Path, problems: list[Problem]) -> Any:
    try:
        with path.open(encoding="utf-8") as fh:
            return yaml.safe_load(fh) or {}
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
        problems.append(Problem("error", str(path.name), f"cannot read YAML: {exc}"))
        return {}


def _fmt(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in exc.errors())


def load_raw(path: Path = DEFAULT_KB_PATH, *, items: bool = True) -> tuple[KnowledgeBase | None, list[Problem]]:
    """Load what can be loaded and report every schema problem (the linter's first pass). Without `items`
    only the folder's own parts are read (topics, synonyms, crisis, phrases), not its entries and contacts."""
    problems: list[Problem] = []
    topics: dict[str, Topic] = {}
    for item in _read(path / "topics.yaml", problems).get("topics", []):
        try:
            t = Topic.model_validate(item)
        except ValidationError as exc:
            problems.append(Problem("error", "topics.yaml", _fmt(exc)))
            continue
        topics[t.id] = t
    synonyms = Synonyms()
    syn_path = path / "synonyms.yaml"
    if syn_path.exists():
        try:
            synonyms = Synonyms.model_validate(_read(syn_path, problems))
        except ValidationError as exc:
            problems.append(Problem("error", "synonyms.yaml", _fmt(exc)))
    crisis = Crisis(categories=[], notice={})
    crisis_data = _read(path / "crisis.yaml", problems)
    # Training examples of the learned signal: every file of crisis/ (examples.yaml, written as variants of
    # each kind, and reviewed.yaml, messages of past bench rounds), merged label by label.
    if isinstance(crisis_data, dict):
        merged: dict[str, list[str]] = {}
        for examples_path in sorted((path / "crisis").glob("*.yaml")):
            data = _read(examples_path, problems)
            for label, texts in (data.get("examples", {}) if isinstance(data, dict) else {}).items():
                merged.setdefault(label, []).extend(texts or [])
        if merged:
            crisis_data = {**crisis_data, "examples": merged}
    try:
        crisis = Crisis.model_validate(crisis_data)
    except ValidationError as exc:
        problems.append(Problem("error", "crisis.yaml", _fmt(exc)))

    phrases = Phrases()
    if (path / "phrases.yaml").exists():
        try:
            phrases = Phrases.model_validate(_read(path / "phrases.yaml", problems))
        except ValidationError as exc:
            problems.append(Problem("error", "phrases.yaml", _fmt(exc)))
    files = [path / "contacts.yaml", *sorted((path / "entries").glob("*.yaml"))] if items else []
    sources = [(str(f.relative_to(path)), _read(f, problems)) for f in files if f.exists()]
    contacts, entries, contact_files, entry_files = _items(sources, problems)
    if not topics:
        problems.append(Problem("error", "topics.yaml", "no topics"))
        return None, problems
    kb = KnowledgeBase(
        topics=topics,
        contacts=contacts,
        entries=entries,
        synonyms=synonyms,
        crisis=crisis,
        phrases=phrases,
        entry_files=entry_files,
        contact_files=contact_files,
    )
    return kb, problems


def _items(
    sources: list[tuple[str, Any]], problems: list[Problem]
) -> tuple[dict[str, Contact], dict[str, Entry], dict[str, str], dict[str, str]]:
    """Validate the contacts and entries of each (file, document) in order; report every problem."""
    contacts: dict[str, Contact] = {}
    entries: dict[str, Entry] = {}
    entry_files: dict[str, str] = {}
    contact_files: dict[str, str] = {}
    for rel, data in sources:
        if not isinstance(data, dict):
            problems.append(Problem("error", rel, "not a mapping"))
            continue
        for i, item in enumerate(data.get("contacts") or []):
            where = f"{rel}: contacts[{i}]" + (f" ({item.get('id')})" if isinstance(item, dict) else "")
            try:
                c = Contact.model_validate(item)
            except ValidationError as exc:
                problems.append(Problem("error", where, _fmt(exc), code="schema"))
                continue
            if c.id in contacts:
                problems.append(Problem("error", where, f"duplicate contact id {c.id!r}", code="duplicate"))
            contacts[c.id] = c
            contact_files[c.id] = rel
        for i, item in enumerate(data.get("entries") or []):
            where = f"{rel}: entries[{i}]" + (f" ({item.get('id')})" if isinstance(item, dict) else "")
            try:
                e = Entry.model_validate(item)
            except ValidationError as exc:
                problems.append(Problem("error", where, _fmt(exc), code="schema"))
                continue
            if e.id in entries:
                problems.append(Problem("error", where, f"duplicate entry id {e.id!r}", code="duplicate"))
            entries[e.id] = e
            entry_files[e.id] = rel
    return contacts, entries, contact_files, entry_files


def assemble(
    path: Path,
    *,
    entries: list[tuple[str | None, dict[str, Any]]],
    contacts: list[tuple[str | None, dict[str, Any]]],
    base: tuple[KnowledgeBase | None, list[Problem]] | None = None,
) -> tuple[KnowledgeBase | None, list[Problem]]:
    """The KB of the folder `path` (topics, synonyms, crisis, phrases) with these entries and contacts in place
    of the folder's own: (origin file or None, item as written) pairs, validated as the loader validates files,
    so a problem reads the same whichever store the items come from. `base` is the folder's part read before
    (`load_raw(path, items=False)`), to spare reading it again."""
    folder, found = base if base is not None else load_raw(path, items=False)
    problems = list(found)
    if folder is None:
        return None, problems
    sources = [(origin or "live", {"contacts": [item]}) for origin, item in contacts]
    sources += [(origin or "live", {"entries": [item]}) for origin, item in entries]
    found_contacts, found_entries, contact_files, entry_files = _items(sources, problems)
    kb = folder.model_copy(
        update={
            "contacts": found_contacts,
            "entries": found_entries,
            "contact_files": {k: v for k, v in contact_files.items() if v != "live"},
            "entry_files": {k: v for k, v in entry_files.items() if v != "live"},
        }
    )
    return kb, problems


def load_kb(path: Path = DEFAULT_KB_PATH) -> KnowledgeBase:
    """Load the KB for serving; any schema error stops the start."""
    kb, problems = load_raw(path)
    errors = [p for p in problems if p.level == "error"]
    if kb is None or errors:
        raise KnowledgeBaseError(errors)
    return kb
