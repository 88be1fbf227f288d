from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
import yaml

from knowledge.lint import check_kb
from knowledge.loader import DEFAULT_KB_PATH, KnowledgeBaseError, load_kb

TODAY = dt.date(2026, 12, 1)


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
    # `checked` is the date the cited page itself shows; pages older than the limit are flagged for staff to
    # recheck (a warning, not an error), and nothing else may be reported.
    problems = check_kb(DEFAULT_KB_PATH, today=TODAY)
    assert [str(p) for p in problems if "recheck it" not in p.message] == []


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


def test_phone_number_missing_from_the_contacts_is_an_error(kb_dir: Path) -> None:
    def change(d: dict) -> None:  # type: ignore[type-arg]
        d["entries"][0]["answer"]["ja"] += "詳しくは 0138-99-9999 へ。"
        d["entries"][0]["answer"]["en"] += " Ask #9999."

    _edit(kb_dir / "entries" / "money.yaml", change)
    errors = _messages(kb_dir)
    assert any("0138-99-9999" in m and "none of its contacts" in m for m in errors)
    assert any("#9999" in m for m in errors)


def test_a_number_from_the_contacts_is_accepted(kb_dir: Path) -> None:
    kb = load_kb(kb_dir)
    entry = next(e for e in kb.entries.values() if any(kb.contacts[c].phone for c in e.contacts))
    phone = next(kb.contacts[c].phone for c in entry.contacts if kb.contacts[c].phone)
    path = kb_dir / kb.entry_files[entry.id]

    def change(d: dict) -> None:  # type: ignore[type-arg]
        item = next(x for x in d["entries"] if x["id"] == entry.id)
        item["answer"]["ja"] = f"窓口（{phone}）へどうぞ。"

    _edit(path, change)
    assert not any(entry.id in m and "none of its contacts" in m for m in _messages(kb_dir))


def test_long_or_percent_encoded_source_url_is_an_error(kb_dir: Path) -> None:
    def change(d: dict) -> None:  # type: ignore[type-arg]
        d["entries"][0]["source"]["url"] = "https://example.org/%E5%87%BD%E9%A4%A8"
        d["entries"][1]["source"]["url"] = "https://example.org/" + "a" * 100

    _edit(kb_dir / "entries" / "money.yaml", change)
    errors = _messages(kb_dir)
    assert any("percent-encoded" in m for m in errors)
    assert any("characters long (limit 100)" in m for m in errors)


def test_long_answer_is_an_error_at_the_limit(kb_dir: Path) -> None:
    def change(d: dict) -> None:  # type: ignore[type-arg]
        d["entries"][0]["answer"]["ja"] = "あ" * 401
        d["entries"][1]["answer"]["en"] = "word " * 80  # 400 characters once trailing space is stripped

    _edit(kb_dir / "entries" / "money.yaml", change)
    errors = _messages(kb_dir)
    assert any("answer in 'ja' is 401 characters (limit 400)" in m for m in errors)
    assert not any("answer in 'en'" in m for m in errors)
    assert any("(limit 200)" in m for m in _messages(kb_dir, max_answer_chars=200))


def test_english_style_slips_are_warnings(kb_dir: Path) -> None:
    def change(d: dict) -> None:  # type: ignore[type-arg]
        d["entries"][0]["answer"]["en"] = "Child-rearing help at the Center for 1 year(s)： ask."

    _edit(kb_dir / "entries" / "money.yaml", change)
    warnings = _messages(kb_dir, "warning")
    for advice in ("parenting", "Centre", "year(s)", "full-width"):
        assert any(advice in m for m in warnings), advice


def test_sample_kb_answers_fit_a_phone() -> None:
    kb = load_kb()
    for e in kb.entries.values():
        assert len(e.answer["ja"]) <= 300, e.id
        assert len(e.source.url) <= 100 and "%" not in e.source.url, e.id


def test_sample_kb_synonyms_do_not_change_meaning() -> None:
    kb = load_kb()
    variants = {v: canonical for canonical, vs in kb.synonyms.groups.items() for v in vs}
    # 妊活 is trying to conceive, 家庭内暴力 is often a child's violence, a 保育士 is not the concierge.
    assert variants.get("妊活") != "妊娠"
    assert variants.get("家庭内暴力") != "DV"
    assert variants.get("保育士さん") != "コンシェルジュ"
    assert variants.get("特別児童扶養手当") != "児童扶養手当"


def test_sample_kb_files_night_illness_under_its_own_topic() -> None:
    kb = load_kb()
    assert len(kb.topics) == 43
    for entry_id in ("night-sick-child", "night-phone-8000"):
        assert kb.entries[entry_id].topic == "illness_emergency"


def test_sample_kb_says_nothing_stale() -> None:
    kb = load_kb()
    for e in kb.entries.values():
        text = e.answer["ja"] + e.answer["en"]
        assert "健康保険証をお持ち" not in text, e.id  # マイナ保険証 or 資格確認書 now
        assert "保育士が対応" not in text and "保育士が相談" not in text, e.id  # the concierge is a 相談員
        assert "試行" not in e.answer["ja"], e.id  # こども誰でも通園制度 is no longer a trial
        assert "最新の情報" not in e.answer["ja"], e.id  # the renderer says it once
