"""Consent: every decision about what the consent ledger allows is made here, and only here.

One consent covers two uses: the record of a consultation with a person, and the child's birth or due month
for notices. The birth-month prompt shows its own points and then the consultation notice's and says the
consent is shared, one withdrawal ends both, and the ledger keeps one row per answer (README: "Consent").

The rules:
- Starting something new (a handoff to a person, registering a month) asks first (`must_ask`) unless the
  latest ledger row is a grant of the current notice version: a parent sees a changed notice before
  anything new is recorded under it.
- Continuing (recording on an open case, keeping the month, age notices) needs consent in force: the latest
  row is a grant, of whatever version (`in_force`); a parent ends it with a withdrawal at any time.
- Without consent a message is recorded only on a case opened under the life-and-safety basis (a crisis),
  until that case is resolved; such a case says so (`Basis.LIFE_SAFETY` with the crisis as reason).
- Every row points at the exact text shown: version, language, wording and the SHA-256 of the text, which
  lives in knowledge/kb/consent and cannot change once published (`concierge kb check`).

Other modules ask these functions; none reads or writes the ledger itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlmodel import Session

from knowledge.consent import NoticeBook, NoticeVersion, Wording, digest, load_notices
from storage import crud
from storage.models import Basis, Case, CaseStatus, ConsentRecord, ConsentStatus, Contact

MAIL_CHANNELS = frozenset({"email"})  # channels that show the mail wording of a notice


@dataclass(frozen=True)
class Shown:
    """A notice as a parent is shown it: its exact text and where that text lives in the notice data."""

    version: str
    lang: str
    wording: Wording
    text: str

    @property
    def sha256(self) -> str:
        return digest(self.text)


class Notices:
    """The notice versions and the one in force: `version` as configured, else the latest published."""

    def __init__(self, book: NoticeBook | None = None, version: str | None = None) -> None:
        self.book = book or load_notices()
        self.current: NoticeVersion = self.book.current(version)

    @classmethod
    def for_config(cls, path: Path | None, version: str | None) -> Notices:
        return cls(load_notices(path) if path is not None else None, version)

    @property
    def version(self) -> str:
        return self.current.version

    def shown(self, lang: str, channel: str | None, *, month: bool = False) -> Shown:
        """The notice in `lang` worded for `channel` (`month`: the birth-month registration prompt)."""
        mail = channel in MAIL_CHANNELS
        wording: Wording = ("month-mail" if mail else "month-chat") if month else ("mail" if mail else "chat")
        return Shown(self.version, lang, wording, self.current.text(lang, wording))

    def text_of(self, record: ConsentRecord) -> str | None:
        """The exact text a ledger row points at; None for a row that points at none (a withdrawal) or at a
        text this deployment no longer has."""
        version = self.book.get(record.notice_version)
        if version is None or record.notice_lang is None or record.notice_wording is None:
            return None
        try:
            return version.text(record.notice_lang, record.notice_wording)  # type: ignore[arg-type]
        except KeyError:
            return None


def current_version(configured: str | None = None) -> str:
    """The notice version in force (for callers that record a withdrawal outside a conversation)."""
    return load_notices().current(configured).version


# ----- what the ledger allows
def counts(record: ConsentRecord | None, *, version: str | None) -> bool:
    """The one rule about versions: the latest row counts when it is a grant; `version` set (starting
    something new) also asks that it be a grant of that version."""
    if record is None or record.status != ConsentStatus.GRANTED:
        return False
    return version is None or record.notice_version == version


def in_force(session: Session, *, contact_id: int) -> bool:
    """Consent is in force for continuing uses (any version the parent granted and has not withdrawn)."""
    return counts(crud.current_consent(session, contact_id=contact_id), version=None)


def must_ask(session: Session, *, contact_id: int, version: str) -> bool:
    """True when the parent is to be shown the notice of `version` before something new starts."""
    return not counts(crud.current_consent(session, contact_id=contact_id), version=version)


def status(session: Session, *, contact_id: int) -> ConsentStatus | None:
    """The contact's latest answer, for staff to see (None: never asked)."""
    row = crud.current_consent(session, contact_id=contact_id)
    return ConsentStatus(row.status) if row is not None else None


