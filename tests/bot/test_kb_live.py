"""The live KB across processes, as deployed: an edit saved in the console of one `concierge serve` is
answered by a second server process on the same database within 10 s, without a restart; and the CLI's
`kb check` / `kb export` / `kb import` / `ask` act on that same live KB."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import httpx
import pytest
from sqlalchemy import Engine

from bot.cli import main
from bot.runtime import Runtime
from bot.settings import Settings
from handlers.channels.line import sign
from handlers.types import render_plain
from knowledge.exchange import entry_dict
from knowledge.loader import load_kb
from knowledge.models import Entry
from storage import kb as kbdb
from storage import staff as staffdb
from storage.db import session_factory, transaction
from tests.e2e.kit import PASSWORD, make_staff
from tests.fakes.line_api import SECRET, FakeLineAPI, encode, user_id, webhook
from tests.fakes.mailservers import free_port

ROOT = Path(__file__).resolve().parents[2]
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
ENTRY = "nursery-application"
QUESTION = "保育園の申し込み方法を教えてください"
MARK = "（この一文は今日の変更で加わりました）"


def entry_form(entry: Entry, **changes: Any) -> dict[str, Any]:
    """The editor's fields for `entry`, as the form sends them."""
    form: dict[str, Any] = {
        "topic": entry.topic,
        "contacts": list(entry.contacts),
        "source_url": entry.source.url,
        "source_checked": entry.source.checked.isoformat(),
        "related": " ".join(entry.related),
        "action": "save",
        "comment": "",
    }
    if entry.open_data:
        form["open_data"] = "1"
    if entry.handoff:
        form["handoff"] = "suggest"
    for code in {*entry.questions, *entry.answer}:
        form[f"q_{code}"] = "\n".join(entry.questions.get(code, []))
        form[f"a_{code}"] = entry.answer.get(code, "")
    form.update(changes)
    return form


