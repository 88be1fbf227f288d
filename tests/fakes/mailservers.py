"""Real mail servers for the email channel's tests: an unprivileged Dovecot (IMAP) with its configuration in a
temporary directory, and an aiosmtpd SMTP server that records what it was sent.

Dovecot comes from Debian's dovecot-imapd (scripts/ensure-dovecot.sh installs it). Run as root, Dovecot
refuses root for its login and mail processes, so the mail store belongs to `nobody` and the login process
runs as `dovenull`; as another user everything runs as that user.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import email
import grp
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from imapclient import IMAPClient  # type: ignore[import-untyped]

ENSURE_DOVECOT = Path(__file__).resolve().parents[2] / "scripts" / "ensure-dovecot.sh"
USER = "concierge"
PASSWORD = "imap-secret"  # a throw-away test server


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def dovecot_version() -> tuple[int, int]:
    out = subprocess.run(["dovecot", "--version"], capture_output=True, text=True, check=True).stdout
    major, minor = out.split()[0].split(".")[:2]
    return int(major), int(minor)


def _identity() -> dict[str, str | int]:
    """Who Dovecot's processes and the mail store run as."""
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        return {
            "internal_user": "dovecot",
            "internal_group": "dovecot",
            "login_user": "dovenull",
            "mail_uid": nobody.pw_uid,
            "mail_gid": nobody.pw_gid,
        }
    me = pwd.getpwuid(os.geteuid())
    group = grp.getgrgid(os.getegid()).gr_name
    return {
        "internal_user": me.pw_name,
        "internal_group": group,
        "login_user": me.pw_name,
        "mail_uid": me.pw_uid,
        "mail_gid": me.pw_gid,
    }


def _config_23(base: Path, port: int, who: dict[str, str | int]) -> str:
    return f"""
base_dir = {base}/run
state_dir = {base}/state
log_path = {base}/dovecot.log
info_log_path = {base}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = {who["internal_user"]}
default_internal_group = {who["internal_group"]}
default_login_user = {who["login_user"]}
first_valid_uid = 1
mail_location = maildir:{base}/mail/%u
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {base}/passwd
}}
userdb {{
  driver = static
  args = uid={who["mail_uid"]} gid={who["mail_gid"]} home={base}/mail/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
protocol imap {{
  mail_max_userip_connections = 100
}}
"""


def _config_24(base: Path, port: int, who: dict[str, str | int]) -> str:
    """Dovecot 2.4 renamed most settings (Debian 13); untested here, kept close to the upstream quick config."""
    return f"""
dovecot_config_version = 2.4.0
dovecot_storage_version = 2.4.0
base_dir = {base}/run
state_dir = {base}/state
log_path = {base}/dovecot.log
info_log_path = {base}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
auth_allow_cleartext = yes
auth_mechanisms = plain login
default_internal_user = {who["internal_user"]}
default_internal_group = {who["internal_group"]}
default_login_user = {who["login_user"]}
first_valid_uid = 1
mail_driver = maildir
mail_home = {base}/mail/%{{user}}
mail_path = ~/
mail_uid = {who["mail_uid"]}
mail_gid = {who["mail_gid"]}
namespace inbox {{
  inbox = yes
}}
passdb passwd-file {{
  passwd_file_path = {base}/passwd
}}
userdb static {{
  fields {{
    uid = {who["mail_uid"]}
    gid = {who["mail_gid"]}
    home = {base}/mail/%{{user}}
  }}
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
protocol imap {{
  mail_max_userip_connections = 100
}}
"""


