"""The import rules, checked in fresh interpreters: the layers below `bot` never load it at run time, and the
top-level packages import each other without cycles."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOWER = ("handlers", "knowledge", "storage", "scheduler")
PACKAGES = (*LOWER, "bot")


def _modules(package: str) -> list[str]:
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("")
        if "migrations" in rel.parts:
            continue
        parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
        found.append(".".join(parts))
    return found


def _python(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("package", LOWER)
def test_no_module_below_bot_loads_bot(package: str) -> None:
    modules = _modules(package)
    code = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m == 'bot' or m.startswith('bot.'))))\n"
    )
    assert json.loads(_python(code)) == []


def test_no_cycles_between_top_level_packages() -> None:
    """Which top-level packages each package's modules load (at import time), then a search for a cycle."""
    uses: dict[str, set[str]] = {}
    for package in PACKAGES:
        code = (
            "import importlib, json, sys\n"
            f"for name in {_modules(package)!r}:\n"
            "    importlib.import_module(name)\n"
            "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
        )
        loaded = set(json.loads(_python(code)))
        uses[package] = {other for other in PACKAGES if other != package and other in loaded}
    assert all("bot" not in uses[p] for p in LOWER), uses
    # A cycle between packages shows as a package that (transitively) loads itself through another one.
    for start in PACKAGES:
        seen: set[str] = set()
        todo = list(uses[start])
        while todo:
            here = todo.pop()
            assert here != start, f"cycle through {start}: {uses}"
            if here not in seen:
                seen.add(here)
                todo.extend(uses[here])


SQL_CONSTRUCTORS = {"select", "update", "delete", "insert", "text", "exists", "union", "union_all"}


def test_sql_is_written_in_storage_only() -> None:
    """Statements are built in storage/ (keyword-only functions over a passed-in session); the packages above
    it import no SQL statement constructor from SQLAlchemy or SQLModel, not even inside a function."""
    found: list[str] = []
    for package in ("bot", "handlers", "scheduler", "knowledge"):
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in ("sqlalchemy", "sqlmodel"):
                    names = {a.name for a in node.names} & SQL_CONSTRUCTORS
                    found += [f"{path.relative_to(ROOT)}:{node.lineno} {name}" for name in sorted(names)]
                elif isinstance(node, ast.Import):
                    found += [
                        f"{path.relative_to(ROOT)}:{node.lineno} {a.name}" for a in node.names if a.name == "sqlalchemy"
                    ]
    assert found == [], found
