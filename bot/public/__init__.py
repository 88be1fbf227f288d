"""The public FAQ (`/faq`, no login): the knowledge base the bot answers from, as pages a parent can read on a
phone, search with the bot's own matcher, and link to.

- `/faq` lists the topics and their entries (each answer with its contacts, source and the date it was last
  confirmed); `/faq/{entry}` is one entry; `?lang=en` (or another language where answers are written) switches
  the language. Pages carry `schema.org` FAQPage JSON-LD and are cached (rendered once per knowledge base and
  language, `Cache-Control: public` with an ETag).
- `/faq/search?q=` asks the matcher (and a plain keyword scan for short words), is rate-limited per client
  address, and stores nothing: no database row, no log line with the query. A query that reads as a crisis gets
  the emergency numbers first, as in the chat.
- Only entries meant for the public are shown (`open_data: false` marks the chat's own entries); the knowledge
  base holds no personal data.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from bot.deps import RuntimeDep
from handlers.hours import format_date
from knowledge.matcher import Outcome
from knowledge.normalize import clean

if TYPE_CHECKING:
    from knowledge.models import Contact, Entry, KnowledgeBase

HERE = Path(__file__).resolve().parent
MAX_QUERY = 200  # characters of a search query looked at
MAX_RESULTS = 8
SEARCHES_PER_MINUTE = 30  # per client address
CACHE_SECONDS = 300
SERVICE_CONTACT = "concierge"  # the KB contact that names the service (its name is the deployment's)

UI: dict[str, dict[str, str]] = {
    "ja": {
        "title": "子育てのよくある質問",
        "lead": "{service}が、よく寄せられる質問にお答えします。",
        "search": "質問をさがす",
        "search_placeholder": "例：一時預かりの料金",
        "search_button": "検索",
        "results": "「{q}」の検索結果",
        "none": "ぴったりの答えが見つかりませんでした。言葉を変えて検索するか、下の窓口にご相談ください。",
        "ask": "わからないことは子育て支援コンシェルジュにご相談ください（無料）。",
        "contacts": "問い合わせ先",
        "source": "出典",
        "checked": "{date}に確認",
        "hours": "受付",
        "back": "よくある質問の一覧へ",
        "urgent": "今、危険を感じている場合や緊急のときは、すぐに連絡してください。",
        "too_many": "検索が短い時間に集中しています。1分ほど待ってからもう一度お試しください。",
        "topics": "分野",
        "other_languages": "ほかの言語",
        "note": "内容は確認日時点のものです。最新の情報は各窓口でご確認ください。",
        "call": "電話をかける",
        "permalink": "この質問へのリンク",
    },
    "en": {
        "title": "Parenting FAQ",
        "lead": "Answers from {service} to the questions parents ask most.",
        "search": "Search the questions",
        "search_placeholder": "e.g. temporary childcare fees",
        "search_button": "Search",
        "results": "Results for “{q}”",
        "none": "No answer fits well. Try other words, or ask the concierge below.",
        "ask": "For anything else, ask the Parenting Support Concierge (free of charge).",
        "contacts": "Contact",
        "source": "Source",
        "checked": "checked {date}",
        "hours": "Hours",
        "back": "Back to all questions",
        "urgent": "If you feel in danger now or it is an emergency, call at once.",
        "too_many": "Too many searches in a short time. Please wait a minute and try again.",
        "topics": "Topics",
        "other_languages": "Other languages",
        "note": "Information as of the date checked. Please confirm the latest details with each office.",
        "call": "Call",
        "permalink": "Link to this question",
    },
}
LANGUAGE_NAMES = {"ja": "日本語", "en": "English", "easy-ja": "やさしい日本語"}


@dataclass(frozen=True, slots=True)
class Item:
    """One entry as the public pages show it, in one language."""

    id: str
    topic: str
    question: str
    answer: str
    contacts: tuple[dict[str, str], ...]
    source_url: str
    source_host: str  # shown instead of the address, which can be long
    checked: str


class SearchLimit:
    """A sliding window of searches per client address (kept in memory only: addresses, never queries)."""

    def __init__(self, per_minute: int = SEARCHES_PER_MINUTE, max_clients: int = 10_000) -> None:
        self.per_minute = per_minute
        self.max_clients = max_clients
        self._seen: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def allow(self, client: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        with self._lock:
            times = self._seen.pop(client, None) or deque()
            while times and now - times[0] >= 60.0:
                times.popleft()
            allowed = len(times) < self.per_minute
            if allowed:
                times.append(now)
            self._seen[client] = times
            while len(self._seen) > self.max_clients:
                self._seen.popitem(last=False)
            return allowed


class Catalogue:
    """The public view of one loaded knowledge base: items per language, rendered pages cached."""

    def __init__(self, kb: KnowledgeBase) -> None:
        self.kb = kb
        self.env = Environment(
            loader=FileSystemLoader(HERE / "templates"),
            autoescape=select_autoescape(["html"]),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.public = [e for e in kb.entries.values() if e.open_data]
        written = {k for e in self.public for k in e.answer if e.questions.get(k)}
        self.languages = [lang for lang in ("ja", "en", *sorted(written - {"ja", "en"})) if lang in written]
        self._items: dict[str, dict[str, Item]] = {}
        self._pages: dict[tuple[str, ...], tuple[str, str]] = {}
        self._lock = threading.Lock()
        digest = hashlib.sha256()
        for e in sorted(self.public, key=lambda e: e.id):
            digest.update(e.model_dump_json().encode())
        self.version = digest.hexdigest()[:16]

    # ----- content
    def lang_for(self, requested: str | None) -> str:
        return requested if requested in self.languages else "ja"

    def items(self, lang: str) -> dict[str, Item]:
        with self._lock:
            if lang not in self._items:
                self._items[lang] = {e.id: self._item(e, lang) for e in self.public if self._question(e, lang)}
            return self._items[lang]

    @staticmethod
    def _question(entry: Entry, lang: str) -> str | None:
        """The entry's first example question in `lang`, when it is answered in `lang` too."""
        questions = entry.questions.get(lang)
        return questions[0] if questions and lang in entry.answer else None

    def _item(self, entry: Entry, lang: str) -> Item:
        answer = entry.answer[lang]
        contacts = tuple(self._contact(self.kb.contacts[c], lang) for c in entry.contacts if c in self.kb.contacts)
        return Item(
            id=entry.id,
            topic=entry.topic,
            question=self._question(entry, lang) or "",
            answer=answer,
            contacts=contacts,
            source_url=entry.source.url,
            source_host=urlsplit(entry.source.url).hostname or entry.source.url[:60],
            checked=format_date(entry.source.checked, "ja" if lang == "ja" else "en"),
        )

    @staticmethod
    def _contact(contact: Contact, lang: str) -> dict[str, str]:
        def pick(value: dict[str, str] | None) -> str:
            if not value:
                return ""
            return value.get(lang) or value.get("en" if lang != "ja" else "ja") or next(iter(value.values()))

        card = {"name": pick(contact.name), "hours": pick(contact.hours), "url": contact.url or ""}
        if contact.phone:
            card["phone"] = contact.phone
            card["tel"] = "tel:" + contact.phone.replace("-", "")
        return card

    def topics(self, lang: str) -> list[tuple[str, str, list[Item]]]:
        items = self.items(lang)
        out = []
        for topic in self.kb.topics.values():
            members = sorted((i for i in items.values() if i.topic == topic.id), key=lambda i: i.id)
            if members:
                out.append((topic.id, topic.title, members))
        return out

    def json_ld(self, items: list[Item]) -> str:
        data = {
            "@context": "https://schema.org",
            "@type": "FAQPage",
            "mainEntity": [
                {
                    "@type": "Question",
                    "name": i.question,
                    "acceptedAnswer": {"@type": "Answer", "text": i.answer},
                }
                for i in items
            ],
        }
        # `</` must not close the script element early
        return json.dumps(data, ensure_ascii=False).replace("</", "<\\/")

    # ----- pages
    def page(self, key: tuple[str, ...], render: Any) -> tuple[str, str]:
        """(html, etag) of a cacheable page, rendered once."""
        with self._lock:
            cached = self._pages.get(key)
        if cached is None:
            html = render()
            cached = (html, '"' + hashlib.sha256(html.encode()).hexdigest()[:20] + '"')
            with self._lock:
                self._pages[key] = cached
        return cached

    def render(self, template: str, lang: str, *, path: str = "/faq", **values: Any) -> str:
        ui = UI.get(lang, UI["en"])
        others = [(code, LANGUAGE_NAMES.get(code, code)) for code in self.languages if code != lang]
        service = self.kb.contacts.get(SERVICE_CONTACT)
        name = (service.name.get(lang) or service.name.get("ja", "")) if service else ""
        lead = ui["lead"].format(service=name or ui["title"])
        return self.env.get_template(template).render(ui=ui, lang=lang, others=others, path=path, lead=lead, **values)


