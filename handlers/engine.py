"""The channel-agnostic conversation engine: an inbound message in, replies out. It never sends.

States (`ConversationStateName`): FAQ → (CLARIFY) → answered; a handoff request leads to CONSENT, then a
case in the concierge queue and HANDOFF, where a person holds the conversation and the bot stays silent
except for safety; URGENT is a case opened by crisis detection. Resolving the case returns to FAQ.

The consent gate is here: message content is written to a case transcript only when handlers/consent.py
says the contact's consent is in force, or the case was opened under the life-and-safety basis.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from sqlmodel import Session

from handlers import consent
from handlers.consent import Notices
from handlers.feedback import HELPFUL, FeedbackKeeper, is_wrong
from handlers.hours import OfficeHours, format_date, format_when
from handlers.texts import ConsentAnswer, Manner, PhraseBook, t
from handlers.types import (
    MAX_URL_SHOWN,
    QUEUED,
    Choice,
    ContactCard,
    InboundKind,
    InboundMessage,
    Reply,
    ReplyKind,
    recorded,
)
from knowledge.crisis import Assessment, CrisisDetector, CrisisHit, Level
from knowledge.language import (
    LANGUAGE_NAMES,
    LANGUAGES,
    LATIN_LANGUAGES,
    choose_language,
    detect_language,
    has_kana,
)
from knowledge.matcher import Candidate, Matcher, Outcome
from knowledge.models import Contact as KBContact
from knowledge.models import Entry, KnowledgeBase
from storage import crud
from storage.db import SessionFactory, transaction
from storage.models import (
    Basis,
    Case,
    Contact,
    ConversationState,
    ConversationStateName,
    Priority,
    utcnow,
)

State = ConversationStateName
MAX_TEXT = 2000  # characters of one message the matcher reads: a longer one is read where its question is
MAX_CRISIS = 20000  # characters crisis detection reads: all of any real message (a crisis at the end counts)
MAX_STORED = 10000  # characters of one message kept in a transcript
MAIL = "email"  # the channel whose texts are worded for a mail (the `email` sections of the texts and the KB)
LABEL_MAX = 20  # LINE quick-reply labels hold 20 characters
# Related questions offered as buttons: one under the answer (it has to fit a phone screen), the others
# under its details.
RELATED_UNDER_ANSWER = 1
RELATED_UNDER_DETAILS = 3


@dataclass(frozen=True)
class EngineConfig:
    notice_version: str | None = None  # the consent notice version shown: None for the latest published
    notice_path: Path | None = None  # the consent notice folder (None: the one in the default KB)
    pending_ttl: dt.timedelta = dt.timedelta(minutes=30)  # the pre-consent buffer: never longer
    # How long a consent question stays open, per channel: a mail answer may come a day later. The
    # buffered first message is still erased after `pending_ttl`; a late yes opens the case without it.
    consent_ttl: dict[str, dt.timedelta] = field(default_factory=lambda: {"email": dt.timedelta(hours=48)})
    office_hours: OfficeHours = field(default_factory=OfficeHours)
    default_lang: str = "ja"
    languages: tuple[str, ...] = ("ja", "en")  # the languages KB answers are written in
    chat_languages: tuple[str, ...] = LANGUAGES  # the languages the fixed texts are written in
    fallbacks_before_handoff: int = 2
    # A message after this long a silence starts a new conversation: earlier fallbacks no longer count.
    conversation_gap: dt.timedelta = dt.timedelta(minutes=30)
    faq_menu_size: int = 5
    concierge_contact: str = "concierge"
    # Channels whose answers end with 「役に立ちましたか？」 👍/👎 buttons (a mail or a terminal has no buttons).
    helpful_channels: tuple[str, ...] = ("line",)


@dataclass(frozen=True)
class Decision:
    """The stateless judgement of one message (used by `concierge ask` and by the engine)."""

    action: str  # answer | clarify | handoff | urgent | distress | fallback
    lang: str
    topic: str | None = None
    entry_id: str | None = None
    score: float = 0.0
    candidates: tuple[Candidate, ...] = ()
    crisis: CrisisHit | None = None


@dataclass
class Turn:
    """One inbound message being handled, inside its transaction. Extensions read and write through it."""

    session: Session
    contact: Contact
    state: ConversationState
    lang: str
    now: dt.datetime
    text: str
    message: InboundMessage | None = None
    held: int | None = None  # the previous answer's held FAQ feedback (handlers/feedback.py)
    keep_held: bool = False  # this turn (the rest of that answer) leaves it held for the next one
    crisis_level: Level | None = None  # what the crisis check of this message found (None: not checked yet)

    @property
    def channel(self) -> str:
        return self.contact.channel


class Extension(Protocol):
    """A feature that owns some chat commands or postbacks (notice settings, appointment slots, erasure...).

    Extensions see each text/postback turn after crisis detection and consent withdrawal, before anything
    else; they return replies for what is theirs and None for everything else. They must respect the
    consent gate themselves: nothing with message content is stored unless handlers/consent.py allows it."""

    def handle(self, turn: Turn) -> list[Reply] | None: ...


def clean_input(text: str | None) -> str:
    """Control characters out, white space collapsed; what is left may be empty."""
    if not text:
        return ""
    kept = "".join(ch if unicodedata.category(ch)[0] != "C" or ch in "\n\t" else " " for ch in text)
    return " ".join(kept.split())


def has_words(text: str) -> bool:
    """True when the text has letters or digits (not only emoji, punctuation or symbols)."""
    return any(unicodedata.category(ch)[0] in "LN" for ch in text)


@dataclass(frozen=True)
class KbView:
    """What the engine answers from, swapped as one when the live KB changes: the KB, its matcher, the crisis
    detector (the KB's questions are its look-alike examples) and the FAQ menu."""

    kb: KnowledgeBase
    matcher: Matcher
    crisis: CrisisDetector
    faq_menu: list[str]


# The view a turn started with: one turn reads one KB even when a new one is swapped in meanwhile.
_PINNED: ContextVar[tuple[Engine, KbView] | None] = ContextVar("engine_kb_view", default=None)


class Engine:
    def __init__(
        self,
        kb: KnowledgeBase,
        matcher: Matcher,
        sessions: SessionFactory,
        config: EngineConfig | None = None,
        extensions: list[Extension] | None = None,
    ) -> None:
        self.extensions: list[Extension] = list(extensions or [])
        self.sessions = sessions
        self.config = config or EngineConfig()
        self._view = self.prepare(kb, matcher)
        self.phrases = PhraseBook(kb.phrases, matcher.normalize)
        self.notices = Notices.for_config(self.config.notice_path, self.config.notice_version)
        self.feedback = FeedbackKeeper(lambda: self.crisis, self.config.languages)

    # ----- the knowledge base in use
    def prepare(self, kb: KnowledgeBase, matcher: Matcher) -> KbView:
        """A view of `kb` ready to swap in (built off the answering path: it indexes the crisis examples)."""
        # The FAQ menu ("よくある質問"): the first entry of each topic, in the KB's topic order.
        firsts: dict[str, str] = {}
        for entry in kb.entries.values():
            firsts.setdefault(entry.topic, entry.id)
        ordered = [firsts[tp] for tp in kb.topics if tp in firsts]
        ordered += [e for tp, e in firsts.items() if tp not in kb.topics]
        crisis = CrisisDetector.for_kb(kb, matcher.normalize)
        return KbView(kb, matcher, crisis, ordered[: self.config.faq_menu_size])

    def use(self, view: KbView) -> None:
        """Answer from `view` from the next turn on; turns under way finish with the one they started with."""
        self._view = view

    @contextmanager
    def using(self, view: KbView) -> Iterator[None]:
        """Judge with `view` inside the block, in this context only (a draft tried in the console)."""
        token = _PINNED.set((self, view))
        try:
            yield
        finally:
            _PINNED.reset(token)

    @property
    def view(self) -> KbView:
        pinned = _PINNED.get()
        return pinned[1] if pinned is not None and pinned[0] is self else self._view

    @property
    def kb(self) -> KnowledgeBase:
        return self.view.kb

    @property
    def matcher(self) -> Matcher:
        return self.view.matcher

    @property
    def crisis(self) -> CrisisDetector:
        return self.view.crisis

    @property
    def faq_menu(self) -> list[str]:
        return self.view.faq_menu

    # ----- stateless judgement
    def classify(self, text: str, lang_hint: str | None = None) -> Decision:
        lang = choose_language(
            detect_language(text, lang_hint), lang_hint, self.config.chat_languages, self.config.default_lang
        )
        cleaned = clean_input(text)
        focused = focus_text(cleaned)
        assessment = self.crisis.assess(cleaned[:MAX_CRISIS])
        text = cleaned[:MAX_TEXT]
        hit = self.crisis.hit_for(assessment)
        if hit is not None:
            return Decision("urgent", self._crisis_lang(text, lang, hint=hit.lang), topic=None, crisis=hit, score=100.0)
        if assessment.level == Level.DISTRESS:
            return Decision("distress", self._crisis_lang(text, lang, hint=assessment.lang), topic=None)
        if self.phrases.wants_person(text):
            return Decision("handoff", lang)
        result = self.matcher.match(focused)
        best = result.best
        if result.outcome == Outcome.ANSWER and best is not None:
            return Decision("answer", lang, best.topic, best.entry_id, best.score, tuple(result.candidates))
        if result.outcome == Outcome.CLARIFY and best is not None:
            return Decision("clarify", lang, None, None, best.score, tuple(result.candidates))
        return Decision("fallback", lang, None, None, best.score if best else 0.0, tuple(result.candidates))

    def replies_for(self, decision: Decision, channel: str | None = None) -> list[Reply]:
        """The replies a first message gets (no conversation state involved)."""
        lang = decision.lang
        if decision.action == "urgent" and decision.crisis is not None:
            return [self._urgent_reply(decision.crisis, lang, channel)]
        if decision.action == "distress":
            return [self._distress_reply(lang)]
        if decision.action == "handoff":
            return [self._consent_reply(lang, channel)]
        if decision.action == "answer" and decision.entry_id in self.kb.entries:  # (not removed since)
            return [self._answer_reply(self.kb.entries[decision.entry_id], lang, channel)]
        if decision.action == "clarify":
            return [self._clarify_reply([c.entry_id for c in decision.candidates], lang, channel)]
        return [self._fallback_reply(lang, channel)]

    # ----- the conversation
    def handle(
        self, msg: InboundMessage, before_commit: Callable[[Session, list[Reply]], None] | None = None
    ) -> list[Reply]:
        """Run one turn in one transaction; `before_commit` lets the caller queue the replies and mark its
        event done in that same transaction (exactly-once processing)."""
        token = _PINNED.set((self, self._view))
        try:
            return self._handle(msg, before_commit)
        finally:
            _PINNED.reset(token)

    def _handle(self, msg: InboundMessage, before_commit: Callable[[Session, list[Reply]], None] | None) -> list[Reply]:
        now = msg.timestamp or utcnow()
        if msg.kind == InboundKind.GROUP:
            lang = self.config.default_lang
            replies = [Reply(ReplyKind.INFO, t(lang, "group", msg.channel), lang=lang)]
            if before_commit is not None:
                with transaction(self.sessions) as session:
                    before_commit(session, replies)
            return replies
        with transaction(self.sessions) as session:
            contact = crud.get_or_create_contact(session, channel=msg.channel, external_id=msg.sender_id)
            assert contact.id is not None
            state = crud.get_state(session, contact_id=contact.id)
            text = clean_input(msg.text)
            lang = self._language(text, contact.lang or msg.lang_hint)
            self._new_conversation(state, now, changed_lang=contact.lang is not None and lang != contact.lang)
            crud.touch_contact(session, contact=contact, lang=lang)
            self._expire(session, state, now)
            turn = Turn(session, contact, state, lang, now, text, msg)
            turn.held = self.feedback.take_held(turn)
            replies = self._dispatch(turn, msg)
            if turn.keep_held:
                state.feedback_id = turn.held
            else:
                self.feedback.release(turn, turn.held)
            if before_commit is not None:
                before_commit(session, replies)
            return replies

    def _language(self, text: str, known: str | None) -> str:
        """The language of this turn: short replies (はい, ok) keep the contact's; a manners phrase tells
        its own language (Obrigada, Bom dia) where a detector would only guess."""
        if len(text) <= 4 and known:
            return choose_language(None, known, self.config.chat_languages, self.config.default_lang)
        detected = detect_language(text, known)
        # Where script rules cannot decide (Latin letters; kanji without kana: 謝謝), a manners phrase can.
        if len(text) <= 40 and (detected in LATIN_LANGUAGES or (detected == "ja" and not has_kana(text))):
            manner = self.phrases.manner(text)
            if manner is not None and manner[1] in self.config.chat_languages:
                detected = manner[1]
        return choose_language(detected, known, self.config.chat_languages, self.config.default_lang)

    def _new_conversation(self, state: ConversationState, now: dt.datetime, *, changed_lang: bool) -> None:
        """Fallbacks count only within one conversation: a long silence or a change of language resets them."""
        last = state.last_at
        if last is not None and last.tzinfo is None:
            last = last.replace(tzinfo=dt.UTC)
        if changed_lang or (last is not None and now - last > self.config.conversation_gap):
            state.fallbacks = 0
        state.last_at = now

    def _dispatch(self, turn: Turn, msg: InboundMessage) -> list[Reply]:
        if msg.kind == InboundKind.FOLLOW:
            turn.contact.subscribed = True
            turn.session.add(turn.contact)
            return [self._greeting(turn.lang, turn.channel)]
        if msg.kind == InboundKind.UNFOLLOW:
            turn.contact.subscribed = False
            turn.session.add(turn.contact)
            return []
        if msg.kind in (InboundKind.STICKER, InboundKind.MEDIA):
            return self._non_text(turn, msg)
        if msg.kind == InboundKind.POSTBACK and msg.postback:
            handled = self._extensions(turn)
            return handled if handled is not None else self._postback(turn, msg.postback)
        if not has_words(turn.text):
            return [Reply(ReplyKind.INFO, t(turn.lang, "empty", turn.channel), lang=turn.lang)]
        prefix: list[Reply] = []
        if len(turn.text) > MAX_TEXT:
            prefix.append(Reply(ReplyKind.INFO, t(turn.lang, "too_long", turn.channel), lang=turn.lang))
        # Crisis detection comes first in every state, a person holding the case included.
        assessment = self.crisis.assess(turn.text[:MAX_CRISIS])
        turn.crisis_level = assessment.level
        hit = self.crisis.hit_for(assessment)
        if hit is not None:
            return self._urgent(turn, hit)
        if self.phrases.wants_withdraw(turn.text):
            return self._withdraw(turn)
        handled = self._extensions(turn)
        if handled is not None:
            return handled
        if turn.state.state in (State.HANDOFF, State.URGENT):
            held = self._human_holds(turn)
            if held is not None:
                return held
        if assessment.level == Level.DISTRESS:
            return prefix + self._distress(turn, assessment)
        if turn.state.state == State.CONSENT:
            return prefix + self._consent_turn(turn)
        manner = self.phrases.manner(turn.text)
        if manner is not None:
            return self._manner(turn, manner[0])
        number = as_number(turn.text)
        if number is not None:
            return self._numbered(turn, number)
        if self.phrases.wants_person(turn.text):
            self.feedback.follow_up(turn, turn.held, kind="person")
            return self._start_handoff(turn, topic=None)
        if is_wrong(turn.text):
            return self._wrong(turn)
        return prefix + self._faq(turn)

    def _extensions(self, turn: Turn) -> list[Reply] | None:
        for ext in self.extensions:
            replies = ext.handle(turn)
            if replies is not None:
                return replies
        return None

    # ----- FAQ
    def _faq(self, turn: Turn) -> list[Reply]:
        if turn.lang not in self.config.languages:
            # KB answers are written in Japanese and English only: say so, offer a person and the interpreter
            # desk. Still a question not understood, so it counts toward the offer of a person.
            return self._not_understood(turn, self._kb_unavailable_reply(turn))
        result = self.matcher.match(focus_text(turn.text))
        best = result.best
        if result.outcome == Outcome.ANSWER and best is not None:
            replies = self._answer(turn, self.kb.entries[best.entry_id])
            self.feedback.hold(turn, entry_id=best.entry_id)
            return replies
        if result.outcome == Outcome.CLARIFY and result.candidates:
            options = [c.entry_id for c in result.candidates]
            turn.state.fallbacks = 0
            crud.set_state(turn.session, state=turn.state, name=State.CLARIFY, options=options)
            self._count(turn, "clarify", None)
            self.feedback.keep(turn, kind="clarify", candidates=options)
            return [self._clarify_reply(options, turn.lang, turn.channel)]
        self.feedback.keep(turn, kind="fallback")
        return self._not_understood(turn, self._fallback_reply(turn.lang, turn.channel))

    def _wrong(self, turn: Turn) -> list[Reply]:
        """「違う」 after an answer: sorry, ask in other words or talk to a person; the question is kept."""
        self.feedback.follow_up(turn, turn.held, kind="wrong")
        crud.set_state(turn.session, state=turn.state, name=State.FAQ)
        return [self._handoff_offer(turn.lang, t(turn.lang, "answer_wrong", turn.channel), turn.channel)]

    def _not_understood(self, turn: Turn, reply: Reply) -> list[Reply]:
        """A real question the bot could not answer: the second in a row in one conversation offers a person."""
        turn.state.fallbacks += 1
        self._count(turn, "fallback", None)
        if turn.state.fallbacks >= self.config.fallbacks_before_handoff:
            turn.state.fallbacks = 0
            lead = Reply(ReplyKind.FALLBACK, t(turn.lang, "fallback_again", turn.channel), lang=turn.lang)
            return [lead, *self._start_handoff(turn, topic=None)]
        crud.set_state(turn.session, state=turn.state, name=State.FAQ)
        return [reply]

    # ----- manners and numbers
    def _manner(self, turn: Turn, kind: Manner) -> list[Reply]:
        """Greetings, thanks, acknowledgements, help: a short reply of their own; the fallback count stays."""
        if kind == Manner.FAQ_MENU:
            return [self._faq_menu(turn)]
        text = t(turn.lang, f"manner_{kind.value}", turn.channel)
        if kind in (Manner.GREETING, Manner.HELP):
            text += "\n" + self._languages_line(turn.lang, turn.channel)
        choices: tuple[Choice, ...] = ()
        if kind == Manner.HELP or turn.lang not in self.config.languages:
            choices = (Choice(t(turn.lang, "handoff_offer", turn.channel), "handoff"),)
        turn.session.add(turn.state)
        return [Reply(ReplyKind.INFO, text, choices=choices, lang=turn.lang, meta={"manner": kind.value})]

    def _faq_menu(self, turn: Turn) -> Reply:
        """Example questions, numbered: a reply with a number (or a button) picks one, as in clarify."""
        options = [o for o in self.faq_menu if o in self.kb.entries]
        crud.set_state(turn.session, state=turn.state, name=State.CLARIFY, options=options)
        reply = self._clarify_reply(options, turn.lang, turn.channel)
        lines = reply.text.split("\n", 1)
        text = t(turn.lang, "faq_menu", turn.channel) + ("\n" + lines[1] if len(lines) > 1 else "")
        return replace(reply, text=text, meta={"manner": Manner.FAQ_MENU.value})

    def _numbered(self, turn: Turn, number: int) -> list[Reply]:
        """A bare number (2, ２, 2番, /9): a choice from the list on offer, never a question not understood."""
        options = [o for o in turn.state.options.split(",") if o in self.kb.entries]
        if turn.state.state == State.CLARIFY and options:
            if 1 <= number <= len(options):
                return self._answer(turn, self.kb.entries[options[number - 1]])
            again = self._clarify_reply(options, turn.lang, turn.channel)
            lead = t(turn.lang, "invalid_choice", turn.channel, n=len(options))
            body = again.text.split("\n", 1)
            return [replace(again, text=lead + ("\n" + body[1] if len(body) > 1 else ""))]
        turn.session.add(turn.state)
        return [Reply(ReplyKind.INFO, t(turn.lang, "number_without_choices", turn.channel), lang=turn.lang)]

    def _answer(self, turn: Turn, entry: Entry) -> list[Reply]:
        turn.state.fallbacks = 0
        crud.set_state(turn.session, state=turn.state, name=State.FAQ)
        self._count(turn, "answer", entry.topic)
        return [self._answer_reply(entry, turn.lang, turn.channel)]

    # ----- postbacks (buttons)
    def _postback(self, turn: Turn, data: str) -> list[Reply]:
        kind, _, arg = data.partition(":")
        if kind == "faq" and arg in self.kb.entries:
            if turn.state.state in (State.HANDOFF, State.URGENT) and self._open_case(turn) is not None:
                return [self._answer_reply(self.kb.entries[arg], turn.lang, turn.channel)]
            if turn.state.state == State.CONSENT:  # an answer while the consent question stays open
                entry = self.kb.entries[arg]
                self._count(turn, "answer", entry.topic)
                return [self._answer_reply(entry, turn.lang, turn.channel), self._consent_pending_reply(turn)]
            return self._answer(turn, self.kb.entries[arg])
        if kind == "more" and arg in self.kb.entries:
            # The rest of an answer already given: in any state, changing none and counting nothing more.
            turn.keep_held = True
            more = self._more_reply(self.kb.entries[arg], turn.lang, turn.channel)
            turn.session.add(turn.state)
            if turn.state.state == State.CONSENT:
                return [more, self._consent_pending_reply(turn)]
            return [more]
        if kind == "handoff":
            self.feedback.follow_up(turn, turn.held, kind="person")
            return self._start_handoff(turn, topic=arg or None)
        if kind == HELPFUL:
            return self._helpful(turn, arg)
        if kind == "consent" and arg in ("yes", "no"):
            if turn.state.state != State.CONSENT:
                return [self._handoff_offer(turn.lang, t(turn.lang, "consent_expired", turn.channel), turn.channel)]
            # The buttons belong to the notice that was shown: its language is the one recorded.
            return self._consent(turn, arg == "yes")
        if kind == "withdraw":
            return self._withdraw(turn)
        return [Reply(ReplyKind.INFO, t(turn.lang, "stale_choice", turn.channel), lang=turn.lang)]

    def _helpful(self, turn: Turn, arg: str) -> list[Reply]:
        """「役に立ちましたか？」 👍 (`up:<entry>`) or 👎 (`down:<entry>`): counted per entry; a 👎 keeps the
        question it was about."""
        vote, _, entry_id = arg.partition(":")
        if vote not in ("up", "down") or entry_id not in self.kb.entries:
            return [Reply(ReplyKind.INFO, t(turn.lang, "stale_choice", turn.channel), lang=turn.lang)]
        self.feedback.vote(turn, entry_id=entry_id, helpful=vote == "up")
        turn.session.add(turn.state)
        if vote == "up":
            return [Reply(ReplyKind.INFO, t(turn.lang, "helpful_thanks", turn.channel), lang=turn.lang)]
        self.feedback.follow_up(turn, turn.held, kind="unhelpful", entry_id=entry_id)
        return [self._handoff_offer(turn.lang, t(turn.lang, "helpful_sorry", turn.channel), turn.channel)]

    def _non_text(self, turn: Turn, msg: InboundMessage) -> list[Reply]:
        case = self._open_case(turn)
        if case is not None and turn.state.state in (State.HANDOFF, State.URGENT):
            basis = self._basis(turn, case)
            if basis is not None:
                what = msg.media_type or msg.kind.value
                note = f"［{what}が送信されました（内容は保存していません）］"
                crud.add_message(turn.session, case=case, direction="in", author="parent", text=note, basis=basis)
                crud.mark_parent_waiting(turn.session, case=case)
                crud.add_alert(turn.session, case=case, kind="parent_message")
            return []
        return [Reply(ReplyKind.INFO, t(turn.lang, "media", turn.channel), lang=turn.lang)]

    # ----- handoff and consent
    def _start_handoff(self, turn: Turn, topic: str | None) -> list[Reply]:
        cid = self._cid(turn)
        existing = self._open_case(turn)
        if existing is not None:
            crud.set_state(turn.session, state=turn.state, name=State.HANDOFF, case_id=existing.id)
            text = t(turn.lang, "handoff_already", turn.channel, case_id=existing.id)
            return [Reply(ReplyKind.HANDOFF, text, lang=turn.lang)]
        if not consent.must_ask(turn.session, contact_id=cid, version=self.notices.version):
            return self._open_handoff(turn, first_message=turn.text or None, topic=topic)
        if turn.text:
            crud.hold_pending(
                turn.session, contact_id=cid, text=turn.text[:MAX_STORED], ttl=self.config.pending_ttl, now=turn.now
            )
        crud.set_state(
            turn.session,
            state=turn.state,
            name=State.CONSENT,
            options=[topic] if topic else [],
            expires_at=turn.now + self.config.consent_ttl.get(turn.contact.channel, self.config.pending_ttl),
        )
        turn.state.consent_unclear = 0
        return [self._show_notice(turn)]

    def _show_notice(self, turn: Turn) -> Reply:
        """The consent notice in the parent's language; the state remembers which language was shown."""
        turn.state.notice_lang = turn.lang
        turn.session.add(turn.state)
        return self._consent_reply(turn.lang, turn.channel)

    def _consent_turn(self, turn: Turn) -> list[Reply]:
        """A typed message while the consent question is open (a button press goes to `_postback`)."""
        answer = self.phrases.consent_answer(turn.text)
        if answer == ConsentAnswer.YES:
            if turn.state.notice_lang and turn.lang != turn.state.notice_lang:
                # The yes came in another language than the notice: show the notice in that language first.
                return [self._show_notice(turn)]
            return self._consent(turn, True)
        if answer == ConsentAnswer.NO:
            return self._consent(turn, False)
        if self.phrases.wants_person(turn.text):  # asked again for a person: the notice again, nothing counted
            return [self._show_notice(turn)]
        if self.phrases.manner(turn.text) is None:
            # A question asked meanwhile is answered; the consent question stays open.
            result = self.matcher.match(focus_text(turn.text)) if turn.lang in self.config.languages else None
            if result is not None and result.outcome == Outcome.ANSWER and result.best is not None:
                entry = self.kb.entries[result.best.entry_id]
                self._count(turn, "answer", entry.topic)
                return [self._answer_reply(entry, turn.lang, turn.channel), self._consent_pending_reply(turn)]
            if looks_like_question(turn.text):
                # A question the FAQ cannot answer is most often about the record itself: show the notice.
                return [self._show_notice(turn)]
        return self._unclear_consent(turn)

    def _unclear_consent(self, turn: Turn) -> list[Reply]:
        """Neither a clear yes nor a clear no: ask once more, saying why; a second unclear answer is a no."""
        turn.state.consent_unclear += 1
        if turn.state.consent_unclear >= 2:
            lead = Reply(ReplyKind.INFO, t(turn.lang, "consent_unclear_declined", turn.channel), lang=turn.lang)
            return [lead, *self._consent(turn, False)]
        turn.session.add(turn.state)
        return [self._consent_reply(turn.lang, turn.channel, key="consent_retry")]

    def _consent(self, turn: Turn, granted: bool) -> list[Reply]:
        cid = self._cid(turn)
        topic = turn.state.options or None
        # The answer is to the notice that was shown: its language and wording are the ones recorded.
        shown = self.notices.shown(turn.state.notice_lang or turn.lang, turn.channel)
        turn.state.consent_unclear = 0
        turn.state.notice_lang = None
        if not granted:
            consent.decline(turn.session, contact=turn.contact, shown=shown)
            crud.clear_pending(turn.session, contact_id=cid)
            crud.set_state(turn.session, state=turn.state, name=State.FAQ)
            self._count(turn, "consent_declined", None)
            concierge = self.kb.contacts.get(self.config.concierge_contact)
            cards: tuple[ContactCard, ...] = (self._card(concierge, turn.lang),) if concierge else ()
            if turn.channel == "email":
                # By mail the way to a person is the phone or the counter: the card's address may be the
                # very mailbox the bot answers from.
                cards = tuple(replace(c, email=None) for c in cards)
            text = t(turn.lang, "declined", turn.channel)
            return [Reply(ReplyKind.INFO, text, contacts=cards, lang=turn.lang)]
        consent.grant(turn.session, contact=turn.contact, shown=shown)
        first = crud.take_pending(turn.session, contact_id=cid, max_hold=self.config.pending_ttl, now=turn.now)
        return self._open_handoff(turn, first_message=first, topic=topic)

    def _question_topic(self, text: str | None) -> str | None:
        """The KB topic of a real question; None for a request for a person, a greeting or thanks (「相談員と
        話したい」 says nothing about what the case is about) and for text the matcher cannot place."""
        if not text or self.phrases.wants_person(text) or self.phrases.manner(text) is not None:
            return None
        best = self.matcher.match(text).best
        return best.topic if best is not None and best.score >= self.matcher.config.clarify_threshold else None

    def _open_handoff(self, turn: Turn, first_message: str | None, topic: str | None) -> list[Reply]:
        if topic is None:
            topic = self._question_topic(first_message)
        case = crud.create_case(turn.session, contact=turn.contact, lang=turn.lang, topic=topic)
        if first_message:
            crud.add_message(
                turn.session, case=case, direction="in", author="parent", text=first_message, basis=Basis.CONSENT
            )
        crud.add_alert(turn.session, case=case, kind="new_case")
        crud.set_state(turn.session, state=turn.state, name=State.HANDOFF, case_id=case.id)
        self._count(turn, "handoff", topic)
        reply = self._handoff_notice(case, turn)
        line = crud.add_message(
            turn.session,
            case=case,
            direction="out",
            author="bot",
            text=reply.text,
            basis=Basis.CONSENT,
            delivery=QUEUED,
        )
        return [recorded(reply, line.id)]

    def _handoff_notice(self, case: Case, turn: Turn) -> Reply:
        hours = self.config.office_hours
        if hours.is_open(turn.now):
            text = t(turn.lang, "handoff_open", turn.channel, case_id=case.id)
        else:
            nxt = hours.next_open(turn.now)
            when = format_when(nxt, turn.lang) if nxt else "-"
            text = t(
                turn.lang,
                "handoff_closed",
                turn.channel,
                case_id=case.id,
                next_open=when,
                hours=hours.describe(turn.lang),
            )
        return Reply(ReplyKind.HANDOFF, text, lang=turn.lang, meta={"case_id": str(case.id)})

    def _human_holds(self, turn: Turn) -> list[Reply] | None:
        """A person holds the conversation: record (if allowed), alert, stay silent. None if the case ended."""
        case = self._open_case(turn)
        if case is None:
            crud.set_state(turn.session, state=turn.state, name=State.FAQ)
            return None
        basis = self._basis(turn, case)
        if basis is not None:
            crud.add_message(
                turn.session, case=case, direction="in", author="parent", text=turn.text[:MAX_STORED], basis=basis
            )
        if case.topic is None:  # the case opened on 「相談員と話したい」: its first real question names the topic
            case.topic = self._question_topic(turn.text)
        crud.mark_parent_waiting(turn.session, case=case)
        crud.add_alert(turn.session, case=case, kind="parent_message")
        return []

    def _withdraw(self, turn: Turn) -> list[Reply]:
        cid = self._cid(turn)
        withdrawn = consent.withdraw(turn.session, contact=turn.contact, version=self.notices.version, lang=turn.lang)
        crud.clear_pending(turn.session, contact_id=cid)
        key = "withdrawn" if withdrawn else "withdraw_none"
        return [Reply(ReplyKind.INFO, t(turn.lang, key, turn.channel), lang=turn.lang)]

    # ----- crisis
    def _urgent(self, turn: Turn, hit: CrisisHit) -> list[Reply]:
        cid = self._cid(turn)
        reason = f"life_safety:{hit.category.id}"
        basis, basis_reason = consent.urgent_basis(turn.session, contact_id=cid, reason=reason)
        case = self._open_case(turn)
        if case is None:
            case = crud.create_case(
                turn.session,
                contact=turn.contact,
                lang=turn.lang,
                topic=_crisis_topic(hit.category.id),
                priority=Priority.URGENT,
                basis=basis,
                basis_reason=basis_reason,
                crisis_category=hit.category.id,
            )
        else:
            consent.escalate(turn.session, case=case, crisis_category=hit.category.id, reason=reason)
        crud.clear_pending(turn.session, contact_id=cid)
        crud.add_message(
            turn.session, case=case, direction="in", author="parent", text=turn.text[:MAX_STORED], basis=basis
        )
        crud.mark_parent_waiting(turn.session, case=case)
        crud.add_alert(turn.session, case=case, kind="urgent")
        crud.set_state(turn.session, state=turn.state, name=State.URGENT, case_id=case.id)
        self._count(turn, "urgent", _crisis_topic(hit.category.id))
        lang = self._crisis_lang(turn.text, turn.lang, turn.contact.lang, hit.lang)
        reply = self._urgent_reply(hit, lang, turn.channel)
        line = crud.add_message(
            turn.session, case=case, direction="out", author="bot", text=reply.text, basis=basis, delivery=QUEUED
        )
        return [recorded(reply, line.id)]

    def _distress(self, turn: Turn, assessment: Assessment) -> list[Reply]:
        """Exhaustion, despair, loneliness: kindness first, a support line and the offer of a person (a
        button that leads to the consent question). Nothing is recorded, no case is opened; a consent
        question already open stays open. An FAQ answer follows when the message also asks one."""
        lang = self._crisis_lang(turn.text, turn.lang, turn.contact.lang, assessment.lang)
        self._count(turn, "distress", "parenting_worries")
        replies = [self._distress_reply(lang)]
        if turn.state.state != State.CONSENT:
            turn.state.fallbacks = 0
            crud.set_state(turn.session, state=turn.state, name=State.FAQ)
            result = self.matcher.match(focus_text(turn.text))
            if result.outcome == Outcome.ANSWER and result.best is not None:
                replies.append(self._answer_reply(self.kb.entries[result.best.entry_id], turn.lang, turn.channel))
        return replies

    def _crisis_lang(self, text: str, lang: str, known: str | None = None, hint: str | None = None) -> str:
        """Crisis replies are written in more languages than the KB answers: use the message's own
        language when the crisis texts have it (the language of a curated phrase that matched first,
        then the detector's, then the contact's)."""
        written = {code for cat in self.kb.crisis.categories for code in cat.message}
        for candidate in (hint, detect_language(text), known, lang):
            if candidate and candidate in written:
                return candidate
        return lang

    # ----- reply builders (pure)
    def _greeting(self, lang: str, channel: str | None = None) -> Reply:
        hours = self.config.office_hours.describe(lang)
        choices = (Choice(t(lang, "handoff_offer", channel), "handoff"),)
        text = t(lang, "greeting", channel, hours=hours) + "\n" + self._languages_line(lang, channel)
        return Reply(ReplyKind.INFO, text, choices=choices, lang=lang)

    def _languages_line(self, lang: str, channel: str | None) -> str:
        """Which languages the bot answers in, and in which it can only greet, connect and warn."""
        others = [c for c in self.config.chat_languages if c not in self.config.languages]
        names = (
            "・".join(LANGUAGE_NAMES.get(c, c) for c in others)
            if lang == "ja"
            else ", ".join(LANGUAGE_NAMES.get(c, c) for c in others)
        )
        return t(lang, "languages", channel, others=names)

    def _kb_unavailable_reply(self, turn: Turn) -> Reply:
        concierge = self.kb.contacts.get(self.config.concierge_contact)
        cards = (self._card(concierge, turn.lang),) if concierge else ()
        choices = (Choice(t(turn.lang, "handoff_offer", turn.channel), "handoff"),)
        text = t(turn.lang, "kb_unavailable", turn.channel)
        return Reply(ReplyKind.FALLBACK, text, choices=choices, contacts=cards, lang=turn.lang)

    def _answer_reply(self, entry: Entry, lang: str, channel: str | None = None) -> Reply:
        """What fits a phone screen: the KB answer (one kind sentence and 2-3 points), the source line once,
        and one contact, the office that answers it, with only what is needed to reach it. The rest is
        behind buttons: the full contact details and the other offices (`more:<entry>`), related
        questions and a person."""
        written = _written_language(entry, lang)
        worded = entry.mail if channel == MAIL and written == lang else None
        answer = ((worded or {}).get(written) or entry.answer[written]).strip()
        key = "answer_source_only" if _asks_to_confirm(answer, written) else "answer_source"
        checked = format_date(entry.source.checked, written)
        source = t(written, key, channel, url=_shown_url(entry.source.url), checked=checked)
        contacts = self.kb.entry_contacts(entry)
        main = tuple(self._short_card(c, lang) for c in contacts[:1])
        choices = []
        if len(contacts) > 1 or (contacts and self._card(contacts[0], lang) != main[0]):
            choices.append(Choice(t(lang, "answer_more", channel), f"more:{entry.id}"))
        choices += [
            Choice(_label(self._first_question(self.kb.entries[r], lang)), f"faq:{r}")
            for r in entry.related
            if r in self.kb.entries
        ][:RELATED_UNDER_ANSWER]
        person = Choice(t(lang, "handoff_offer", channel), f"handoff:{entry.topic}")
        # A sensitive topic offers the person first; elsewhere the button is there, last.
        choices = [person, *choices] if entry.handoff == "suggest" else [*choices, person]
        if channel in self.config.helpful_channels:
            choices += [
                Choice(t(lang, "helpful_yes", channel), f"{HELPFUL}:up:{entry.id}"),
                Choice(t(lang, "helpful_no", channel), f"{HELPFUL}:down:{entry.id}"),
            ]
        return Reply(
            ReplyKind.ANSWER,
            f"{answer}\n\n{source}",
            choices=tuple(choices),
            contacts=main,
            entry_id=entry.id,
            lang=lang,
            meta={"topic": entry.topic},
        )

    def _more_reply(self, entry: Entry, lang: str, channel: str | None = None) -> Reply:
        """The `more:<entry>` button: every office of the answer with its full details (address, hours, mail,
        web page). An entry without its own contacts gives the concierge, who points the way."""
        contacts = self.kb.entry_contacts(entry)
        if not contacts and self.config.concierge_contact in self.kb.contacts:
            contacts = [self.kb.contacts[self.config.concierge_contact]]
        question = self._first_question(entry, lang)
        choices = [
            Choice(_label(self._first_question(self.kb.entries[r], lang)), f"faq:{r}")
            for r in entry.related
            if r in self.kb.entries
        ][:RELATED_UNDER_DETAILS]
        choices.append(Choice(t(lang, "handoff_offer", channel), f"handoff:{entry.topic}"))
        return Reply(
            ReplyKind.INFO,
            t(lang, "answer_more_intro", channel, question=question),
            choices=tuple(choices),
            contacts=tuple(self._card(c, lang) for c in contacts),
            entry_id=entry.id,
            lang=lang,
            meta={"topic": entry.topic, "more": "1"},
        )

    def _clarify_reply(self, options: list[str], lang: str, channel: str | None = None) -> Reply:
        choices = [Choice(_label(self._first_question(self.kb.entries[o], lang)), f"faq:{o}") for o in options]
        lines = [f"{i}. {self._first_question(self.kb.entries[o], lang)}" for i, o in enumerate(options, 1)]
        choices.append(Choice(t(lang, "handoff_offer", channel), "handoff"))
        text = t(lang, "clarify", channel) + "\n" + "\n".join(lines)
        return Reply(ReplyKind.CLARIFY, text, choices=tuple(choices), lang=lang)

    def _fallback_reply(self, lang: str, channel: str | None = None) -> Reply:
        return self._handoff_offer(lang, t(lang, "fallback", channel), channel, kind=ReplyKind.FALLBACK)

    def _handoff_offer(
        self, lang: str, text: str, channel: str | None = None, kind: ReplyKind = ReplyKind.INFO
    ) -> Reply:
        concierge = self.kb.contacts.get(self.config.concierge_contact)
        cards = (self._card(concierge, lang),) if concierge else ()
        choices = (Choice(t(lang, "handoff_offer", channel), "handoff"),)
        return Reply(kind, text, choices=choices, contacts=cards, lang=lang)

    def _consent_reply(self, lang: str, channel: str | None = None, key: str = "consent") -> Reply:
        """The consent question (`key`: the notice itself, the re-ask, or the reminder), with its two buttons."""
        text = self.notices.shown(lang, channel).text if key == "consent" else t(lang, key, channel)
        choices = (
            Choice(t(lang, "consent_yes", channel), "consent:yes"),
            Choice(t(lang, "consent_no", channel), "consent:no"),
        )
        meta = {"notice": self.notices.version, "notice_lang": lang}
        return Reply(ReplyKind.CONSENT, text, choices=choices, lang=lang, meta=meta)

    def _consent_pending_reply(self, turn: Turn) -> Reply:
        return self._consent_reply(turn.state.notice_lang or turn.lang, turn.channel, key="consent_pending")

    def _urgent_reply(self, hit: CrisisHit, lang: str, channel: str | None = None) -> Reply:
        """The leading category's message and notice (DV and children have their own: no promise of a
        call-back, simple words), then the contacts of every category found, then, in a language other
        than Japanese and English, the city's interpreting desk."""
        cat = hit.category
        message = cat.message.get(lang) or cat.message.get("en") or next(iter(cat.message.values()))
        notices = cat.notice or self.kb.crisis.notice
        worded = (cat.notice_mail if cat.notice else self.kb.crisis.notice_mail) if channel == MAIL else None
        notice = (worded or {}).get(lang) or notices.get(lang) or notices.get("en", "")
        ids = [c for category in (cat, *hit.also) for c in category.contacts]
        if lang not in ("ja", "en"):
            ids += self.kb.crisis.foreign_contacts
        seen = list(dict.fromkeys(c for c in ids if c in self.kb.contacts))
        cards = tuple(self._card(self.kb.contacts[c], lang) for c in seen)
        meta = {"crisis": cat.id, "level": "urgent"}
        if hit.also:
            meta["also"] = ",".join(c.id for c in hit.also)
        return Reply(ReplyKind.URGENT, f"{message}\n{notice}".strip(), contacts=cards, lang=lang, meta=meta)

    def _distress_reply(self, lang: str) -> Reply:
        cat = self.kb.crisis.category("distress")
        if cat is None:
            return self._fallback_reply(lang)
        message = cat.message.get(lang) or cat.message.get("en") or next(iter(cat.message.values()))
        cards = tuple(self._card(self.kb.contacts[c], lang) for c in cat.contacts if c in self.kb.contacts)
        choices = (Choice(t(lang, "handoff_offer"), "handoff:parenting_worries"),)
        return Reply(
            ReplyKind.INFO,
            message,
            choices=choices,
            contacts=cards,
            lang=lang,
            meta={"crisis": "distress", "level": "distress"},
        )

    @staticmethod
    def _card(contact: KBContact, lang: str) -> ContactCard:
        def loc(value: dict[str, str] | None) -> str | None:
            if not value:
                return None
            return value.get(lang) or value.get("en") or next(iter(value.values()))

        return ContactCard(
            name=loc(contact.name) or contact.id,
            phone=contact.phone,
            # A FAX equal to the phone number (one line for both) is not worth a line of its own.
            fax=contact.fax if contact.fax != contact.phone else None,
            email=contact.email,
            address=loc(contact.address),
            hours=loc(contact.hours),
            url=contact.url,
        )

    @classmethod
    def _short_card(cls, contact: KBContact, lang: str) -> ContactCard:
        """The contact under an answer: its name, one way to reach it (the phone, else mail, else its web
        page) and the first sentence of its hours (when it answers; notes on closing days and the like
        follow in the details). Address, FAX and the other ways are behind the details button."""
        full = cls._card(contact, lang)
        return ContactCard(
            name=full.name,
            phone=full.phone,
            email=None if full.phone else full.email,
            hours=_first_sentence(full.hours) if full.hours else None,
            url=None if full.phone or full.email else full.url,
        )

    @staticmethod
    def _first_question(entry: Entry, lang: str) -> str:
        # Other languages than ja/en: English questions read better for most foreign residents.
        fallback = "ja" if lang == "ja" else "en"
        qs = entry.questions.get(lang) or entry.questions.get(fallback) or entry.questions.get("ja") or [entry.id]
        return qs[0]

    # ----- helpers
    def _expire(self, session: Session, state: ConversationState, now: dt.datetime) -> None:
        if state.state == State.CONSENT and state.expires_at is not None and state.expires_at <= now:
            crud.clear_pending(session, contact_id=state.contact_id)
            crud.set_state(session, state=state, name=State.FAQ)

    def _open_case(self, turn: Turn) -> Case | None:
        return crud.open_case_for(turn.session, contact_id=self._cid(turn))

    def _basis(self, turn: Turn, case: Case) -> Basis | None:
        """Under what basis this contact's message may be recorded on `case`, if any."""
        return consent.basis_for(turn.session, case=case)

    @staticmethod
    def _cid(turn: Turn) -> int:
        assert turn.contact.id is not None
        return turn.contact.id

    def _count(self, turn: Turn, outcome: str, topic: str | None) -> None:
        crud.count_event(
            turn.session,
            channel=turn.contact.channel,
            outcome=outcome,
            lang=turn.lang,
            topic=topic,
            after_hours=not self.config.office_hours.is_open(turn.now),
            at=turn.now,
        )


_SENTENCE = re.compile(r"[^。！？!?\n]+[。！？!?]*")
_STRONG_QUESTION = re.compile(r"[?？]|(?:ですか|ますか|でしょうか|ませんか|のか|かな)[。\s]*$")
_WEAK_QUESTION = re.compile(
    r"教えて|知りたい|どう(?:すれば|したら|やって)|いつ|どこ|いくら|何時|どれくらい|"
    r"\b(?:what|when|where|how|who|which|can i|could you|is there|do i|does)\b",
    re.IGNORECASE,
)


def looks_like_question(text: str) -> bool:
    return bool(_STRONG_QUESTION.search(text) or _WEAK_QUESTION.search(text))


def focus_text(text: str, limit: int = MAX_TEXT) -> str:
    """What the matcher reads of a long message: the sentences that ask something, wherever they are
    (the last ones first: a story usually ends with its question); without any, the start and the end."""
    if len(text) <= limit:
        return text
    sentences = [s.strip() for s in _SENTENCE.findall(text) if s.strip()]
    for pattern in (_STRONG_QUESTION, _WEAK_QUESTION):
        asking = [s for s in sentences if pattern.search(s) and len(s) <= limit]
        if asking:
            picked: list[str] = []
            used = 0
            for sentence in reversed(asking[-3:]):
                if used + len(sentence) > limit:
                    break
                picked.insert(0, sentence)
                used += len(sentence) + 1
            if picked:
                return " ".join(picked)
    half = limit // 2
    return f"{text[:half]} {text[-half:]}"


_NUMBER = re.compile(r"[/#＃]?\s*(\d{1,3})\s*(?:[.)）．]|番(?:です|で)?|です)?")


def as_number(text: str) -> int | None:
    """A reply that is only a choice number (2, ２, 2番, 2., /9), else None."""
    m = _NUMBER.fullmatch(unicodedata.normalize("NFKC", text).strip())
    return int(m.group(1)) if m else None


def _label(text: str) -> str:
    return text if len(text) <= LABEL_MAX else text[: LABEL_MAX - 1] + "…"


# Where the first sentence of an office's hours ends; in English also a comma before more words (", every
# day except ..."), as a Japanese text would use a new sentence there.
_SENTENCE_END = re.compile(r"。|\.\s|;\s|,\s(?=[a-z])")


def _first_sentence(text: str) -> str:
    return _SENTENCE_END.split(text, maxsplit=1)[0].strip()


def _written_language(entry: Entry, lang: str) -> str:
    """The language an answer is shown in: the parent's, else English, else whatever the entry has."""
    if lang in entry.answer:
        return lang
    return "en" if "en" in entry.answer else next(iter(entry.answer))


# An answer that already sends the parent to the office to confirm: the source line does not say it again.
_CONFIRMS = {
    "ja": re.compile(r"ご?確認(?:ください|して|を)|お問い合わせください|お問合せください|ご相談ください"),
    "en": re.compile(r"\b(?:check|confirm|ask)\b", re.IGNORECASE),
}


def _asks_to_confirm(answer: str, lang: str) -> bool:
    pattern = _CONFIRMS.get(lang)
    return bool(pattern and pattern.search(answer))


def _shown_url(url: str) -> str:
    """A source URL as a parent sees it: a long one (percent-encoded, say) becomes the site's name."""
    if len(url) <= MAX_URL_SHOWN:
        return url
    return urlsplit(url).hostname or url[:MAX_URL_SHOWN]


def _crisis_topic(category: str) -> str | None:
    """The statistics topic of a crisis category, where the taxonomy has one."""
    return {"abuse": "abuse", "dv": "dv"}.get(category)
