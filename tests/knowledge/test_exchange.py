from __future__ import annotations

import csv
import datetime as dt
import io
import json
import shutil
from pathlib import Path

from knowledge.exchange import (
    BOM,
    CSV_COLUMNS,
    CSV_LICENCE,
    export_csv,
    export_json,
    merge_csv,
    read_csv,
    read_json,
    write_back,
)
from knowledge.loader import DEFAULT_KB_PATH, load_kb


def _copy(tmp_path: Path) -> Path:
    target = tmp_path / "kb"
    shutil.copytree(DEFAULT_KB_PATH, target)
    return target


def test_json_round_trip_is_stable(tmp_path: Path) -> None:
    path = _copy(tmp_path)
    kb = load_kb(path)
    dump = export_json(kb)
    entries, contacts, problems = read_json(dump.encode())
    assert problems == []
    write_back(path, kb, entries, contacts)
    again = load_kb(path)
    assert again.entries == kb.entries
    assert again.contacts == kb.contacts
    assert export_json(again) == dump
    assert len(json.loads(dump)["entries"]) == len(kb.entries)


def test_csv_uses_the_open_data_faq_layout_and_round_trips(tmp_path: Path) -> None:
    path = _copy(tmp_path)
    kb = load_kb(path)
    text = export_csv(kb)
    assert text.startswith(BOM)
    rows = list(csv.reader(io.StringIO(text.removeprefix(BOM))))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) - 1 == sum(len(e.questions["ja"]) for e in kb.entries.values() if e.open_data)
    groups, problems = read_csv(text.encode("utf-8"), source_url=None, today=dt.date(2026, 11, 26))
    assert problems == []
    merged, problems = merge_csv(kb, groups)
    assert problems == []
    assert all(kb.entries[i] == e for i, e in merged.items())
    write_back(path, kb, merged)
    assert export_csv(load_kb(path)) == text


def test_csv_import_in_shift_jis_adds_and_updates_entries(tmp_path: Path) -> None:
    path = _copy(tmp_path)
    kb = load_kb(path)
    first = next(iter(kb.entries.values()))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(("ID", "問い合わせ文", "応答文", "カテゴリ"))
    writer.writerow((f"{first.id}:1", "新しい聞き方です", first.answer["ja"], first.topic))
    answer = "キッズプラザのイベント情報をご確認ください。"
    writer.writerow(("new-faq:1", "絵本の読み聞かせ会はありますか", answer, "events"))
    writer.writerow(("new-faq:2", "読み聞かせ 日程", answer, "events"))
    body = out.getvalue()
    groups, problems = read_csv(body.encode("cp932"), source_url="https://example.org/faq", today=dt.date(2026, 11, 26))
    assert problems == []
    merged, problems = merge_csv(kb, groups)
    assert problems == []
    write_back(path, kb, merged)
    after = load_kb(path)
    assert after.entries[first.id].questions["ja"] == ["新しい聞き方です"]
    assert after.entries[first.id].answer["en"] == first.answer["en"]
    assert after.entries["new-faq"].questions["ja"] == ["絵本の読み聞かせ会はありますか", "読み聞かせ 日程"]


def test_csv_with_two_answers_for_one_entry_is_refused() -> None:
    body = "ID,問い合わせ文,応答文,カテゴリ\nx:1,質問,答えA,events\nx:2,質問2,答えB,events\n"
    _groups, problems = read_csv(body.encode(), source_url=None, today=dt.date(2026, 11, 26))
    assert any("two different answers" in p.message for p in problems)


def test_csv_is_open_data_ready(tmp_path: Path) -> None:
    kb = load_kb(_copy(tmp_path))
    text = export_csv(kb)
    # UTF-8 with a BOM once written, so that Excel in Japanese reads it.
    assert text.encode("utf-8").startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(text.removeprefix(BOM))))
    titles = {t.title for t in kb.topics.values()}
    assert {r["カテゴリ"] for r in rows} <= titles
    assert all(r["出典URL"].startswith("https://") or r["出典URL"].startswith("http://") for r in rows)
    assert {r["ライセンス"] for r in rows} == {CSV_LICENCE}
    exported = {r["ID"].split(":")[0] for r in rows}
    chat_only = {e.id for e in kb.entries.values() if not e.open_data}
    assert chat_only, "the sample KB marks the chat-only entries"
    assert exported.isdisjoint(chat_only)
    assert not any("このチャット" in r["応答文"] for r in rows)


def test_csv_import_accepts_topic_titles_and_refuses_unknown_categories(tmp_path: Path) -> None:
    kb = load_kb(_copy(tmp_path))
    title = kb.topics["events"].title
    body = (
        "ID,問い合わせ文,応答文,カテゴリ\r\n"
        f"by-title:1,読み聞かせはありますか,図書館の案内をご覧ください。,{title}\r\n"
        "by-nothing:1,質問,答え,存在しない分類\r\n"
    )
    groups, problems = read_csv(body.encode(), source_url="https://example.org/faq", today=dt.date(2026, 12, 1))
    assert problems == []
    merged, problems = merge_csv(kb, groups)
    assert merged["by-title"].topic == "events"
    assert any("unknown category" in p.message for p in problems)
