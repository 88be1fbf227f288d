"""The public FAQ under a real uvicorn: no login, every public entry with its contacts and source date,
FAQPage JSON-LD, caching with ETags, a search that uses the bot's matcher, stores nothing and is rate-limited,
and the emergency numbers first for a query that reads as a crisis."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlmodel import SQLModel, select

from bot.public import SearchLimit
from bot.runtime import Runtime
from handlers.hours import format_date
from tests.e2e.kit import sqlite_site


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Runtime]]:
    with sqlite_site(tmp_path_factory.mktemp("faq")) as site:
        yield site


def ld(html: str) -> dict[str, object]:
    match = re.search(r'<script type="application/ld\+json">(.*?)</script>', html, re.S)
    assert match is not None
    data: dict[str, object] = json.loads(match.group(1))
    return data


def test_the_faq_needs_no_login_and_shows_every_public_entry(site: tuple[str, Runtime]) -> None:
    base, rt = site
    r = httpx.get(base + "/faq")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    public = [e for e in rt.kb.entries.values() if e.open_data and e.questions.get("ja")]
    hidden = [e for e in rt.kb.entries.values() if not e.open_data]
    assert public and hidden
    for entry in public:
        assert f'id="{entry.id}"' in html
    for entry in hidden:  # the chat's own entries (talking to a person, consent) are not FAQ
        assert f'id="{entry.id}"' not in html
    data = ld(html)
    assert data["@type"] == "FAQPage"
    questions = data["mainEntity"]
    assert isinstance(questions, list) and len(questions) == len(public)
    assert all(q["@type"] == "Question" and q["acceptedAnswer"]["text"] for q in questions)


def test_an_entry_page_has_its_contacts_phone_link_and_confirmed_date(site: tuple[str, Runtime]) -> None:
    base, rt = site
    entry = next(
        e for e in rt.kb.entries.values() if e.open_data and e.contacts and rt.kb.contacts[e.contacts[0]].phone
    )
    contact = rt.kb.contacts[entry.contacts[0]]
    r = httpx.get(f"{base}/faq/{entry.id}")
    assert r.status_code == 200
    assert entry.questions["ja"][0] in r.text
    assert f'href="tel:{contact.phone.replace("-", "")}"' in r.text  # type: ignore[union-attr]
    assert format_date(entry.source.checked, "ja") + "に確認" in r.text
    assert ld(r.text)["mainEntity"][0]["name"] == entry.questions["ja"][0]  # type: ignore[index]


def test_english_pages_show_english_answers(site: tuple[str, Runtime]) -> None:
    base, rt = site
    entry = next(e for e in rt.kb.entries.values() if e.open_data and "en" in e.answer and e.questions.get("en"))
    r = httpx.get(f"{base}/faq/{entry.id}", params={"lang": "en"})
    assert r.status_code == 200 and '<html lang="en">' in r.text
    assert entry.answer["en"].splitlines()[0] in r.text
    assert "Parenting FAQ" in r.text
    assert httpx.get(f"{base}/faq", params={"lang": "xx"}).text.startswith('<!doctype html>\n<html lang="ja">')


def test_pages_are_cached_and_revalidated(site: tuple[str, Runtime]) -> None:
    base, _ = site
    first = httpx.get(base + "/faq")
    assert first.headers["cache-control"].startswith("public")
    etag = first.headers["etag"]
    again = httpx.get(base + "/faq", headers={"if-none-match": etag})
    assert again.status_code == 304 and again.content == b""
    css = httpx.get(base + "/faq/faq.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")


def test_an_unknown_entry_is_a_japanese_404(site: tuple[str, Runtime]) -> None:
    base, _ = site
    r = httpx.get(base + "/faq/no-such-entry")
    assert r.status_code == 404 and "見つかりません" in r.text


def test_search_answers_with_the_matcher_and_stores_nothing(
    site: tuple[str, Runtime], caplog: pytest.LogCaptureFixture
) -> None:
    base, rt = site
    query = "児童手当はいつ振り込まれますか"
    expected = rt.matcher.match(query).candidates[0].entry_id
    with rt.sessions() as s:
        before = {t.name: len(s.exec(select(t)).all()) for t in SQLModel.metadata.sorted_tables}  # type: ignore[call-overload]
    with caplog.at_level(logging.DEBUG):
        r = httpx.get(base + "/faq/search", params={"q": query})
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    first = re.search(r'<details class="item" id="([^"]+)" open>', r.text)
    assert first is not None and first.group(1) == expected
    with rt.sessions() as s:
        after = {t.name: len(s.exec(select(t)).all()) for t in SQLModel.metadata.sorted_tables}  # type: ignore[call-overload]
    assert after == before
    assert all(query not in rec.getMessage() for rec in caplog.records)


def test_a_keyword_search_finds_entries_that_mention_it(site: tuple[str, Runtime]) -> None:
    base, _ = site
    r = httpx.get(base + "/faq/search", params={"q": "病児保育"})
    assert r.status_code == 200 and r.text.count('<details class="item"') >= 1
    nothing = httpx.get(base + "/faq/search", params={"q": "火星探査機の打ち上げ日程"})
    assert "ぴったりの答えが見つかりませんでした" in nothing.text


def test_a_crisis_query_gets_the_emergency_numbers_first(site: tuple[str, Runtime]) -> None:
    base, _ = site
    r = httpx.get(base + "/faq/search", params={"q": "夫に殴られて怖い、子どもと逃げたい"})
    assert r.status_code == 200
    urgent = r.text.index('class="urgent"')
    assert 'href="tel:' in r.text[urgent : urgent + 2000]
    calm = httpx.get(base + "/faq/search", params={"q": "保育園に落ちた"})
    assert 'class="urgent"' not in calm.text


def test_search_is_rate_limited_per_address() -> None:
    limit = SearchLimit(per_minute=3)
    assert [limit.allow("a", now=t) for t in (0, 1, 2, 3)] == [True, True, True, False]
    assert limit.allow("b", now=3)  # another address is not affected
    assert limit.allow("a", now=61)  # the window slides


def test_the_search_answers_429_in_japanese_when_flooded(site: tuple[str, Runtime]) -> None:
    base, _ = site
    codes = [httpx.get(base + "/faq/search", params={"q": "一時預かり"}).status_code for _ in range(40)]
    assert 429 in codes
    r = httpx.get(base + "/faq/search", params={"q": "一時預かり"})
    assert r.status_code == 429 and r.headers["retry-after"] == "60" and "1分ほど待って" in r.text


def test_the_templates_exist_beside_the_module() -> None:
    import bot.public

    assert (Path(bot.public.__file__).parent / "templates" / "faq_index.html").exists()