def _wait_healthy(base: str, server: subprocess.Popen[bytes], deadline: float) -> None:
    while time.monotonic() < deadline and server.poll() is None:
        try:
            if httpx.get(f"{base}/healthz", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError("the server did not become healthy")


@pytest.fixture
def two_servers(settings: Settings, db: Engine) -> Iterator[tuple[str, str, FakeLineAPI]]:
    """Two `concierge serve` processes on one PostgreSQL database (as two hosts would run), LINE on a fake."""
    make_staff(session_factory(db), "sato", "concierge")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LINE_", "DATABASE_URL", "CONSOLE__"))}
    with FakeLineAPI() as fake, tempfile.TemporaryFile() as log_a, tempfile.TemporaryFile() as log_b:
        env.update(
            DATABASE_URL=settings.database_url,
            PYTHONPATH=str(ROOT),
            LINE_CHANNEL_SECRET=SECRET,
            LINE_CHANNEL_ACCESS_TOKEN=fake.token,
            LINE_API_BASE_URL=fake.url,
            SCHEDULER__MODE="off",
            CONSOLE__SESSION_SECRET="a shared console secret for both processes",
        )
        ports = [free_port(), free_port()]
        logs: list[IO[bytes]] = [log_a, log_b]
        exe = str(Path(sys.executable).parent / "concierge")
        servers = [
            subprocess.Popen([exe, "serve", "--port", str(p)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log)
            for p, log in zip(ports, logs, strict=True)
        ]
        try:
            deadline = time.monotonic() + 120  # each loads the dictionary and the KB
            bases = [f"http://127.0.0.1:{p}" for p in ports]
            for base, server in zip(bases, servers, strict=True):
                _wait_healthy(base, server, deadline)
            yield bases[0], bases[1], fake
        finally:
            for server in servers:
                server.send_signal(signal.SIGINT)
            for server in servers:
                try:
                    server.wait(20)
                except subprocess.TimeoutExpired:
                    server.kill()
                    server.wait()


@pytest.mark.postgres
def test_an_edit_in_the_console_is_answered_by_the_other_server_within_10_seconds(
    two_servers: tuple[str, str, FakeLineAPI], db: Engine
) -> None:
    first, second, fake = two_servers
    entry = load_kb().entries[ENTRY]
    new_answer = entry.answer["ja"] + MARK
    with httpx.Client(base_url=second, timeout=10) as other:
        assert MARK not in other.get(f"/faq/{ENTRY}").text
    with httpx.Client(base_url=first, timeout=10, follow_redirects=False) as console:
        page = console.get("/login")
        token = CSRF.search(page.text)
        assert token is not None
        login = console.post("/login", data={"username": "sato", "password": PASSWORD, "csrf_token": token.group(1)})
        assert login.status_code == 303
        editor = console.get(f"/kb/{ENTRY}/edit")
        assert editor.status_code == 200
        csrf = CSRF.search(editor.text)
        assert csrf is not None
        form = entry_form(entry, a_ja=new_answer, comment="申し込み方法の説明を足す", csrf_token=csrf.group(1))
        saved = console.post(f"/kb/{ENTRY}/edit", data=form)
        assert saved.status_code == 303, saved.text[-2000:]
        assert saved.headers["location"] == f"/kb/{ENTRY}?msg=saved"
    saved_at = time.monotonic()

    # the second process: its public FAQ page, then the bot's answer on LINE (whichever process claims it)
    with httpx.Client(base_url=second, timeout=10) as other:
        while MARK not in other.get(f"/faq/{ENTRY}").text:
            assert time.monotonic() - saved_at < 10, "the other server did not pick the edit up within 10 s"
            time.sleep(0.2)
        user = user_id()
        body = encode(webhook("text", user=user, text=QUESTION, reply_token=fake.issue_token(user)))
        headers = {"x-line-signature": sign(SECRET, body), "connection": "close"}
        assert other.post("/webhooks/line", content=body, headers=headers).status_code == 200
        fake.wait_for(
            lambda f: any(MARK in t for t in f.texts(user)), timeout=max(0.1, 10 - (time.monotonic() - saved_at))
        )
    with transaction(session_factory(db)) as s:
        (revision, *_) = kbdb.revisions(s)
        assert (revision.change, revision.staff_name, revision.comment) == ("edit", "sato", "申し込み方法の説明を足す")
        audited = staffdb.audit_entries(s, record_type="kb")
        assert any(a.action == "edit" and a.record_id == f"entry:{ENTRY}" for a in audited)


def test_a_worker_swaps_in_a_new_revision_and_keeps_the_old_one_when_it_does_not_load(runtime: Runtime) -> None:
    rt = runtime
    data = entry_dict(rt.kb.entries[ENTRY])
    data["answer"]["ja"] += MARK
    with transaction(rt.sessions) as s:
        kbdb.save(s, items=[kbdb.Item(kbdb.ENTRY, ENTRY, data)], staff_name="sato")
    assert MARK not in rt.engine.kb.entries[ENTRY].answer["ja"]  # until the next poll
    assert rt.live.refresh() and rt.live.revision == 2
    decision = rt.engine.classify(QUESTION)
    assert decision.entry_id == ENTRY
    assert MARK in render_plain(rt.engine.replies_for(decision, channel="line")[0])
    assert rt.kb is rt.engine.kb and rt.matcher is rt.engine.matcher
    broken = {**data, "source": {"url": "ftp://example.jp/", "checked": "2026-11-30"}}
    with transaction(rt.sessions) as s:
        kbdb.save(s, items=[kbdb.Item(kbdb.ENTRY, ENTRY, broken)], staff_name="sato")
    assert not rt.live.refresh()  # it does not load: the worker goes on with revision 2
    assert rt.live.revision == 2 and MARK in rt.engine.kb.entries[ENTRY].answer["ja"]
    assert not rt.live.refresh()  # and does not try it again at every poll


def test_the_cli_reads_and_imports_the_live_kb(
    settings: Settings, db: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    assert main(["db", "upgrade"]) == 0
    assert "seeded" in capsys.readouterr().out
    assert main(["kb", "check"]) == 0
    assert "revision 1" in capsys.readouterr().out
    dump = tmp_path / "kb.json"
    assert main(["kb", "export", "--output", str(dump)]) == 0
    data = json.loads(dump.read_text(encoding="utf-8"))
    (entry,) = [e for e in data["entries"] if e["id"] == ENTRY]
    entry["answer"]["ja"] += MARK
    changed = tmp_path / "changed.json"
    changed.write_text(json.dumps({"entries": [entry]}, ensure_ascii=False), encoding="utf-8")
    capsys.readouterr()
    assert main(["kb", "import", str(changed), "--comment", "一括の見直し", "--by", "boss"]) == 0
    assert "revision 2" in capsys.readouterr().out
    with transaction(session_factory(db)) as s:
        (revision, _seed) = kbdb.revisions(s)
        assert (revision.change, revision.staff_name, revision.comment) == ("import", "boss", "一括の見直し")
        assert any(a.action == "import" and a.via == "cli" for a in staffdb.audit_entries(s, record_type="kb"))
    monkeypatch.setattr("sys.stdin", _lines(QUESTION))
    assert main(["ask", "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["entry_id"] == ENTRY and MARK in answer["reply"]

    # a conflicting question is refused and nothing is written
    (other,) = [e for e in data["entries"] if e["id"] == "child-allowance-payday"] or [None]
    assert other is not None
    entry["questions"]["ja"].append(other["questions"]["ja"][0])
    changed.write_text(json.dumps({"entries": [entry]}, ensure_ascii=False), encoding="utf-8")
    assert main(["kb", "import", str(changed)]) == 1
    err = capsys.readouterr().err
    assert "nothing imported" in err and "matches entry" in err
    with transaction(session_factory(db)) as s:
        assert kbdb.latest_revision(s) == 2


def test_kb_check_on_a_fresh_clone_creates_no_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert main(["kb", "check"]) == 0
    assert "seed folder" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []


def _lines(*lines: str) -> Any:
    import io

    return io.StringIO("".join(f"{line}\n" for line in lines))
