"""The `concierge` command as a user runs it: real processes, real files, real HTTP."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from knowledge.loader import DEFAULT_KB_PATH

BIN = Path(sys.executable).parent / "concierge"


def run(
    *args: str, stdin: str = "", env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [str(BIN), *args], input=stdin, capture_output=True, text=True, env=full_env, cwd=cwd, timeout=120, check=False
    )


def test_ask_json_one_line_per_question() -> None:
    questions = [
        "児童手当はいつ振り込まれますか",
        "死にたい",
        "相談員と話したい",
        "函館のおすすめラーメン屋は？",
        "ワクチン",
    ]
    result = run("ask", "--json", stdin="\n".join(questions) + "\n")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [x["action"] for x in lines] == ["answer", "urgent", "handoff", "fallback", "clarify"]
    first = lines[0]
    assert first["topic"] == "child_allowance" and first["entry_id"] and first["lang"] == "ja"
    assert first["score"] > 0 and first["reply"]
    assert {c["entry_id"] for c in lines[4]["candidates"]} and lines[3]["topic"] is None
    assert "189" in lines[1]["reply"] or "119" in lines[1]["reply"]


def test_ask_plain_and_language_hint() -> None:
    result = run("ask", "--lang", "en", stdin="ok\n")
    assert result.returncode == 0 and len(result.stdout.splitlines()) == 1


def test_kb_check_passes_on_the_sample_and_fails_on_errors(tmp_path: Path) -> None:
    ok = run("kb", "check")
    assert ok.returncode == 0, ok.stdout
    assert "0 error(s)" in ok.stdout
    broken = tmp_path / "kb"
    shutil.copytree(DEFAULT_KB_PATH, broken)
    text = (broken / "entries" / "money.yaml").read_text(encoding="utf-8")
    (broken / "entries" / "money.yaml").write_text(text.replace("topic: child_allowance", "topic: nope", 1), "utf-8")
    bad = run("kb", "check", "--path", str(broken))
    assert bad.returncode == 1
    assert "unknown topic id 'nope'" in bad.stdout


def test_kb_export_and_import_round_trip(tmp_path: Path) -> None:
    kb = tmp_path / "kb"
    shutil.copytree(DEFAULT_KB_PATH, kb)
    # the live KB of this database, seeded from this folder by the first import
    env = {"KB_PATH": str(kb), "DATABASE_URL": f"sqlite:///{tmp_path / 'kb.db'}"}
    dump = run("kb", "export", "--format", "json", env=env)
    assert dump.returncode == 0
    (tmp_path / "kb.json").write_text(dump.stdout, encoding="utf-8")
    imported = run("kb", "import", str(tmp_path / "kb.json"), env=env)
    assert imported.returncode == 0, imported.stderr
    assert "0 entries and 0 contact(s) changed" in imported.stdout
    csv_out = tmp_path / "faq.csv"
    assert run("kb", "export", "--format", "csv", "--output", str(csv_out), env=env).returncode == 0
    # UTF-8 with a BOM (for Excel in Japanese), the open-data FAQ columns first.
    assert csv_out.read_text(encoding="utf-8").startswith("\ufeffID,問い合わせ文,応答文,カテゴリ,出典URL,ライセンス")
    assert run("kb", "import", str(csv_out), env=env).returncode == 0
    assert run("kb", "export", "--format", "json", env=env).stdout == dump.stdout


def test_db_upgrade_then_chat_stores_like_any_channel(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'c.db'}"}
    up = run("db", "upgrade", env=env)
    assert up.returncode == 0, up.stderr
    chat = run("chat", stdin="キッズプラザの料金\n相談員と話したい\n/1\nよろしくお願いします\n", env=env)
    assert chat.returncode == 0, chat.stderr
    assert "受付番号" in chat.stdout
    import sqlite3

    with sqlite3.connect(tmp_path / "c.db") as conn:
        assert conn.execute("select count(*) from 'case'").fetchone()[0] == 1
        assert conn.execute("select count(*) from consentrecord where status='granted'").fetchone()[0] == 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_answers_healthz_over_http(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 's.db'}"}
    proc = subprocess.Popen(
        [str(BIN), "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail("server did not start")
                time.sleep(0.3)
        assert r.status_code == 200
        assert r.json()["status"] == "ok" and r.json()["kb_entries"] > 30
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_serve_refuses_workers_on_sqlite(tmp_path: Path) -> None:
    result = run("serve", "--workers", "2", env={"DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"})
    assert result.returncode == 2 and "PostgreSQL" in result.stderr
