"""The consent notices as data: every published version's exact texts, per language and wording, and a lock.

A version lives in `<kb>/consent/<version>.yaml`; `<kb>/consent/lock.yaml` holds the SHA-256 of every text
of every published version (`<lang>/<wording>`). A text whose digest differs from its lock entry was
edited after publication, which `concierge kb check` reports as an error: the ledger points at a version,
language and wording, and the text found there must be the one the parent saw.

Wordings: `chat` and `mail` are the notice shown before a consultation; `month-chat` and `month-mail` the
birth-month registration prompt, which lists its own points and then the notice's (one consent covers both).
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from knowledge.loader import DEFAULT_KB_PATH, Problem

DEFAULT_NOTICE_PATH = DEFAULT_KB_PATH / "consent"
LOCK_FILE = "lock.yaml"
FALLBACK_LANG = "en"  # the month prompt's own points in a language that has none
Wording = Literal["chat", "mail", "month-chat", "month-mail"]
WORDINGS: tuple[Wording, ...] = ("chat", "mail", "month-chat", "month-mail")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NoticeText(_Strict):
    """One notice as shown: an opening line, the points (each with its bullet), the closing question."""

    intro: str
    points: tuple[str, ...] = Field(min_length=1)
    question: str

    def text(self) -> str:
        return "\n".join([self.intro, *self.points, self.question])


class MonthText(_Strict):
    """The month registration's own part; the notice's points follow `shared`."""

    intro: str
    points: tuple[str, ...] = Field(min_length=1)
    shared: str
    question: str


class LanguageNotice(_Strict):
    chat: NoticeText
    mail: NoticeText | None = None  # None: a mail shows the chat text
    month: MonthText | None = None


class Retention(_Strict):
    transcript_years: int = Field(ge=1)
    case_years: int = Field(ge=1)


class NoticeVersion(_Strict):
    """A published notice version (the file's name is its version)."""

    version: str
    retention: Retention
    notices: dict[str, LanguageNotice] = Field(min_length=1)

    def languages(self) -> tuple[str, ...]:
        return tuple(self.notices)

    def notice(self, lang: str, *, mail: bool) -> NoticeText:
        """The notice in `lang` (else English, else the first language written), in its chat or mail wording."""
        written = self.notices.get(lang) or self.notices.get(FALLBACK_LANG) or next(iter(self.notices.values()))
        return (written.mail or written.chat) if mail else written.chat

    def month_part(self, lang: str) -> MonthText | None:
        for code in (lang, FALLBACK_LANG):
            if code in self.notices and self.notices[code].month is not None:
                return self.notices[code].month
        return None

    def text(self, lang: str, wording: Wording) -> str:
        """The exact text shown for (`lang`, `wording`)."""
        notice = self.notice(lang, mail=wording.endswith("mail"))
        if not wording.startswith("month"):
            return notice.text()
        month = self.month_part(lang)
        if month is None:
            raise KeyError(f"notice {self.version} has no month prompt")
        return "\n".join([month.intro, *month.points, month.shared, *notice.points, month.question])

    def digests(self) -> dict[str, str]:
        """`<lang>/<wording>` → SHA-256 of the text, for every language written and every wording."""
        out: dict[str, str] = {}
        for lang in self.notices:
            for wording in WORDINGS:
                if wording.startswith("month") and self.month_part(lang) is None:
                    continue
                out[f"{lang}/{wording}"] = digest(self.text(lang, wording))
        return out


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class NoticeBook:
    """Every notice version found in a folder; the current one is the configured or else the latest."""

    def __init__(self, versions: dict[str, NoticeVersion]) -> None:
        if not versions:
            raise ValueError("no consent notice version")
        self.versions = dict(sorted(versions.items()))

    def latest(self) -> NoticeVersion:
        return self.versions[next(reversed(self.versions))]

    def current(self, configured: str | None = None) -> NoticeVersion:
        if configured is None:
            return self.latest()
        if configured not in self.versions:
            raise KeyError(f"no consent notice version {configured!r} (have {', '.join(self.versions)})")
        return self.versions[configured]

    def get(self, version: str) -> NoticeVersion | None:
        return self.versions.get(version)


def _read_versions(path: Path, problems: list[Problem]) -> dict[str, NoticeVersion]:
    versions: dict[str, NoticeVersion] = {}
    for file in sorted(path.glob("*.yaml")):
        if file.name == LOCK_FILE:
            continue
        where = f"consent/{file.name}"
        try:
            data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
            version = NoticeVersion.model_validate(data)
        except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
            problems.append(Problem("error", where, f"cannot read YAML: {exc}"))
            continue
        except ValidationError as exc:
            problems.append(Problem("error", where, str(exc).replace("\n", " ")))
            continue
        if version.version != file.stem:
            problems.append(Problem("error", where, f"version {version.version!r} differs from the file name"))
            continue
        versions[version.version] = version
    return versions


@functools.cache
def load_notices(path: Path = DEFAULT_NOTICE_PATH) -> NoticeBook:
    """The notice versions under `path` (read once per path, on first use)."""
    problems: list[Problem] = []
    versions = _read_versions(path, problems)
    if problems:
        raise ValueError("; ".join(str(p) for p in problems))
    return NoticeBook(versions)


def read_lock(path: Path) -> dict[str, dict[str, str]]:
    file = path / LOCK_FILE
    if not file.exists():
        return {}
    data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    return {str(v): {str(k): str(d) for k, d in (keys or {}).items()} for v, keys in data.items()}


def lock_text(version: NoticeVersion) -> str:
    """The lock entry of a version, as it is to be added to lock.yaml when the version is published."""
    lines = [f'"{version.version}":']
    lines += [f"  {key}: {value}" for key, value in version.digests().items()]
    return "\n".join(lines) + "\n"


def check_notices(path: Path) -> list[Problem]:
    """Every version readable, and every text exactly as locked: an edited published text is an error, as is a
    text (a new version or language) not yet in the lock."""
    if not path.is_dir():
        return [Problem("error", "consent", "no consent notice folder (consent/<version>.yaml)")]
    problems: list[Problem] = []
    versions = _read_versions(path, problems)
    if not versions and not problems:
        problems.append(Problem("error", "consent", "no consent notice version"))
    try:
        lock = read_lock(path)
    except (OSError, yaml.YAMLError, AttributeError) as exc:
        return [*problems, Problem("error", f"consent/{LOCK_FILE}", f"cannot read the lock: {exc}")]
    for name, version in versions.items():
        where = f"consent/{name}.yaml"
        locked = lock.get(name, {})
        if not locked:
            message = f"not locked: add to consent/{LOCK_FILE} when publishing:\n{lock_text(version)}"
            problems.append(Problem("error", where, message))
            continue
        found = version.digests()
        for key, value in found.items():
            if key not in locked:
                problems.append(Problem("error", where, f"{key} is not in the lock (add `{key}: {value}`)"))
            elif locked[key] != value:
                problems.append(
                    Problem("error", where, f"{key} differs from the published text: publish a new version instead")
                )
        for key in locked.keys() - found.keys():
            problems.append(Problem("error", where, f"{key} was published and is gone"))
    for name in lock.keys() - versions.keys():
        problems.append(Problem("error", f"consent/{LOCK_FILE}", f"published version {name} is gone"))
    return problems
