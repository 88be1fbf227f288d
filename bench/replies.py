"""How long answers are, as a parent reads them on a phone.

For every dev-set question whose expected outcome is an answer (bench/devset.yaml) and that the engine does
answer, the reply is rendered as plain text (what email and the console show, contacts and buttons
included) and as LINE messages. Printed: median / p90 / max characters of the plain text, how many over
800, and the LINE layout (text bubbles, flex messages), for the current builder ("after") and for the
builder before replies were shortened ("before", kept below as it was: the whole contact card of every
office, three related questions, the check-the-latest sentence on every answer, an ISO date).

Run: .venv/bin/python bench/replies.py
"""

from __future__ import annotations

import statistics
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.settings import Settings  # noqa: E402
from handlers.channels import line  # noqa: E402
from handlers.engine import Engine, _label  # noqa: E402
from handlers.texts import t  # noqa: E402
from handlers.types import Choice, ContactCard, Reply, ReplyKind, render_plain  # noqa: E402
from knowledge.evaluation import load_devset  # noqa: E402
from knowledge.loader import load_kb  # noqa: E402
from knowledge.matcher import Matcher  # noqa: E402
from knowledge.models import Contact, Entry  # noqa: E402
from knowledge.normalize import Normalizer  # noqa: E402

DEVSET = ROOT / "bench" / "devset.yaml"
LIMIT = 800
BEFORE_SOURCE = {
    "ja": "最新の情報は各窓口でご確認ください（出典：{url}　確認日：{checked}）",
    "en": "Please check the latest information with the office (source: {url}, checked {checked}).",
}


def before_card(contact: Contact, lang: str) -> ContactCard:
    def loc(value: dict[str, str] | None) -> str | None:
        return (value.get(lang) or value.get("en") or next(iter(value.values()))) if value else None

    return ContactCard(
        name=loc(contact.name) or contact.id,
        phone=contact.phone,
        fax=contact.fax,
        email=contact.email,
        address=loc(contact.address),
        hours=loc(contact.hours),
        url=contact.url,
    )


def before_answer(engine: Engine, entry: Entry, lang: str) -> Reply:
    """The answer builder as it was (handlers/engine.py `_answer_reply` before this change)."""
    answer = entry.answer.get(lang) or entry.answer.get("en") or next(iter(entry.answer.values()))
    template = BEFORE_SOURCE.get(lang, BEFORE_SOURCE["en"])
    source = template.format(url=entry.source.url, checked=entry.source.checked.isoformat())
    choices = [
        Choice(_label(engine._first_question(engine.kb.entries[r], lang)), f"faq:{r}")
        for r in entry.related
        if r in engine.kb.entries
    ][:3]
    if entry.handoff == "suggest":
        choices.insert(0, Choice(t(lang, "handoff_offer"), f"handoff:{entry.topic}"))
    cards = tuple(before_card(c, lang) for c in engine.kb.entry_contacts(entry))
    return Reply(ReplyKind.ANSWER, f"{answer.strip()}\n\n{source}", choices=tuple(choices), contacts=cards, lang=lang)


def after_answer(engine: Engine, entry: Entry, lang: str) -> Reply:
    return engine._answer_reply(entry, lang)


def percentile(values: list[int], q: float) -> int:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure(engine: Engine, answered: list[tuple[Entry, str]], build: Callable[[Engine, Entry, str], Reply]) -> str:
    sizes: list[int] = []
    texts: list[int] = []
    flexes: list[int] = []
    for entry, lang in answered:
        reply = build(engine, entry, lang)
        sizes.append(len(render_plain(reply)))
        messages = line.render([reply])
        texts.append(sum(m["type"] == "text" for m in messages))
        flexes.append(sum(m["type"] == "flex" for m in messages))
    over = sum(s > LIMIT for s in sizes)
    return (
        f"plain text: median {statistics.median(sizes):.0f}, p90 {percentile(sizes, 0.9)}, max {max(sizes)}, "
        f"over {LIMIT}: {over} | LINE: text bubbles max {max(texts)}, flex messages max {max(flexes)} "
        f"(replies with >1 flex: {sum(f > 1 for f in flexes)})"
    )


def main() -> None:
    kb = load_kb()
    settings = Settings()
    matcher = Matcher(kb, Normalizer(kb.synonyms), settings.match.config())
    engine = Engine(kb, matcher, sessions=lambda: None, config=settings.engine_config())  # type: ignore[arg-type,return-value]
    items = [i for i in load_devset(DEVSET) if i.expect == "answer"]
    answered: list[tuple[Entry, str]] = []
    for item in items:
        decision = engine.classify(item.q, item.lang)
        if decision.action == "answer" and decision.entry_id:
            answered.append((kb.entries[decision.entry_id], decision.lang))
    every = [(e, lang) for e in kb.entries.values() for lang in ("ja", "en")]
    print(f"dev-set questions expecting an answer: {len(items)}, answered by the engine: {len(answered)}")
    for name, build in (("before", before_answer), ("after", after_answer)):
        print(f"  {name:6} {measure(engine, answered, build)}")
    print(f"every KB entry in ja and en ({len(every)} replies)")
    for name, build in (("before", before_answer), ("after", after_answer)):
        print(f"  {name:6} {measure(engine, every, build)}")


if __name__ == "__main__":
    main()
