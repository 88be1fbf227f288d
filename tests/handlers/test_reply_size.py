"""Answers fit a phone: short plain text, one contact, the source line once, a readable date, no long URL,
and on LINE one text bubble with at most one flex card (issue 12, "Replies that fit a phone")."""

from __future__ import annotations

import datetime as dt
import re
import statistics
from pathlib import Path

import pytest
from sqlmodel import Session

from bot.settings import Settings
from handlers.channels import line
from handlers.engine import Engine
from handlers.types import Reply, render_plain
from knowledge.evaluation import load_devset
from knowledge.matcher import Matcher
from knowledge.models import KnowledgeBase, Source

DEVSET = Path(__file__).resolve().parents[2] / "bench" / "devset.yaml"
LATEST = re.compile(r"最新の情報は|check the latest", re.IGNORECASE)
URL = re.compile(r"https?://\S+")


def _no_database() -> Session:
    raise AssertionError("building replies needs no database")


@pytest.fixture(scope="module")
def engine(kb: KnowledgeBase, matcher: Matcher) -> Engine:
    return Engine(kb, matcher, sessions=_no_database, config=Settings().engine_config())


def _every_answer(engine: Engine) -> list[Reply]:
    return [engine._answer_reply(e, lang) for e in engine.kb.entries.values() for lang in ("ja", "en")]


def test_dev_set_answers_are_short_in_plain_text(engine: Engine) -> None:
    sizes = []
    for item in load_devset(DEVSET):
        if item.expect != "answer":
            continue
        decision = engine.classify(item.q, item.lang)
        if decision.action == "answer":
            sizes += [len(render_plain(r)) for r in engine.replies_for(decision)]
    assert len(sizes) >= 50
    assert statistics.median(sizes) <= 350
    assert max(sizes) <= 800


def test_every_answer_has_one_contact_the_source_once_and_fits_one_line_bubble(engine: Engine) -> None:
    for reply in _every_answer(engine):
        plain = render_plain(reply)
        assert len(plain) <= 800, (reply.entry_id, reply.lang)
        assert len(reply.contacts) <= 1, reply.entry_id
        card = reply.contacts[0] if reply.contacts else None
        assert card is None or (card.address is None and card.fax is None), "address and FAX are details"
        assert len(LATEST.findall(plain)) <= 1, reply.entry_id
        assert len(re.findall(r"出典|Source:", plain)) == 1, reply.entry_id
        assert not re.search(r"20\d\d-\d\d-\d\d", plain), "dates are written as a parent reads them"
        messages = line.render([reply])
        assert sum(m["type"] == "text" for m in messages) == 1
        assert sum(m["type"] == "flex" for m in messages) <= 1


def test_the_confirm_sentence_is_said_once_even_when_the_answer_already_says_it(engine: Engine) -> None:
    entry = next(e for e in engine.kb.entries.values() if "ご確認ください" in e.answer["ja"])
    plain = render_plain(engine._answer_reply(entry, "ja"))
    assert len(re.findall(r"ご確認ください", plain)) == 1


def test_the_source_date_is_a_japanese_date_and_a_long_url_is_not_shown(engine: Engine) -> None:
    entry = next(iter(engine.kb.entries.values()))
    long_url = "https://www.city.hakodate.hokkaido.jp/docs/" + "%E5%AD%90%E8%82%B2%E3%81%A6" * 8
    changed = entry.model_copy(update={"source": Source(url=long_url, checked=dt.date(2026, 11, 26))})
    engine.kb.entries[entry.id] = changed
    try:
        ja = engine._answer_reply(changed, "ja")
        en = engine._answer_reply(changed, "en")
    finally:
        engine.kb.entries[entry.id] = entry
    assert "2026年11月26日" in ja.text and "26 November 2026" in en.text
    for reply in (ja, en):
        assert long_url not in reply.text and "www.city.hakodate.hokkaido.jp" in reply.text
        assert all(len(u) <= 100 for u in URL.findall(render_plain(reply)))


def test_details_other_contacts_related_and_a_person_are_buttons(engine: Engine) -> None:
    entry = next(e for e in engine.kb.entries.values() if len(e.contacts) > 1 and e.related)
    reply = engine._answer_reply(entry, "ja")
    data = [c.data for c in reply.choices]
    assert f"more:{entry.id}" in data and any(d.startswith("faq:") for d in data)
    assert any(d.startswith("handoff") for d in data)
    more = engine._more_reply(entry, "ja")
    assert list(more.contacts) == [engine._card(k, "ja") for k in engine.kb.entry_contacts(entry)]
    assert len(line.render([more])) == 2, "one text and one flex message (a carousel for several offices)"
