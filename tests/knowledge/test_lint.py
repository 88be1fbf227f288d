from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
import yaml

from knowledge.lint import check_kb
from knowledge.loader import DEFAULT_KB_PATH, KnowledgeBaseError, load_kb

TODAY = dt.date(2026, 11, 26)


@pytest.fixture
def kb_dir(tmp_path: Path) -> Path:
    target = tmp_path / "kb"
    shutil.copytree(DEFAULT_KB_PATH, target)
    return target


def _edit(path: Path, change: object) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)  # type: ignore[operator]
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def _messages(kb_dir: Path, level: str = "error", **kw: object) -> list[str]:
    return [f"{p.where}: {p.message}" for p in check_kb(kb_dir, today=TODAY, **kw) if p.level == level]  # type: ignore[arg-type]


def test_sample_kb_is_clean() -> None:
    problems = check_kb(DEFAULT_KB_PATH, today=TODAY)
    assert [str(p) for p in problems] == []


def test_sample_kb_covers_every_topic_in_ja_and_en() -> None:
    kb = load_kb()
    assert {e.topic for e in kb.entries.values()} == set(kb.topics)
    for e in kb.entries.values():
        assert e.answer["ja"].strip() and e.answer["en"].strip()


def test_unknown_topic_and_contact_are_errors(kb_dir: Path) -> None:
    def change(d: dict) -> None:  # type: ignore[type-arg]
        d["entries"][0]["topic"] = "no_such_topic"
        d["entries"][0]["contacts"] = ["nobody"]

    _edit(kb_dir / "entries" / "money.yaml", change)
    errors = _messages(kb_dir)
    assert any("unknown topic id 'no_such_topic'" in m for m in errors)
    assert any("unknown contact id 'nobody'" in m for m in errors)


def test_duplicate_id_is_an_error(kb_dir: Path) -> None:
    first = yaml.safe_load((kb_dir / "entries" / "money.yaml").read_text(encoding="utf-8"))["entries"][0]
    _edit(kb_dir / "entries" / "health.yaml", lambda d: d["entries"].append(dict(first)))
    assert any("duplicate entry id" in m for m in _messages(kb_dir))
    with pytest.raises(KnowledgeBaseError):
        load_kb(kb_dir)


def test_missing_translation_is_an_error(kb_dir: Path) -> None:
    def change(d: dict) -> None:  # type: ignore[type-arg]
        del d["entries"][0]["answer"]["en"]

    _edit(kb_dir / "entries" / "money.yaml", change)
    assert any("missing answer translation 'en'" in m for m in _messages(kb_dir))


def test_stale_source_is_a_warning(kb_dir: Path) -> None:
    def change(d: dict) -> None:  # type: ignore[type-arg]
        d["entries"][0]["source"]["checked"] = dt.date(2020, 1, 1)

    _edit(kb_dir / "entries" / "money.yaml", change)
    warnings = _messages(kb_dir, "warning", max_source_age_days=365)
    assert any("source checked" in m and "recheck" in m for m in warnings)


def test_malformed_contact_is_an_error(kb_dir: Path) -> None:
    def change(d: dict) -> None:  # type: ignore[type-arg]
        d["contacts"][0]["phone"] = "call us"
        d["contacts"][1]["email"] = "not-an-address"

    _edit(kb_dir / "contacts.yaml", change)
    errors = _messages(kb_dir)
    assert any("malformed phone number" in m for m in errors)
    assert any("malformed email address" in m for m in errors)


def test_conflicting_questions_between_entries_are_errors(kb_dir: Path) -> None:
    money = yaml.safe_load((kb_dir / "entries" / "money.yaml").read_text(encoding="utf-8"))
    stolen = money["entries"][0]["questions"]["ja"][:3]

    def change(d: dict) -> None:  # type: ignore[type-arg]
        d["entries"][0]["questions"]["ja"].extend(stolen)

    _edit(kb_dir / "entries" / "health.yaml", change)
    assert any("matches entry" in m for m in _messages(kb_dir))


def test_invalid_yaml_is_reported_not_raised(kb_dir: Path) -> None:
    (kb_dir / "entries" / "broken.yaml").write_text("entries: [\n  - id: x\n", encoding="utf-8")
    assert any("cannot read YAML" in m for m in _messages(kb_dir))
