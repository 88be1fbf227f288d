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


def load_raw(path: Path = DEFAULT_KB_PATH) -> tuple[KnowledgeBase | None, list[Problem]]:
    """Load what can be loaded and report every schema problem (the linter's first pass)."""
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
    examples_path = path / "crisis" / "examples.yaml"
    if examples_path.exists() and isinstance(crisis_data, dict):
        crisis_data = {**crisis_data, "examples": _read(examples_path, problems).get("examples", {})}
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
    contacts: dict[str, Contact] = {}
    entries: dict[str, Entry] = {}
    entry_files: dict[str, str] = {}
    contact_files: dict[str, str] = {}
    files = [path / "contacts.yaml", *sorted((path / "entries").glob("*.yaml"))]
    for file in files:
        if not file.exists():
            continue
        data = _read(file, problems)
        rel = str(file.relative_to(path))
        for i, item in enumerate(data.get("contacts") or []):
            where = f"{rel}: contacts[{i}]" + (f" ({item.get('id')})" if isinstance(item, dict) else "")
            try:
                c = Contact.model_validate(item)
            except ValidationError as exc:
                problems.append(Problem("error", where, _fmt(exc)))
                continue
            if c.id in contacts:
                problems.append(Problem("error", where, f"duplicate contact id {c.id!r}"))
            contacts[c.id] = c
            contact_files[c.id] = rel
        for i, item in enumerate(data.get("entries") or []):
            where = f"{rel}: entries[{i}]" + (f" ({item.get('id')})" if isinstance(item, dict) else "")
            try:
                e = Entry.model_validate(item)
            except ValidationError as exc:
                problems.append(Problem("error", where, _fmt(exc)))
                continue
            if e.id in entries:
                problems.append(Problem("error", where, f"duplicate entry id {e.id!r}"))
            entries[e.id] = e
            entry_files[e.id] = rel
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


def load_kb(path: Path = DEFAULT_KB_PATH) -> KnowledgeBase:
    """Load the KB for serving; any schema error stops the start."""
    kb, problems = load_raw(path)
    errors = [p for p in problems if p.level == "error"]
    if kb is None or errors:
        raise KnowledgeBaseError(errors)
    return kb