class Dovecot:
    """`dovecot -c CONF -F` on 127.0.0.1 with one mailbox (USER / PASSWORD)."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="kc-dovecot-"))
        self.port = free_port()
        self.host = "127.0.0.1"
        self.user = USER
        self.password = PASSWORD
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Dovecot:
        if shutil.which("dovecot") is None and os.geteuid() == 0:
            subprocess.run(["bash", str(ENSURE_DOVECOT)], check=True)  # a fresh machine: install it once
        if shutil.which("dovecot") is None:
            raise RuntimeError(f"dovecot is not installed: run {ENSURE_DOVECOT} as root")
        who = _identity()
        self.dir.chmod(0o755)  # Dovecot's unprivileged processes must reach their sockets and the mail store
        for sub in ("run", "state", "mail"):
            (self.dir / sub).mkdir()
        if os.geteuid() == 0:
            os.chown(self.dir / "mail", int(who["mail_uid"]), int(who["mail_gid"]))
        (self.dir / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n")
        config = _config_24 if dovecot_version() >= (2, 4) else _config_23
        conf = self.dir / "dovecot.conf"
        conf.write_text(config(self.dir, self.port, who))
        self.proc = subprocess.Popen(
            ["dovecot", "-c", str(conf), "-F"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its own process group: stop() ends the master and every child
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                message = f"dovecot exited: {err}\n{self.log()}"
                self.stop()
                raise RuntimeError(message)
            with contextlib.suppress(OSError), socket.create_connection((self.host, self.port), timeout=1) as s:
                if s.recv(100).startswith(b"* OK"):
                    return self
            time.sleep(0.1)
        message = f"dovecot did not start\n{self.log()}"
        self.stop()
        raise RuntimeError(message)

    def log(self) -> str:
        path = self.dir / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            group = proc.pid
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(group, signal.SIGKILL)
                proc.wait(timeout=5)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:  # the group's last processes may still be exiting
                try:
                    os.killpg(group, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.05)
            if proc.stderr is not None:
                proc.stderr.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    # ----- the mailbox, as a mail client sees it
    def client(self) -> Any:
        client = IMAPClient(self.host, port=self.port, ssl=False, timeout=30)
        client.login(self.user, self.password)
        return client

    def append(self, raw: bytes, folder: str = "INBOX", flags: tuple[bytes, ...] = ()) -> None:
        with contextlib.closing(_Session(self)) as c:
            c.imap.append(folder, raw, flags=flags)

    def reset(self) -> None:
        """Empty every folder (INBOX kept, others deleted)."""
        with contextlib.closing(_Session(self)) as c:
            for _flags, _sep, name in c.imap.list_folders():
                folder = name if isinstance(name, str) else name.decode()
                if folder.upper() == "INBOX":
                    c.imap.select_folder(folder)
                    uids = c.imap.search(["ALL"])
                    if uids:
                        c.imap.delete_messages(uids)
                        c.imap.expunge()
                    c.imap.unselect_folder()
                else:
                    c.imap.delete_folder(folder)

    def messages(self, folder: str = "INBOX") -> list[tuple[int, set[bytes]]]:
        """(uid, flags) of every message in `folder`."""
        with contextlib.closing(_Session(self)) as c:
            if not c.imap.folder_exists(folder):
                return []
            c.imap.select_folder(folder, readonly=True)
            uids = c.imap.search(["ALL"])
            flags = c.imap.get_flags(uids) if uids else {}
            return [(int(u), set(flags.get(u, ()))) for u in sorted(uids)]


class _Session:
    def __init__(self, server: Dovecot) -> None:
        self.imap = server.client()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.imap.logout()


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        msg = email.message_from_bytes(self.data, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        return msg

    @property
    def lines(self) -> list[str]:
        """The plain body's lines as sent (what a client that does not reflow shows)."""
        body = self.message.get_body(("plain",))
        assert body is not None
        return str(body.get_content()).replace("\r\n", "\n").split("\n")

    @property
    def text(self) -> str:
        """The plain body as a reflowing client shows it (RFC 3676 format=flowed, DelSp)."""
        body = self.message.get_body(("plain",))
        assert body is not None
        if body.get_param("format", "").lower() != "flowed":  # type: ignore[union-attr]
            return "\n".join(self.lines)
        return unflow(self.lines, delsp=str(body.get_param("delsp", "")).lower() == "yes")


def unflow(lines: list[str], *, delsp: bool) -> str:
    """Join format=flowed soft line breaks (a line ending in a space, except the signature separator)."""
    out: list[str] = []
    pending = ""
    for line in lines:
        if line.startswith(" "):
            line = line[1:]  # space-stuffing
        if line.endswith(" ") and line != "-- ":
            pending += line[:-1] if delsp else line
            continue
        out.append(pending + line)
        pending = ""
    if pending:
        out.append(pending)
    return "\n".join(out)


