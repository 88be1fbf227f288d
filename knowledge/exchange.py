"""KB export and import: a full JSON dump, and CSV in the 子育てオープンデータ協議会 FAQ layout.

CSV rows are one per Japanese example question: ID is `<entry id>:<n>`, 問い合わせ文 the question, 応答文
the Japanese answer, カテゴリ the Japanese topic title, 出典URL the page the answer rests on and ライセンス the
licence of the row. The file is UTF-8 with a BOM (Excel in Japanese reads it without garbling). Entries marked
`open_data: false` (they only make sense inside the chat) are left out. Importing merges into the KB folder
(unchanged fields are kept; カテゴリ may be a topic title or id), so export → import → export gives the same file.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml

from knowledge.loader import KnowledgeBaseError, Problem
from knowledge.models import Contact, Entry, KnowledgeBase

CSV_COLUMNS = ("ID", "問い合わせ文", "応答文", "カテゴリ", "出典URL", "ライセンス")
# The columns an imported file must have; 出典URL and ライセンス are optional on import.
REQUIRED_COLUMNS = CSV_COLUMNS[:4]
# The answers are the project's own words; published under the licence Japanese open data usually carries
# (compatible with the government's standard terms of use, 政府標準利用規約 2.0).
CSV_LICENCE = "CC BY 4.0"
BOM = "\ufeff"
IMPORTED_FILE = "entries/imported.yaml"


def export_json(kb: KnowledgeBase) -> str:
    data = {
        "version": 1,
        "topics": [t.model_dump() for t in kb.topics.values()],
        "contacts": [c.model_dump(mode="json", exclude_none=True) for c in kb.contacts.values()],
        "entries": [entry_dict(e) for e in kb.entries.values()],
    }
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


def export_csv(kb: KnowledgeBase, *, licence: str = CSV_LICENCE) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for e in kb.entries.values():
        if not e.open_data:
            continue
        title = kb.topics[e.topic].title if e.topic in kb.topics else e.topic
        for n, q in enumerate(e.questions.get("ja", []), 1):
            writer.writerow((f"{e.id}:{n}", q, e.answer.get("ja", ""), title, e.source.url, licence))
    return BOM + out.getvalue()


def contact_dict(c: Contact) -> dict[str, Any]:
    """A contact as written in contacts.yaml."""
    return c.model_dump(mode="json", exclude_none=True)


def entry_dict(e: Entry) -> dict[str, Any]:
    """An entry as written in the entry files (defaults left out)."""
    d = e.model_dump(mode="json", exclude_none=True)
    for key in ("related", "contacts"):
        if not d.get(key):
            d.pop(key, None)
    if d.get("open_data") is True:  # the default: written only when an entry is kept out of the export
        d.pop("open_data")
    return d


def read_csv(data: bytes, *, source_url: str | None, today: dt.date) -> tuple[list[dict[str, Any]], list[Problem]]:
    """Rows grouped into partial entries (id, topic, ja questions, ja answer)."""
    text = _decode(data)
    reader = csv.DictReader(io.StringIO(text))
    problems: list[Problem] = []
    missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        return [], [Problem("error", "csv", f"missing columns: {', '.join(missing)}")]
    groups: dict[str, dict[str, Any]] = defaultdict(lambda: {"questions": []})
    for line, row in enumerate(reader, 2):
        raw_id = (row["ID"] or "").strip()
        entry_id = raw_id.split(":", 1)[0] or f"imported-{line}"
        g = groups[entry_id]
        g["id"] = entry_id
        q = (row["問い合わせ文"] or "").strip()
        a = (row["応答文"] or "").strip()
        topic = (row["カテゴリ"] or "").strip()
        if not q or not a or not topic:
            problems.append(Problem("error", f"csv line {line}", "empty question, answer or category"))
            continue
        if g.get("answer") not in (None, a):
            problems.append(Problem("error", f"csv line {line}", f"entry {entry_id!r} has two different answers"))
        if g.get("topic") not in (None, topic):
            problems.append(Problem("error", f"csv line {line}", f"entry {entry_id!r} has two categories"))
        g["answer"], g["topic"] = a, topic
        g["questions"].append(q)
    for g in groups.values():
        g["source_url"] = source_url
        g["today"] = today
    return list(groups.values()), problems


def _decode(data: bytes) -> str:
    for encoding in ("utf-8-sig", "cp932"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise KnowledgeBaseError([Problem("error", "csv", "not UTF-8 or Shift_JIS (cp932)")])


def merge_csv(kb: KnowledgeBase, rows: list[dict[str, Any]]) -> tuple[dict[str, Entry], list[Problem]]:
    """Entries after applying the CSV rows: existing ones keep their other languages and fields."""
    problems: list[Problem] = []
    merged: dict[str, Entry] = {}
    by_title = {t.title: t.id for t in kb.topics.values()}
    for g in rows:
        topic = by_title.get(g["topic"], g["topic"])
        if topic not in kb.topics:
            problems.append(Problem("error", f"entry {g['id']}", f"unknown category {g['topic']!r}"))
            continue
        g = {**g, "topic": topic}
        old = kb.entries.get(g["id"])
        if old is not None:
            data = old.model_dump()
            data["topic"] = g["topic"]
            data["questions"] = {**old.questions, "ja": g["questions"]}
            data["answer"] = {**old.answer, "ja": g["answer"]}
        else:
            if not g["source_url"]:
                problems.append(Problem("error", f"entry {g['id']}", "new entry: give --source-url"))
                continue
            data = {
                "id": g["id"],
                "topic": g["topic"],
                "questions": {"ja": g["questions"]},
                "answer": {"ja": g["answer"]},
                "source": {"url": g["source_url"], "checked": g["today"]},
            }
        try:
            merged[g["id"]] = Entry.model_validate(data)
        except ValueError as exc:
            problems.append(Problem("error", f"entry {g['id']}", str(exc)))
    return merged, problems


def read_json(data: bytes) -> tuple[dict[str, Entry], dict[str, Contact], list[Problem]]:
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return {}, {}, [Problem("error", "json", f"cannot parse: {exc}")]
    problems: list[Problem] = []
    entries: dict[str, Entry] = {}
    contacts: dict[str, Contact] = {}
    for item in doc.get("entries", []):
        try:
            e = Entry.model_validate(item)
            entries[e.id] = e
        except ValueError as exc:
            problems.append(Problem("error", f"entry {item.get('id')}", str(exc)))
    for item in doc.get("contacts", []):
        try:
            c = Contact.model_validate(item)
            contacts[c.id] = c
        except ValueError as exc:
            problems.append(Problem("error", f"contact {item.get('id')}", str(exc)))
    return entries, contacts, problems


def write_back(
    path: Path, kb: KnowledgeBase, entries: dict[str, Entry], contacts: dict[str, Contact] | None = None
) -> list[str]:
    """Write changed entries and contacts into the files they came from (new ones into imported.yaml)."""
    contacts = contacts or {}
    by_file: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: {"contacts": [], "entries": []})
    all_entries = {**kb.entries, **entries}
    all_contacts = {**kb.contacts, **contacts}
    touched = {kb.entry_files.get(i, IMPORTED_FILE) for i in entries}
    touched |= {kb.contact_files.get(i, "contacts.yaml") for i in contacts}
    for cid, c in all_contacts.items():
        f = kb.contact_files.get(cid, "contacts.yaml")
        if f in touched:
            by_file[f]["contacts"].append(c.model_dump(mode="json", exclude_none=True))
    for eid, e in all_entries.items():
        f = kb.entry_files.get(eid, IMPORTED_FILE)
        if f in touched:
            by_file[f]["entries"].append(entry_dict(e))
    written = []
    for rel in sorted(touched):
        doc = {k: v for k, v in by_file[rel].items() if v}
        target = path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False, width=1000), encoding="utf-8")
        written.append(rel)
    return written
