"""/feedback: what the bot could not answer well, for the concierge to improve the FAQ.

Similar questions are grouped (the matcher's normaliser, then rapidfuzz), with their count, the newest first,
and what the bot did (a fallback, a clarify with its candidates, an answer followed by 👎, 「違う」 or a
request for a person). One-click actions: add the question as an example of an entry (refused when it would
match another entry at least as well, above the answer threshold, as `concierge kb check` would), draft a
new entry (checked, then opened in the KB editor to save as a revision; also as a YAML snippet for a
git-kept KB), dismiss.

Roles: concierges and supervisors act, auditors read, assistants have no access. Every view and action is
audited without the question text (record ids and counts only). The rows are anonymous FAQ data: they name
no parent (handlers/feedback.py).

`add_example_question` is the one function that changes the served KB from here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated, Any

import yaml
from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from rapidfuzz import fuzz

from bot.console.core import Authed, ConsoleDep, FormStaffDep, require
from bot.console.views import topic_label
from bot.deps import RuntimeDep
from bot.runtime import Runtime
from knowledge.exchange import entry_dict
from knowledge.matcher import Matcher, Outcome
from knowledge.models import Entry, KnowledgeBase
from knowledge.normalize import Normalizer
from storage import feedback as store
from storage import kb as kbdb
from storage import staff as staffdb
from storage.db import transaction
from storage.models import FaqFeedback
from storage.staff import Role

router = APIRouter()
Reader = Annotated[Authed, Depends(require(Role.CONCIERGE, Role.SUPERVISOR, Role.AUDITOR))]
ACTORS = (Role.CONCIERGE, Role.SUPERVISOR)
Actor = Annotated[Authed, Depends(require(*ACTORS))]
RECORD_TYPE = "faq_feedback"
SIMILAR = 75.0  # rapidfuzz token_sort_ratio over normalised words: questions this alike share a group
MAX_EXAMPLE = 200  # characters of an example question

KINDS = {
    "fallback": "答えられなかった",
    "clarify": "候補を示して聞き返した",
    "unhelpful": "👎 役に立たなかった",
    "wrong": "回答のあと「違う」",
    "person": "回答のあと相談員を希望",
}


class ExampleRefusedError(Exception):
    """The question cannot become an example question: `message` says why, in Japanese, for staff."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def conflicting_entry(kb: KnowledgeBase, matcher: Matcher, *, entry_id: str, question: str) -> tuple[str, float] | None:
    """Another entry that `question`, as an example of `entry_id` in `kb`, would match above the answer
    threshold: among the three best, one that scores at least as well as the question's own entry (the rule of
    `concierge kb check`), or any when the bot would still not answer the question with `entry_id`."""
    config = matcher.config
    ranked = matcher.scores(question)
    own = next((c.score for c in ranked if c.entry_id == entry_id), 0.0)
    result = matcher.match(question)
    answered = result.outcome == Outcome.ANSWER and result.best is not None and result.best.entry_id == entry_id
    for other in ranked[:3]:
        if other.entry_id == entry_id or other.score < config.answer_threshold:
            continue
        if other.score >= own or not answered:
            return other.entry_id, other.score
    return None