def _catalogue(request: Request, kb: KnowledgeBase) -> Catalogue:
    state = request.app.state
    catalogue: Catalogue | None = getattr(state, "faq_catalogue", None)
    if catalogue is None or catalogue.kb is not kb:  # a reloaded knowledge base gets a fresh catalogue
        catalogue = Catalogue(kb)
        state.faq_catalogue = catalogue
    return catalogue


def _limit(request: Request) -> SearchLimit:
    state = request.app.state
    limit: SearchLimit | None = getattr(state, "faq_search_limit", None)
    if limit is None:
        limit = state.faq_search_limit = SearchLimit()
    return limit


def _cached(request: Request, html: str, etag: str) -> Response:
    headers = {"ETag": etag, "Cache-Control": f"public, max-age={CACHE_SECONDS}"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return HTMLResponse(html, headers=headers)


router = APIRouter()


@router.get("/faq", response_class=HTMLResponse, include_in_schema=False)
async def faq_index(request: Request, rt: RuntimeDep, lang: str | None = None) -> Response:
    cat = _catalogue(request, rt.kb)
    code = cat.lang_for(lang)

    def render() -> str:
        topics = cat.topics(code)
        items = [i for _, _, members in topics for i in members]
        return cat.render("faq_index.html", code, topics=topics, json_ld=cat.json_ld(items), count=len(items))

    return _cached(request, *cat.page(("index", code), render))


@router.get("/faq/search", response_class=HTMLResponse, include_in_schema=False)
async def faq_search(request: Request, rt: RuntimeDep, q: str = "", lang: str | None = None) -> Response:
    cat = _catalogue(request, rt.kb)
    code = cat.lang_for(lang)
    query = " ".join(q.split())[:MAX_QUERY]
    no_store = {"Cache-Control": "no-store"}
    if not query:
        return HTMLResponse(cat.render("faq_search.html", code, q="", results=[], urgent=None), headers=no_store)
    client = request.client.host if request.client else "unknown"
    if not _limit(request).allow(client):
        html = cat.render("faq_search.html", code, q=query, results=[], urgent=None, too_many=True)
        return HTMLResponse(html, status_code=429, headers={**no_store, "Retry-After": "60"})
    results, urgent = search(cat, rt, query, code)
    return HTMLResponse(cat.render("faq_search.html", code, q=query, results=results, urgent=urgent), headers=no_store)


def search(cat: Catalogue, rt: Any, query: str, lang: str) -> tuple[list[Item], list[dict[str, str]] | None]:
    """The entries for a query: what the matcher would answer or offer, then plain keyword hits; and the
    emergency contacts when the query reads as a crisis."""
    items = cat.items(lang)
    urgent = None
    hit = rt.engine.crisis.detect(query)
    if hit is not None:
        urgent = [cat._contact(rt.kb.contacts[c], lang) for c in hit.category.contacts if c in rt.kb.contacts]
    found: list[str] = []
    result = rt.matcher.match(query)
    if result.outcome != Outcome.FALLBACK:
        found += [c.entry_id for c in result.candidates]
    needle = clean(query)
    if len(needle) >= 2:
        for item in items.values():
            if len(found) >= MAX_RESULTS:
                break
            if item.id not in found and (needle in clean(item.question) or needle in clean(item.answer)):
                found.append(item.id)
    return [items[i] for i in found if i in items][:MAX_RESULTS], urgent


@router.get("/faq/faq.css", include_in_schema=False)
async def faq_css(request: Request) -> Response:
    css = (HERE / "static" / "faq.css").read_bytes()
    etag = '"' + hashlib.sha256(css).hexdigest()[:20] + '"'
    headers = {"ETag": etag, "Cache-Control": "public, max-age=3600"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(css, media_type="text/css", headers=headers)


@router.get("/faq/{entry_id}", response_class=HTMLResponse, include_in_schema=False)
async def faq_entry(request: Request, rt: RuntimeDep, entry_id: str, lang: str | None = None) -> Response:
    cat = _catalogue(request, rt.kb)
    code = cat.lang_for(lang)
    item = cat.items(code).get(entry_id)
    if item is None:
        from bot.hardening import error_response

        return error_response(request, 404)
    title = dict((t, title) for t, title, _ in cat.topics(code)).get(item.topic, "")

    def render() -> str:
        return cat.render(
            "faq_entry.html", code, path=f"/faq/{entry_id}", item=item, topic_title=title, json_ld=cat.json_ld([item])
        )

    return _cached(request, *cat.page(("entry", code, entry_id), render))