@dataclass
class _Recorder:
    """The SMTP handler: records each mail, or answers with the next scripted failure."""

    received: list[Received] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # e.g. "451 4.3.0 Try again later"
    logins: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            if self.failures:
                return self.failures.pop(0)
            self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.content)))
        return "250 2.0.0 Message accepted for delivery"


class SMTPSink:
    """aiosmtpd's Controller on 127.0.0.1 (its own thread and loop), recording what the bot sends."""

    def __init__(self, *, username: str | None = None, password: str | None = None) -> None:
        self.recorder = _Recorder()
        self.username = username
        self.password = password
        self.host = "127.0.0.1"
        self.port = free_port()
        kwargs: dict[str, Any] = {}
        if username is not None:
            kwargs.update(authenticator=self._authenticate, auth_require_tls=False, auth_required=False)
        self.controller = Controller(self.recorder, hostname=self.host, port=self.port, **kwargs)

    def _authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and data.login.decode() == self.username
            and data.password.decode() == self.password
        )
        if ok:
            self.recorder.logins.append(data.login.decode())
        return AuthResult(success=ok, handled=False)

    def start(self) -> SMTPSink:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    @property
    def received(self) -> list[Received]:
        with self.recorder.lock:
            return list(self.recorder.received)

    def fail_next(self, *responses: str) -> None:
        with self.recorder.lock:
            self.recorder.failures.extend(responses)

    def clear(self) -> None:
        with self.recorder.lock:
            self.recorder.received.clear()
            self.recorder.failures.clear()
            self.recorder.logins.clear()

    async def wait_for(self, count: int, within: float = 15.0) -> list[Received]:
        """At least `count` mails, waiting without blocking the test's event loop."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            got = self.received
            if len(got) >= count:
                return got
            await asyncio.sleep(0.05)
        raise AssertionError(f"expected {count} mails, got {len(self.received)}")


# ----- shared helpers for the email tests

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "email"
CONCIERGE = "concierge@kodomo.example.jp"
_shared: Dovecot | None = None


def shared_dovecot() -> Dovecot:
    """One Dovecot for the whole test run (started on first use, stopped at exit)."""
    global _shared
    if _shared is None:
        _shared = Dovecot().start()
        atexit.register(_shared.stop)
    return _shared


def fixture_mail(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def reply_to(
    sent: EmailMessage,
    body: str,
    *,
    sender: str,
    message_id: str,
    subject: str | None = None,
    attachment: bytes | None = None,
    charset: str = "utf-8",
) -> bytes:
    """What a parent's mail client sends when replying to `sent`: Re: subject, threading headers, a quote."""
    references = f"{sent.get('References', '')} {sent['Message-ID']}".strip()
    quoted = "\n".join("> " + line for line in str(sent.get_body(("plain",)).get_content()).splitlines())  # type: ignore[union-attr]
    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = sender
    msg["To"] = str(sent["From"])
    msg["Subject"] = subject if subject is not None else f"Re: {sent['Subject']}"
    msg["Message-ID"] = message_id
    msg["In-Reply-To"] = str(sent["Message-ID"])
    msg["References"] = references
    msg["Date"] = "Fri, 20 Nov 2026 10:05:00 +0900"
    attribution = f"2026年11月20日(金) 10:00 はこだてキッズプラザ 子育て支援コンシェルジュ <{CONCIERGE}>:"
    # ISO-2022-JP goes as 7bit, as Japanese mailers send it (the escapes in the body itself).
    cte = "7bit" if charset.lower() == "iso-2022-jp" else None
    msg.set_content(f"{body}\n\n{attribution}\n{quoted}\n", charset=charset, cte=cte)
    if attachment is not None:
        msg.add_attachment(attachment, maintype="image", subtype="jpeg", filename="photo.jpg")
    return msg.as_bytes()


def new_mail(body: str, *, sender: str, message_id: str, subject: str = "", **headers: str) -> bytes:
    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = sender
    msg["To"] = CONCIERGE
    msg["Subject"] = subject
    msg["Message-ID"] = message_id
    msg["Date"] = "Fri, 20 Nov 2026 10:00:00 +0900"
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(body, charset="utf-8")
    return msg.as_bytes()