def add_example_question(
    rt: Runtime, *, entry_id: str, lang: str, question: str, staff_name: str, staff_id: int | None = None
) -> str:
    """Add `question` to `questions[lang]` of the entry in the live KB, as a revision of the database store
    (or as a pending edit when supervisors require approval); this worker answers with it at once, the others
    at their next poll. Returns "saved" or "pending". Raises ExampleRefusedError (Japanese) when it cannot be
    added."""
    question = " ".join(question.split())
    if not question:
        raise ExampleRefusedError("例文が空です。")
    if len(question) > MAX_EXAMPLE:
        raise ExampleRefusedError(f"例文は{MAX_EXAMPLE}文字までにしてください。")
    if "〔" in question:
        raise ExampleRefusedError(
            "〔名前〕などの伏せ字を含む文は例文にできません。伏せ字を外した言い方に直してください。"
        )
    kb = rt.kb
    entry = kb.entries.get(entry_id)
    if entry is None:
        raise ExampleRefusedError("その項目は知識ベースにありません。")
    if lang not in kb.languages:
        raise ExampleRefusedError("その言語の例文は追加できません。")
    existing = entry.questions.get(lang, [])
    if question in existing:
        raise ExampleRefusedError("この質問はすでにこの項目の例文にあります。")
    updated = entry.model_copy(update={"questions": {**entry.questions, lang: [*existing, question]}})
    trial = kb.model_copy(update={"entries": {**kb.entries, entry_id: updated}})
    matcher = Matcher(trial, Normalizer(trial.synonyms), rt.settings.match.config())
    conflict = conflicting_entry(trial, matcher, entry_id=entry_id, question=question)
    if conflict is not None:
        other, score = conflict
        title = _first_question(trial.entries[other])
        raise ExampleRefusedError(
            f"この質問は別の項目「{title}」（{other}）にも同じくらい強く一致するため（一致の度合い {score:.0f}）、"
            "例文として追加できません。項目を選び直すか、質問を言い換えてください。"
        )
    item = kbdb.Item(kbdb.ENTRY, entry_id, entry_dict(updated))
    comment = "FAQフィードバックから例文を追加"
    with transaction(rt.sessions) as s:
        if kbdb.approval_required(s):
            kbdb.propose(s, item=item, staff_name=staff_name, staff_id=staff_id, comment=comment)
            return "pending"
        kbdb.save(s, items=[item], staff_name=staff_name, staff_id=staff_id, comment=comment)
    rt.live.refresh()
    return "saved"


def _first_question(entry: Entry) -> str:
    qs = entry.questions.get("ja") or next(iter(entry.questions.values()), [entry.id])
    return qs[0]


@dataclass(frozen=True)
class GroupView:
    ids: str  # comma separated, for the forms
    question: str
    lang: str
    count: int
    newest: dt.datetime
    kinds: list[tuple[str, int]]
    entries: list[tuple[str, str]]  # (entry id, its first question): answered with, or offered
    suggested: str | None  # the entry the example form starts with


def grouping(normalizer: Normalizer) -> tuple[Any, Any]:
    """The comparison form of a question and the similarity of two such forms (0-100)."""

    def key(text: str) -> str:
        n = normalizer(text)
        return n.words or n.cleaned

    def similar(a: str, b: str) -> float:
        return float(fuzz.token_sort_ratio(a, b))

    return key, similar


def _groups(rt: Runtime, rows_limit: int = 2000) -> list[GroupView]:
    key, similar = grouping(rt.matcher.normalize)
    with rt.sessions() as s:
        groups = store.list_grouped(s, key=key, similar=similar, threshold=SIMILAR, limit=rows_limit)
    kb = rt.kb
    out = []
    for g in groups:
        kinds: dict[str, int] = {}
        entries: dict[str, None] = {}
        for r in g.rows:
            kinds[r.kind] = kinds.get(r.kind, 0) + 1
            for e in ([r.entry_id] if r.entry_id else []) + [c for c in r.candidates.split(",") if c]:
                if e in kb.entries:
                    entries[e] = None
        newest: FaqFeedback = g.newest
        out.append(
            GroupView(
                ids=",".join(str(i) for i in g.ids),
                question=newest.question,
                lang=newest.lang,
                count=g.count,
                newest=newest.at,
                kinds=[(KINDS.get(k, k), n) for k, n in sorted(kinds.items(), key=lambda kv: -kv[1])],
                entries=[(e, _first_question(kb.entries[e])) for e in entries],
                suggested=next(iter(entries), None),
            )
        )
    return out


def _ids(raw: str) -> list[int]:
    out = []
    for part in raw.split(","):
        part = part.strip()
        if part.isdigit() and len(part) <= 9:
            out.append(int(part))
    return out[:2000]


def _entry_choices(kb: KnowledgeBase) -> list[tuple[str, str]]:
    order = {t: i for i, t in enumerate(kb.topics)}
    entries = sorted(kb.entries.values(), key=lambda e: (order.get(e.topic, len(order)), e.id))
    return [(e.id, f"{topic_label(kb, e.topic)}：{_first_question(e)}") for e in entries]


