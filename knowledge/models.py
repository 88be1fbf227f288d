"""Typed model of the knowledge base as staff write it in YAML."""

from __future__ import annotations

import datetime as dt
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Localized = dict[str, str]

ENTRY_ID = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
CONTACT_ID = re.compile(r"^[a-z0-9]+(?:_[a-z0-9]+)*$")
# 0138-26-7010, 0120-279-889, 0800-800-0879, 011-232-1599, 0120-0-78310, 189, 110, #8008
PHONE = re.compile(r"^(?:0\d{1,4}-\d{1,4}-\d{3,5}|\d{3}|#\d{4})$")
EMAIL = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Topic(_Strict):
    id: str
    title: str


class Contact(_Strict):
    """A named office or hotline shown under answers."""

    id: str
    name: Localized
    phone: str | None = None
    fax: str | None = None
    email: str | None = None
    address: Localized | None = None
    hours: Localized | None = None
    url: str | None = None

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not CONTACT_ID.match(v):
            raise ValueError("contact id must be lowercase letters, digits and underscores")
        return v

    @field_validator("phone", "fax")
    @classmethod
    def _phone(cls, v: str | None) -> str | None:
        if v is not None and not PHONE.match(v):
            raise ValueError(f"malformed phone number {v!r}")
        return v

    @field_validator("email")
    @classmethod
    def _email(cls, v: str | None) -> str | None:
        if v is not None and not EMAIL.match(v):
            raise ValueError(f"malformed email address {v!r}")
        return v

    @field_validator("url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("https://", "http://")):
            raise ValueError(f"url must start with http(s):// ({v!r})")
        return v


class Source(_Strict):
    url: str
    checked: dt.date

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not v.startswith(("https://", "http://")):
            raise ValueError(f"source url must start with http(s):// ({v!r})")
        return v


class Entry(_Strict):
    """One FAQ entry: example questions and an answer per language."""

    id: str
    topic: str
    questions: dict[str, list[str]]
    answer: Localized
    mail: Localized | None = None  # the answer worded for a mail, in the languages where it differs
    contacts: list[str] = Field(default_factory=list)
    source: Source
    related: list[str] = Field(default_factory=list)
    handoff: Literal["suggest"] | None = None
    # False for entries that only make sense inside the chat (talking to a person, the bot's own consent and
    # records): they are left out of the open-data CSV export.
    open_data: bool = True

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not ENTRY_ID.match(v):
            raise ValueError("entry id must be lowercase letters, digits and hyphens")
        return v

    @field_validator("answer")
    @classmethod
    def _answer(cls, v: Localized) -> Localized:
        for lang, text in v.items():
            if not text.strip():
                raise ValueError(f"empty answer for {lang}")
        return v

    def question_list(self) -> list[tuple[str, str]]:
        """(language, question) pairs."""
        return [(lang, q) for lang, qs in self.questions.items() for q in qs]


class CrisisCategory(_Strict):
    """A kind of crisis (or of distress), the curated phrases that reveal it per language and what the
    parent is told at once. `level` says what the engine does: urgent opens a life-and-safety case and
    alerts staff; distress replies kindly and offers a person, and opens nothing without consent."""

    id: str
    label: Localized
    level: Literal["urgent", "distress"] = "urgent"
    phrases: dict[str, list[str]] = Field(default_factory=dict)
    contacts: list[str]
    message: Localized
    notice: Localized | None = None  # replaces the crisis notice (DV: no promise of a call-back)
    notice_mail: Localized | None = None  # that notice worded for a mail, where it differs


class Crisis(_Strict):
    """Categories in priority order: when several are found, the first one leads the reply."""

    categories: list[CrisisCategory]
    notice: Localized  # added under every urgent reply (staff were alerted)
    notice_mail: Localized | None = None  # the notice worded for a mail, where it differs
    # Shown under crisis replies in languages other than Japanese and English (interpreting desks).
    foreign_contacts: list[str] = Field(default_factory=list)
    # Training examples of the similarity signal: label ("urgent:<category>", "distress", "none") -> texts.
    # Loaded from crisis/examples.yaml; the crisis bench sets are kept apart from these.
    examples: dict[str, list[str]] = Field(default_factory=dict)

    def category(self, category_id: str) -> CrisisCategory | None:
        return next((c for c in self.categories if c.id == category_id), None)


MannerKind = Literal["greeting", "thanks", "ack", "bye", "help", "faq_menu"]


class Phrases(_Strict):
    """Conversation phrases per language: asking for a person, withdrawing consent, yes and no, manners."""

    handoff: dict[str, list[str]] = Field(default_factory=dict)
    withdraw: dict[str, list[str]] = Field(default_factory=dict)
    yes: dict[str, list[str]] = Field(default_factory=dict)
    no: dict[str, list[str]] = Field(default_factory=dict)
    # Politeness that changes neither a yes nor a no (よろしくお願いします, please).
    filler: dict[str, list[str]] = Field(default_factory=dict)
    # Manners by kind (greeting, thanks, ack, bye, help, faq_menu), then by language.
    manners: dict[MannerKind, dict[str, list[str]]] = Field(default_factory=dict)


class Synonyms(_Strict):
    """Canonical form -> variants folded into it before matching."""

    groups: dict[str, list[str]] = Field(default_factory=dict)
    stopwords: list[str] = Field(default_factory=list)
    # Words of city matters the KB does not cover (年金, パスポート, water bill): a message naming one is
    # answered only from an entry whose own example questions name it, else it falls back.
    out_of_scope: list[str] = Field(default_factory=list)


class KnowledgeBase(BaseModel):
    """Everything the bot knows, loaded once and shared read-only."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    topics: dict[str, Topic]
    contacts: dict[str, Contact]
    entries: dict[str, Entry]
    synonyms: Synonyms
    crisis: Crisis
    phrases: Phrases = Field(default_factory=Phrases)
    languages: tuple[str, ...] = ("ja", "en")
    # Which file (relative to the KB folder) each entry and contact came from, for writing back.
    entry_files: dict[str, str] = Field(default_factory=dict)
    contact_files: dict[str, str] = Field(default_factory=dict)

    def entry_contacts(self, entry: Entry) -> list[Contact]:
        return [self.contacts[c] for c in entry.contacts if c in self.contacts]
