"""The consent notices as data: every text locked, an edit to a published text caught by `kb check`."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from knowledge.consent import check_notices, load_notices
from knowledge.language import LANGUAGES
from knowledge.lint import check_kb
from knowledge.loader import DEFAULT_KB_PATH


@pytest.fixture
def notice_dir(tmp_path: Path) -> Path:
    target = tmp_path / "kb"
    shutil.copytree(DEFAULT_KB_PATH, target)
    return target / "consent"


def _errors(kb: Path) -> list[str]:
    return [f"{p.where}: {p.message}" for p in check_kb(kb) if p.level == "error"]


def test_the_published_notices_are_locked_and_complete() -> None:
    assert check_notices(DEFAULT_KB_PATH / "consent") == []
    notice = load_notices().current()
    assert notice.version == "2026-11"
    assert set(notice.languages()) == set(LANGUAGES)  # one text per language the bot speaks


def test_editing_a_published_text_fails_kb_check(notice_dir: Path) -> None:
    path = notice_dir / "2026-11.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["notices"]["vi"]["chat"]["points"][3] = data["notices"]["vi"]["chat"]["points"][3].replace("1 năm", "2 năm")
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    # Every text that shows the point changed: the chat notice, and the mail and month prompts that repeat it.
    assert _errors(notice_dir.parent) == [
        f"consent/2026-11.yaml: vi/{wording} differs from the published text: publish a new version instead"
        for wording in ("chat", "mail", "month-chat", "month-mail")
    ]


def test_a_new_version_must_be_locked_before_it_counts(notice_dir: Path) -> None:
    data = yaml.safe_load((notice_dir / "2026-11.yaml").read_text(encoding="utf-8"))
    data["version"] = "2027-04"
    (notice_dir / "2027-04.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    errors = _errors(notice_dir.parent)
    assert len(errors) == 1 and errors[0].startswith("consent/2027-04.yaml: not locked")
    assert '"2027-04":\n' in errors[0] and "\n  ja/chat: " in errors[0]  # the entry to add is printed
    # Adding the printed entry publishes it; the old version stays as it was.
    entry = errors[0].split("when publishing:\n", 1)[1]
    with (notice_dir / "lock.yaml").open("a", encoding="utf-8") as fh:
        fh.write(entry)
    assert _errors(notice_dir.parent) == []


def test_removing_a_published_version_or_text_is_an_error(notice_dir: Path) -> None:
    path = notice_dir / "2026-11.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    del data["notices"]["th"]
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    assert "consent/2026-11.yaml: th/chat was published and is gone" in _errors(notice_dir.parent)
    path.unlink()
    assert "consent/lock.yaml: published version 2026-11 is gone" in _errors(notice_dir.parent)


def test_a_version_file_named_otherwise_than_its_version_is_an_error(notice_dir: Path) -> None:
    shutil.copy(notice_dir / "2026-11.yaml", notice_dir / "2026-12.yaml")
    assert any("differs from the file name" in e for e in _errors(notice_dir.parent))