def _page(
    request: Request, who: Authed, rt: Runtime, console: Any, *, flash: str | None = None, error: str | None = None
) -> HTMLResponse:
    groups = _groups(rt)
    with transaction(rt.sessions) as s:
        staffdb.audit(s, actor=who.name, action="view", record_type=RECORD_TYPE, detail=f"{len(groups)} groups")
    return console.render(  # type: ignore[no-any-return]
        request,
        "feedback.html",
        groups=groups,
        entries=_entry_choices(rt.kb),
        can_act=who.staff.role in ACTORS,
        days=rt.settings.retention.feedback_days,
        flash=flash,
        error=error,
    )


@router.get("/feedback", response_class=HTMLResponse)
def feedback_page(request: Request, who: Reader, rt: RuntimeDep, console: ConsoleDep, done: str = "") -> HTMLResponse:
    flash = {
        "example": "例文として追加しました。次の質問から、この言い方にも答えます。",
        "dismiss": "対応不要にしました。",
        "pending": "例文の追加を承認待ちにしました。スーパーバイザーが承認すると反映されます。",
    }
    return _page(request, who, rt, console, flash=flash.get(done))


@router.post("/feedback/example", response_model=None)
def add_example(
    request: Request,
    who: FormStaffDep,
    rt: RuntimeDep,
    console: ConsoleDep,
    _: Actor,
    ids: Annotated[str, Form(max_length=20000)] = "",
    entry_id: Annotated[str, Form(max_length=64)] = "",
    question: Annotated[str, Form(max_length=2000)] = "",
    lang: Annotated[str, Form(max_length=16)] = "ja",
) -> Response:
    chosen = _ids(ids)
    try:
        outcome = add_example_question(
            rt, entry_id=entry_id, lang=lang, question=question, staff_name=who.name, staff_id=who.staff.id
        )
    except ExampleRefusedError as refused:
        with transaction(rt.sessions) as s:
            staffdb.audit(s, actor=who.name, action="example_refused", record_type=RECORD_TYPE, record_id=entry_id[:64])
        return _page(request, who, rt, console, error=refused.message)
    with transaction(rt.sessions) as s:
        n = store.mark_used(s, ids=chosen, entry_id=entry_id)
        staffdb.audit(
            s, actor=who.name, action="add_example", record_type=RECORD_TYPE, record_id=entry_id, detail=f"{n}件"
        )
    return RedirectResponse(f"/feedback?done={'example' if outcome == 'saved' else 'pending'}", status_code=303)


@router.post("/feedback/dismiss", response_model=None)
def dismiss(who: FormStaffDep, _: Actor, rt: RuntimeDep, ids: Annotated[str, Form(max_length=20000)] = "") -> Response:
    with transaction(rt.sessions) as s:
        n = store.dismiss(s, ids=_ids(ids))
        staffdb.audit(s, actor=who.name, action="dismiss", record_type=RECORD_TYPE, detail=f"{n}件")
    return RedirectResponse("/feedback?done=dismiss", status_code=303)


# ----- a new entry drafted from a group


def _draft_questions(rt: Runtime, chosen: list[int]) -> tuple[list[str], str]:
    with rt.sessions() as s:
        rows = [r for i in chosen if (r := store.get(s, feedback_id=i)) is not None]
    seen: dict[str, None] = {}
    for r in rows:
        if "〔" not in r.question:
            seen.setdefault(r.question, None)
    lang = rows[0].lang if rows else "ja"
    return list(seen)[:8], lang


def entry_yaml(entry: Entry) -> str:
    """One entry as it is written under `entries:` in `knowledge/kb/entries/*.yaml`."""
    data = entry.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
    data["source"] = entry.source.model_dump(mode="json", exclude_none=True)
    for key in ("id", "topic", "questions", "answer"):
        data[key] = data.pop(key, getattr(entry, key))
    order = ["id", "topic", "questions", "answer", "contacts", "source", "related", "handoff", "open_data"]
    ordered = {k: data[k] for k in order if k in data}
    text = yaml.safe_dump([ordered], allow_unicode=True, sort_keys=False, width=1000)
    return "\n".join("  " + line if line else line for line in text.splitlines()) + "\n"


