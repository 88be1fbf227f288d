"""Resident memory of `concierge serve` with the KB loaded and a few questions answered.

Starts the server on a fresh SQLite database in a temporary folder, asks the public FAQ search a
Japanese and an English question (so the matcher, the crisis screen and the language detector are all
built), then reads VmRSS and VmHWM from /proc. Target: 400 MB.

Run: .venv/bin/python bench/serve_rss.py
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = ("保育園の申し込みはいつからですか", "How much is the child allowance?")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return dict(line.split(":", 1) for line in lines if ":" in line)


def main() -> None:
    exe = shutil.which("concierge", path=str(Path(sys.executable).parent))
    if exe is None:
        raise SystemExit("concierge is not installed in this environment")
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp}/bench.db"}
        proc = subprocess.Popen(
            [exe, "serve", "--port", str(port)], cwd=tmp, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 120
            while True:
                try:
                    urllib.request.urlopen(f"{base}/faq", timeout=5).read()
                    break
                except OSError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise SystemExit("serve did not start") from None
                    time.sleep(0.5)
            for q in QUESTIONS:
                urllib.request.urlopen(f"{base}/faq/search?q={urllib.parse.quote(q)}", timeout=30).read()
            st = status(proc.pid)
            rss, peak = st["VmRSS"].strip(), st["VmHWM"].strip()
            print(f"serve RSS {rss} (peak {peak}); target 400 MB")
        finally:
            proc.terminate()
            proc.wait(timeout=30)


if __name__ == "__main__":
    main()