def consenting(session: Session, contact_ids: Iterable[int]) -> list[int]:
    """Those of `contact_ids` whose consent is in force, in the given order."""
    return [c for c in contact_ids if in_force(session, contact_id=c)]


# ----- the parent's answers
def grant(session: Session, *, contact: Contact, shown: Shown) -> ConsentRecord:
    return _record(session, contact, ConsentStatus.GRANTED, shown)


def decline(session: Session, *, contact: Contact, shown: Shown) -> ConsentRecord:
    return _record(session, contact, ConsentStatus.DECLINED, shown)


def grant_once(session: Session, *, contact: Contact, shown: Shown) -> bool:
    """Grant unless a grant of the shown version is already in force; True when a row was written."""
    assert contact.id is not None
    if not must_ask(session, contact_id=contact.id, version=shown.version):
        return False
    grant(session, contact=contact, shown=shown)
    return True


def withdraw(session: Session, *, contact: Contact, version: str, lang: str | None = None) -> bool:
    """End consent in force (the parent's withdrawal, or an erasure); False when none was in force."""
    assert contact.id is not None
    if not in_force(session, contact_id=contact.id):
        return False
    crud.record_consent(
        session, contact=contact, status=ConsentStatus.WITHDRAWN, notice_version=version, notice_lang=lang
    )
    return True


def _record(session: Session, contact: Contact, status: ConsentStatus, shown: Shown) -> ConsentRecord:
    return crud.record_consent(
        session,
        contact=contact,
        status=status,
        notice_version=shown.version,
        notice_lang=shown.lang,
        notice_wording=shown.wording,
        notice_sha256=shown.sha256,
    )


# ----- the basis a case's lines are recorded under
def basis_for(session: Session, *, case: Case) -> Basis | None:
    """Under what basis the parent's message may be recorded on `case`, if any."""
    if in_force(session, contact_id=case.contact_id):
        return Basis.CONSENT
    if case.basis == Basis.LIFE_SAFETY and case.status != CaseStatus.RESOLVED:
        return Basis.LIFE_SAFETY
    return None


def reply_basis(session: Session, *, case: Case) -> Basis:
    """The basis a staff reply is recorded under: consent in force, else the case's own."""
    return Basis.CONSENT if in_force(session, contact_id=case.contact_id) else Basis(case.basis)


def urgent_basis(session: Session, *, contact_id: int, reason: str) -> tuple[Basis, str | None]:
    """A crisis is recorded under consent in force, else under the life-and-safety basis with `reason` (the
    basis and the reason a new urgent case carries)."""
    if in_force(session, contact_id=contact_id):
        return Basis.CONSENT, None
    return Basis.LIFE_SAFETY, reason


def escalate(session: Session, *, case: Case, crisis_category: str, reason: str) -> None:
    """A crisis on an open case: urgent, and a case opened under consent whose contact no longer has it
    (withdrawn, or a case staff were given for a parent who never consented, as the mail loop guard does)
    continues under the life-and-safety basis, recorded as such."""
    keeps = case.basis == Basis.CONSENT and in_force(session, contact_id=case.contact_id)
    basis = Basis.CONSENT if keeps else Basis.LIFE_SAFETY
    crud.escalate_case(session, case=case, crisis_category=crisis_category, basis=basis, reason=reason)


# ----- the ledger for the parent
def ledger(session: Session, *, contact_id: int, notices: Notices | None = None) -> list[dict[str, Any]]:
    """Every ledger row of a contact with the exact text it points at (records export)."""
    notices = notices or Notices()
    out: list[dict[str, Any]] = []
    for r in crud.consent_history(session, contact_id=contact_id):
        text = notices.text_of(r)
        out.append(
            {
                "status": r.status,
                "notice_version": r.notice_version,
                "notice_lang": r.notice_lang,
                "notice_wording": r.notice_wording,
                # A text whose digest differs from the row's is not the one shown: it is not offered as such.
                "notice_text": text if text is not None and r.notice_sha256 in (None, digest(text)) else None,
                "at": r.at,
            }
        )
    return out


def ledger_kept(session: Session, *, contact_id: int) -> int:
    """How many ledger rows an erasure keeps (the ledger is the legal proof of consent)."""
    return len(crud.consent_history(session, contact_id=contact_id))