@router.get("/feedback/draft", response_class=HTMLResponse)
def draft_form(request: Request, who: Actor, rt: RuntimeDep, console: ConsoleDep, ids: str = "") -> HTMLResponse:
    chosen = _ids(ids)
    questions, lang = _draft_questions(rt, chosen)
    with transaction(rt.sessions) as s:
        staffdb.audit(s, actor=who.name, action="draft_view", record_type=RECORD_TYPE, detail=f"{len(chosen)}件")
    return console.render(
        request,
        "feedback_draft.html",
        ids=",".join(str(i) for i in chosen),
        form={"id": "", "topic": "", "lang": lang, "questions": "\n".join(questions), "answer": "", "url": ""},
        topics=[(t.id, topic_label(rt.kb, t.id)) for t in rt.kb.topics.values()],
        contacts=[(c.id, c.name.get("ja", c.id)) for c in rt.kb.contacts.values()],
        snippet=None,
        problems=[],
    )


@router.post("/feedback/draft", response_class=HTMLResponse)
def draft_entry(
    request: Request,
    who: FormStaffDep,
    _: Actor,
    rt: RuntimeDep,
    console: ConsoleDep,
    ids: Annotated[str, Form(max_length=20000)] = "",
    entry_id: Annotated[str, Form(max_length=64)] = "",
    topic: Annotated[str, Form(max_length=64)] = "",
    lang: Annotated[str, Form(max_length=16)] = "ja",
    questions: Annotated[str, Form(max_length=5000)] = "",
    answer: Annotated[str, Form(max_length=2000)] = "",
    url: Annotated[str, Form(max_length=500)] = "",
    contact: Annotated[str, Form(max_length=64)] = "",
) -> HTMLResponse:
    """The draft checked like a KB entry (schema, topic, unused id, answer length, conflicts of its questions
    with other entries); when it passes, the YAML snippet to paste into an entries file."""
    kb = rt.kb
    asked = [q.strip() for q in questions.splitlines() if q.strip()]
    problems: list[str] = []
    if entry_id in kb.entries:
        problems.append(f"項目ID「{entry_id}」はすでに使われています。")
    if topic not in kb.topics:
        problems.append("分野を選んでください。")
    if not asked:
        problems.append("質問の例を1つ以上書いてください。")
    if any("〔" in q for q in asked):
        problems.append("〔名前〕などの伏せ字を含む質問は、伏せ字を外した言い方に直してください。")
    if len(answer) > 400:
        problems.append(f"回答は400文字までにしてください（いま{len(answer)}文字）。")
    if contact and contact not in kb.contacts:
        problems.append("その問い合わせ先は知識ベースにありません。")
    entry: Entry | None = None
    if not problems:
        try:
            entry = Entry.model_validate(
                {
                    "id": entry_id,
                    "topic": topic,
                    "questions": {lang: asked},
                    "answer": {lang: answer.strip()},
                    "contacts": [contact] if contact else [],
                    "source": {"url": url.strip(), "checked": dt.date.today()},
                }
            )
        except ValueError as exc:
            problems.append(f"項目の形式に合いません：{_first_error(exc)}")
    if entry is not None:
        trial = kb.model_copy(update={"entries": {**kb.entries, entry.id: entry}})
        matcher = Matcher(trial, Normalizer(trial.synonyms), rt.settings.match.config())
        for q in asked:
            conflict = conflicting_entry(trial, matcher, entry_id=entry.id, question=q)
            if conflict is not None:
                other, score = conflict
                problems.append(
                    f"「{q}」は既存の項目「{_first_question(kb.entries[other])}」（{other}）にも強く一致します"
                    f"（一致の度合い {score:.0f}）。その項目に例文として追加するか、言い換えてください。"
                )
    snippet = entry_yaml(entry) if entry is not None and not problems else None
    with transaction(rt.sessions) as s:
        staffdb.audit(
            s,
            actor=who.name,
            action="draft_entry",
            record_type=RECORD_TYPE,
            record_id=entry_id[:64] or None,
            detail="ok" if snippet else f"{len(problems)} problems",
        )
    return console.render(
        request,
        "feedback_draft.html",
        ids=ids,
        form={"id": entry_id, "topic": topic, "lang": lang, "questions": questions, "answer": answer, "url": url},
        contact=contact,
        topics=[(t.id, topic_label(kb, t.id)) for t in kb.topics.values()],
        contacts=[(c.id, c.name.get("ja", c.id)) for c in kb.contacts.values()],
        snippet=snippet,
        problems=problems,
        today=dt.date.today().isoformat(),
    )


def _first_error(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        return f"{'.'.join(str(p) for p in first.get('loc', ()))}: {first.get('msg', '')}"
    return str(exc)[:200]
