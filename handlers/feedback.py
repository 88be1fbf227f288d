"""FAQ feedback: what the bot could not answer well, kept so that the concierge can improve the FAQ.

Kept: a question that ended in a fallback or a clarify, an answer followed by 「違う」 or a request for a
person, and an answer that got 👎 on 「役に立ちましたか？」 (👍 and 👎 are also counted per entry).

This is anonymous FAQ data, not a record about a person, so it needs no consent (handlers/consent.py is
not asked): the row names no contact, case or user (storage.models.FaqFeedback has no such column), the
text is redacted before it is written (knowledge/redact.py: phone, mail, address, long numbers, names),
nothing the crisis detector reads as urgent or distress is ever kept (`CrisisDetector.assess`, the same
judgement the reply rests on), and it is deleted after `RETENTION__FEEDBACK_DAYS` (90). Only questions in
the languages the KB answers in are kept. The privacy answer and the greeting say so.

To file a 👎 or 「違う」 with the question it is about, the question of the last answer waits as a *held*
row (redacted, unlinked; the conversation state holds only its id) until the next turn: then it is kept or
deleted, and the sweep deletes any held row older than the pre-consent window.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from knowledge.crisis import CrisisDetector, Level
from knowledge.normalize import clean
from knowledge.redact import NameTagger, SudachiNames, redact
from storage import feedback as store
from storage.models import FeedbackStatus

if TYPE_CHECKING:
    from handlers.engine import Turn

MAX_QUESTION = 500  # characters of a kept question
HELPFUL = "helpful"  # postback `helpful:up:<entry>` / `helpful:down:<entry>`

# 「違う」: the answer was not what the parent asked (ja/en, after NFKC and case folding).
_WRONG = re.compile(
    r"(?:いや|いいえ|no)?[、,\s]*"
    r"(?:違う|ちがう|違います|ちがいます|違うよ|違うんだけど|違うんです|違いますよ|そうじゃない|そうじゃなくて|"
    r"それじゃない|それではないです|それじゃなくて|そういうことじゃない|知りたいのはそれじゃない|聞きたいのはそれじゃない|"
    r"答えになってない|答えになっていません|"
    r"wrong|that's wrong|that is wrong|that's not it|that is not it|not that|not what i asked|"
    r"that's not what i asked|that is not what i asked|wrong answer)"
    r"[。.!！?？\s]*(?:です|よ)?[。.!！?？\s]*"
)


def is_wrong(text: str) -> bool:
    """「違う」 and the like: the last answer missed."""
    return bool(_WRONG.fullmatch(clean(text).replace("’", "'")))


class FeedbackKeeper:
    """The engine's one way into FAQ feedback; every write goes through `_allowed`."""

    def __init__(
        self, crisis: Callable[[], CrisisDetector], languages: Sequence[str], names: NameTagger | None = None
    ) -> None:
        self._crisis = crisis  # the detector of the KB in use (a new KB may be swapped in at any time)
        self._languages = tuple(languages)
        self._names = names if names is not None else SudachiNames()

    def _allowed(self, text: str, lang: str, level: Level | None = None) -> str | None:
        """The redacted question, or None when it must not be kept (a crisis, another language, no words).
        `level` is what the crisis check of the message found, when it has run already."""
        if lang not in self._languages or not text.strip():
            return None
        # The full assessment decides: the one the reply was chosen by (the intake's cheap screen is a superset
        # made for queue lanes: it flags ordinary words such as 壊れて, which would hide real FAQ gaps).
        if level is None:
            level = self._crisis().assess(text).level
        if level != Level.NONE:
            return None
        question = redact(text, self._names).strip()[:MAX_QUESTION]
        return question or None

    def keep(self, turn: Turn, *, kind: str, candidates: Sequence[str] = ()) -> None:
        """A fallback or a clarify: keep the question."""
        question = self._allowed(turn.text, turn.lang, turn.crisis_level)
        if question is None:
            return
        store.add(
            turn.session,
            kind=kind,
            question=question,
            channel=turn.channel,
            lang=turn.lang,
            candidates=candidates,
            at=turn.now,
        )

    def hold(self, turn: Turn, *, entry_id: str) -> None:
        """An answer to a typed question: hold the question until the next turn."""
        question = self._allowed(turn.text, turn.lang, turn.crisis_level)
        if question is None:
            return
        row = store.add(
            turn.session,
            kind="answered",
            question=question,
            channel=turn.channel,
            lang=turn.lang,
            entry_id=entry_id,
            status=FeedbackStatus.HELD,
            at=turn.now,
        )
        turn.state.feedback_id = row.id
        turn.session.add(turn.state)

    @staticmethod
    def take_held(turn: Turn) -> int | None:
        """At the start of a turn: the held question of the previous answer, now the turn's to keep or drop."""
        held = turn.state.feedback_id
        if held is not None:
            turn.state.feedback_id = None
            turn.session.add(turn.state)
        return held

    @staticmethod
    def follow_up(turn: Turn, held: int | None, *, kind: str, entry_id: str | None = None) -> bool:
        """The previous answer missed (「違う」, a person, 👎): its held question is kept for review."""
        if held is None:
            return False
        return store.promote(turn.session, feedback_id=held, kind=kind, entry_id=entry_id) is not None

    @staticmethod
    def release(turn: Turn, held: int | None) -> None:
        """At the end of a turn: a held question nobody kept is deleted (promoted rows are left alone)."""
        if held is not None:
            store.drop_held(turn.session, feedback_id=held)

    @staticmethod
    def vote(turn: Turn, *, entry_id: str, helpful: bool) -> None:
        store.vote(turn.session, entry_id=entry_id, helpful=helpful, channel=turn.channel, lang=turn.lang, at=turn.now)
