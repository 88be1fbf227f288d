"""Editing the live knowledge base in the console: entries (questions and answers per language, contacts
from the contact list, source and the date confirmed, related entries, `handoff: suggest`), contacts, the
revisions with a diff and rollback (one item, or the whole KB), and the approval of edits when a supervisor
requires it.

On save the checks of `concierge kb check` run on the changed item and its neighbours (knowledge/lint.py):
errors block the save and are said in Japanese, warnings are shown. 「試してみる」 with a draft shows what the
bot answers now and with the draft. A saved change is a revision (storage/kb.py) that every worker answers
with within seconds (bot/live_kb.py). Roles: concierges and supervisors edit; every staff member reads the
revisions; rollbacks are the editors'; approving is for another supervisor than the author. All audited.
"""

from __future__ import annotations

import datetime as dt
import difflib
from dataclasses import dataclass
from typing import Annotated, Any

import anyio
import yaml
from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from bot.console.core import Authed, Console, ConsoleDep, ForbiddenError, NotFoundError, StaffDep, checked_form, require
from bot.console.views import topic_label
from bot.deps import RuntimeDep
from bot.runtime import Runtime
from handlers.types import render_plain
from knowledge.exchange import contact_dict, entry_dict
from knowledge.lint import check_candidate
from knowledge.loader import Problem
from knowledge.models import Contact, Entry, KnowledgeBase
from storage import kb as kbdb
from storage import staff as staffdb
from storage.db import transaction
from storage.staff import Role

router = APIRouter()
RECORD_TYPE = "kb"
EDITORS = (Role.CONCIERGE, Role.SUPERVISOR)
Reader = Annotated[Authed, Depends(require(Role.CONCIERGE, Role.ASSISTANT, Role.SUPERVISOR, Role.AUDITOR))]
MAX_FIELD = 4000
MAX_TRY = 2000
PAGE = 50

CHANGES = {"seed": "初期データ", "edit": "編集", "import": "取り込み", "rollback": "巻き戻し", "approve": "承認"}
KINDS = {"entry": "項目", "contact": "問い合わせ先"}
MESSAGES = {
    "saved": "保存しました。すべての窓口（ワーカー）が数秒のうちにこの内容で答えます。",
    "unchanged": "変更はありませんでした。",
    "pending": "承認待ちにしました。別の統括者が承認すると公開されます。",
    "rolled_back": "巻き戻しました（新しいリビジョンとして記録しました）。",
    "rollback_blocked": (
        "巻き戻すと点検でエラーになるため、巻き戻せませんでした（参照先の項目や問い合わせ先がない、"
        "ほかの項目と質問が重なる、など）。先に参照先や質問を直してから巻き戻してください。"
    ),
    "approved": "承認しました。公開されました。",
    "rejected": "差し戻しました。",
    "approval_blocked": (
        "その後の変更と合わせると点検でエラーになるため、承認できませんでした。編集し直してもらってください。"
    ),
    "already_decided": "この編集はすでに承認または差し戻しされています。",
    "settings_saved": "設定を保存しました。",
    "bad_value": "記録の内容を読み込めませんでした。",
}


def checked_editor(who: Annotated[Authed, Depends(checked_form)]) -> Authed:
    if who.staff.role not in EDITORS:
        raise ForbiddenError("role")
    return who


def editor(who: StaffDep) -> Authed:
    if who.staff.role not in EDITORS:
        raise ForbiddenError("role")
    return who


def checked_supervisor(who: Annotated[Authed, Depends(checked_form)]) -> Authed:
    if who.staff.role != Role.SUPERVISOR:
        raise ForbiddenError("role")
    return who


Editor = Annotated[Authed, Depends(editor)]
FormEditor = Annotated[Authed, Depends(checked_editor)]
FormSupervisor = Annotated[Authed, Depends(checked_supervisor)]


# ----- the checks, said in Japanese


def _lang(code: str) -> str:
    from bot.console import labels

    return str(labels.LANGS.get(code, code))


def problem_text(problem: Problem, kb: KnowledgeBase, own: set[str] | None = None) -> str:
    """One finding of the KB checks as staff read it; `own` are the items being edited."""
    d = problem.detail
    own = own or set()

    def first_question(entry_id: str) -> str:
        entry = kb.entries.get(entry_id)
        qs = (entry.questions.get("ja") or next(iter(entry.questions.values()), [])) if entry else []
        return qs[0] if qs else entry_id

    match problem.code:
        case "conflict":
            q, other, score, own_score = d
            where = problem.where.removeprefix("entry ")
            if where in own or other not in own:
                return (
                    f"この質問「{q}」は別の項目「{first_question(other)}」（{other}）に一致します"
                    f"（一致の度合い {score}、この項目 {own_score}）。質問を言い換えるか、項目をまとめてください。"
                )
            return (
                f"別の項目「{first_question(where)}」（{where}）の質問「{q}」が、この項目に一致するようになります"
                f"（一致の度合い {score}、その項目 {own_score}）。質問を言い換えてください。"
            )
        case "length":
            return (
                f"回答（{_lang(d[0])}）が{d[1]}文字あります。{d[2]}文字以内にしてください（電話の画面で読める長さ）。"
            )
        case "phone":
            return (
                f"回答（{_lang(d[0])}）の電話番号 {d[1]} は、どの問い合わせ先にもありません。"
                "問い合わせ先を選ぶか、番号を直してください。"
            )
        case "no_answer":
            return f"回答（{_lang(d[0])}）がありません。翻訳を書いてください。"
        case "no_questions":
            return f"質問の例（{_lang(d[0])}）がありません。"
        case "few_questions":
            return f"質問の例（{_lang(d[0])}）が{d[1]}件だけです。言い方を変えた例を足すと見つかりやすくなります。"
        case "stale":
            return (
                f"出典を確認してから{d[0]}日たっています（目安 {d[1]}日）。ページを確かめて確認日を更新してください。"
            )
        case "future":
            return f"出典の確認日 {d[0]} が未来の日付です。"
        case "contact":
            return f"問い合わせ先「{d[0]}」がありません。"
        case "related":
            return f"関連する項目「{d[0]}」がありません。"
        case "topic":
            return f"分野「{d[0]}」がありません。"
        case "self_related":
            return "関連する項目に自分自身が入っています。"
        case "repeated":
            return f"質問の例「{d[0]}」が重なっています。"
        case "url":
            return f"出典のURLが長すぎるか、%で符号化されています（{problem.message}）。読めるアドレスにしてください。"
        case "no_name":
            return f"問い合わせ先の名称（{_lang(d[0])}）がありません。"
        case "no_translation":
            field = {"address": "住所", "hours": "受付時間"}.get(d[0], d[0])
            return f"問い合わせ先の{field}（{_lang(d[1])}）がありません。"
        case "unreachable":
            return "問い合わせ先に電話・メール・ウェブページ・住所のどれもありません。"
        case "duplicate":
            return "同じIDがすでにあります。"
        case _:
            return f"{problem.where}: {problem.message}"


@dataclass
class Checked:
    errors: list[str]
    warnings: list[str]


def run_checks(rt: Runtime, candidate: KnowledgeBase, *, entries: set[str], contacts: set[str]) -> Checked:
    settings = rt.settings
    problems = check_candidate(
        candidate,
        entries=entries,
        contacts=contacts,
        max_source_age_days=settings.kb_max_source_age_days,
        config=settings.match.config(),
        languages=tuple(settings.languages),
        matcher=rt.live.build(candidate),
    )
    own = entries | contacts
    errors = [problem_text(p, candidate, own) for p in problems if p.level == "error"]
    warnings = [problem_text(p, candidate, own) for p in problems if p.level != "error"]
    return Checked(list(dict.fromkeys(errors)), list(dict.fromkeys(warnings)))


# ----- the entry form


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _languages(rt: Runtime, entry: Entry | None) -> list[str]:
    langs = list(dict.fromkeys([*rt.settings.languages, "ja", "en"]))
    if entry is not None:
        langs += [code for code in [*entry.answer, *entry.questions] if code not in langs]
    return langs


def entry_from_form(form: FormData, *, entry_id: str, langs: list[str], old: Entry | None) -> dict[str, Any]:
    """The entry as written in YAML from the editor's fields (fields the editor does not show are kept)."""

    def text(name: str) -> str:
        value = form.get(name)
        return value.strip()[:MAX_FIELD] if isinstance(value, str) else ""

    questions = {code: qs for code in langs if (qs := _lines(text(f"q_{code}")))}
    answer = {code: a for code in langs if (a := text(f"a_{code}"))}
    data: dict[str, Any] = entry_dict(old) if old is not None else {}
    data.update(
        id=entry_id,
        topic=text("topic"),
        questions=questions,
        answer=answer,
        contacts=[c for c in form.getlist("contacts") if isinstance(c, str) and c],
        source={"url": text("source_url"), "checked": text("source_checked")},
        related=[r for r in text("related").replace(",", " ").replace("、", " ").split() if r],
    )
    if form.get("handoff"):
        data["handoff"] = "suggest"
    else:
        data.pop("handoff", None)
    if form.get("open_data"):
        data.pop("open_data", None)
    else:
        data["open_data"] = False
    if old is not None and old.mail:
        data["mail"] = {k: v for k, v in old.mail.items() if k in answer}
    for key in ("contacts", "related", "mail"):
        if not data.get(key):
            data.pop(key, None)
    return data


def _schema_errors(exc: ValidationError) -> list[str]:
    names = {"id": "項目ID", "topic": "分野", "answer": "回答", "questions": "質問", "source": "出典"}
    out = []
    for e in exc.errors():
        loc = [str(x) for x in e["loc"]]
        label = names.get(loc[0], loc[0]) if loc else "入力"
        if loc[:2] == ["source", "checked"]:
            out.append("出典の確認日を YYYY-MM-DD の形で入れてください。")
        elif loc[:2] == ["source", "url"]:
            out.append("出典のURLは https:// で始めてください。")
        elif loc[:1] == ["id"]:
            out.append("項目IDは半角の小文字・数字・ハイフンで書いてください（例：nursery-fees）。")
        else:
            out.append(f"{label}：{e['msg']}")
    return out


def _form_context(rt: Runtime, *, entry: Entry | None, data: dict[str, Any] | None = None) -> dict[str, Any]:
    kb = rt.kb
    data = data if data is not None else (entry_dict(entry) if entry is not None else {})
    langs = _languages(rt, entry)
    questions = data.get("questions") or {}
    answers = data.get("answer") or {}
    source = data.get("source") or {}
    return {
        "data": data,
        "langs": [(code, _lang(code)) for code in langs],
        "questions": {code: "\n".join(questions.get(code, [])) for code in langs},
        "answers": {code: answers.get(code, "") for code in langs},
        "source_url": source.get("url", ""),
        "source_checked": str(source.get("checked", "")),
        "related": " ".join(data.get("related") or []),
        "chosen": set(data.get("contacts") or []),
        "topics": [(t.id, topic_label(kb, t.id)) for t in kb.topics.values()],
        "all_contacts": [(c.id, c.name.get("ja", c.id), c.phone or "") for c in kb.contacts.values()],
    }


def _try(rt: Runtime, question: str, candidate: KnowledgeBase | None) -> dict[str, Any]:
    """What the bot answers to `question` now, and with the draft (nothing stored)."""

    def judge() -> dict[str, Any]:
        decision = rt.engine.classify(question)
        replies = rt.engine.replies_for(decision, channel="line")
        from bot.console.kb import ACTIONS

        return {
            "action": ACTIONS.get(decision.action, decision.action),
            "entry": decision.entry_id,
            "score": decision.score,
            "replies": [render_plain(r) for r in replies],
            "buttons": [c.label for r in replies for c in r.choices],
        }

    now = judge()
    draft = None
    if candidate is not None:
        with rt.engine.using(rt.engine.prepare(candidate, rt.live.build(candidate))):
            draft = judge()
    return {"now": now, "draft": draft}


def _candidate(kb: KnowledgeBase, entry: Entry) -> KnowledgeBase:
    return kb.model_copy(update={"entries": {**kb.entries, entry.id: entry}})


@router.get("/kb/new", response_class=HTMLResponse)
def new_entry(request: Request, who: Editor, rt: RuntimeDep, console: ConsoleDep) -> HTMLResponse:
    return console.render(
        request,
        "kb_edit.html",
        entry=None,
        is_new=True,
        errors=[],
        warnings=[],
        trial=None,
        try_q="",
        comment="",
        **_form_context(rt, entry=None, data={"source": {"checked": dt.date.today().isoformat()}}),
    )


@router.get("/kb/{entry_id}/edit", response_class=HTMLResponse)
def edit_entry(request: Request, who: Editor, rt: RuntimeDep, console: ConsoleDep, entry_id: str) -> HTMLResponse:
    entry = rt.kb.entries.get(entry_id)
    if entry is None:
        raise NotFoundError()
    return console.render(
        request,
        "kb_edit.html",
        entry=entry,
        is_new=False,
        errors=[],
        warnings=[],
        trial=None,
        try_q="",
        comment="",
        **_form_context(rt, entry=entry),
    )


@router.post("/kb/new", response_class=HTMLResponse)
async def create_entry(request: Request, who: FormEditor, rt: RuntimeDep, console: ConsoleDep) -> Response:
    form = await request.form()
    value = form.get("entry_id")
    entry_id = value.strip() if isinstance(value, str) else ""
    return await _submit(request, who, rt, console, form, entry_id=entry_id, old=None)


@router.post("/kb/{entry_id}/edit", response_class=HTMLResponse)
async def save_entry(request: Request, who: FormEditor, rt: RuntimeDep, console: ConsoleDep, entry_id: str) -> Response:
    old = rt.kb.entries.get(entry_id)
    if old is None:
        raise NotFoundError()
    return await _submit(request, who, rt, console, await request.form(), entry_id=entry_id, old=old)


async def _submit(
    request: Request, who: Authed, rt: Runtime, console: Console, form: FormData, *, entry_id: str, old: Entry | None
) -> Response:
    action = form.get("action")
    comment_value = form.get("comment")
    comment = comment_value.strip()[:500] if isinstance(comment_value, str) else ""
    try_value = form.get("try_q")
    try_q = try_value.strip()[:MAX_TRY] if isinstance(try_value, str) else ""
    kb = rt.kb
    data = entry_from_form(form, entry_id=entry_id, langs=_languages(rt, old), old=old)
    errors: list[str] = []
    warnings: list[str] = []
    entry = None
    if old is None and entry_id in kb.entries:
        errors.append(f"項目ID「{entry_id}」はすでにあります。別のIDにしてください。")
    try:
        entry = Entry.model_validate(data)
    except ValidationError as exc:
        errors += _schema_errors(exc)
    trial = None
    if entry is not None and not errors:
        candidate = _candidate(kb, entry)
        checked = await anyio.to_thread.run_sync(lambda: run_checks(rt, candidate, entries={entry.id}, contacts=set()))
        errors, warnings = checked.errors, checked.warnings
        if action == "try" and try_q:
            trial = await anyio.to_thread.run_sync(lambda: _try(rt, try_q, candidate))
    if action == "save" and entry is not None and not errors:
        if entry == old:
            return RedirectResponse(f"/kb/{entry.id}?msg=unchanged", status_code=303)
        item = kbdb.Item(kbdb.ENTRY, entry.id, entry_dict(entry))
        msg = await anyio.to_thread.run_sync(lambda: _store(rt, who, item, comment))
        return RedirectResponse(
            f"/kb/{entry.id}?msg={msg}" if msg != "pending" or old else "/kb/pending?msg=pending", status_code=303
        )
    status = 422 if errors and action == "save" else 200
    return console.render(
        request,
        "kb_edit.html",
        status_code=status,
        entry=old,
        is_new=old is None,
        new_id=entry_id,
        errors=errors,
        warnings=warnings,
        trial=trial,
        try_q=try_q,
        comment=comment,
        checked_ok=action == "check" and not errors,
        **_form_context(rt, entry=old, data=data),
    )


def _store(rt: Runtime, who: Authed, item: kbdb.Item, comment: str) -> str:
    """Save as a revision (or as a pending edit when approval is required); this worker answers with it at
    once, the others at their next poll."""
    with transaction(rt.sessions) as s:
        if kbdb.approval_required(s):
            row = kbdb.propose(s, item=item, staff_name=who.name, staff_id=who.staff.id, comment=comment)
            staffdb.audit(
                s,
                actor=who.name,
                action="propose",
                record_type=RECORD_TYPE,
                record_id=f"{item.kind}:{item.item_id}",
                detail=f"pending edit {row.id}",
            )
            return "pending"
        revision = kbdb.save(s, items=[item], staff_name=who.name, staff_id=who.staff.id, comment=comment)
        if revision is None:
            return "unchanged"
        staffdb.audit(
            s,
            actor=who.name,
            action="edit",
            record_type=RECORD_TYPE,
            record_id=f"{item.kind}:{item.item_id}",
            detail=f"revision {revision.id}",
        )
    rt.live.refresh()
    return "saved"


# ----- contacts


def contact_from_form(form: FormData, *, contact_id: str, old: Contact | None) -> dict[str, Any]:
    def text(name: str) -> str:
        value = form.get(name)
        return value.strip()[:MAX_FIELD] if isinstance(value, str) else ""

    def localized(prefix: str) -> dict[str, str] | None:
        values = {code: v for code in ("ja", "en") if (v := text(f"{prefix}_{code}"))}
        if old is not None:
            kept = getattr(old, prefix) or {}
            values.update({k: v for k, v in kept.items() if k not in ("ja", "en")})
        return values or None

    data: dict[str, Any] = {"id": contact_id, "name": localized("name") or {}}
    for key in ("phone", "fax", "email", "url"):
        if value := text(key):
            data[key] = value
    for key in ("address", "hours"):
        if (value_l := localized(key)) is not None:
            data[key] = value_l
    return data


@router.get("/kb/contacts", response_class=HTMLResponse)
def contacts_page(
    request: Request, who: Reader, rt: RuntimeDep, console: ConsoleDep, msg: str | None = None
) -> HTMLResponse:
    kb = rt.kb
    used: dict[str, int] = {}
    for e in kb.entries.values():
        for c in e.contacts:
            used[c] = used.get(c, 0) + 1
    rows = [(c, used.get(c.id, 0)) for c in kb.contacts.values()]
    return console.render(
        request, "kb_contacts.html", rows=rows, can_edit=who.staff.role in EDITORS, flash=MESSAGES.get(msg or "")
    )


def _contact_form(
    request: Request, console: Console, contact: Contact | None, data: dict[str, Any], **extra: Any
) -> HTMLResponse:
    def loc(key: str, code: str) -> str:
        value = data.get(key) or {}
        return str(value.get(code, "")) if isinstance(value, dict) else ""

    fields = {f"{k}_{code}": loc(k, code) for k in ("name", "address", "hours") for code in ("ja", "en")}
    fields |= {k: str(data.get(k) or "") for k in ("phone", "fax", "email", "url")}
    extra.setdefault("errors", [])
    extra.setdefault("warnings", [])
    return console.render(
        request, "kb_contact.html", contact=contact, fields=fields, contact_id=data.get("id", ""), **extra
    )


@router.get("/kb/contacts/new", response_class=HTMLResponse)
def new_contact(request: Request, who: Editor, console: ConsoleDep) -> HTMLResponse:
    return _contact_form(request, console, None, {}, comment="")


@router.get("/kb/contacts/{contact_id}", response_class=HTMLResponse)
def edit_contact(request: Request, who: Editor, rt: RuntimeDep, console: ConsoleDep, contact_id: str) -> HTMLResponse:
    contact = rt.kb.contacts.get(contact_id)
    if contact is None:
        raise NotFoundError()
    return _contact_form(request, console, contact, contact_dict(contact), comment="")


@router.post("/kb/contacts/{contact_id}", response_class=HTMLResponse)
async def save_contact(
    request: Request, who: FormEditor, rt: RuntimeDep, console: ConsoleDep, contact_id: str
) -> Response:
    form = await request.form()
    kb = rt.kb
    old = kb.contacts.get(contact_id)
    if contact_id == "new":
        value = form.get("contact_id")
        contact_id = value.strip() if isinstance(value, str) else ""
        if contact_id in kb.contacts:
            data = contact_from_form(form, contact_id=contact_id, old=None)
            return _contact_form(
                request, console, None, data, errors=["このIDの問い合わせ先はすでにあります。"], comment=""
            )
    elif old is None:
        raise NotFoundError()
    comment_value = form.get("comment")
    comment = comment_value.strip()[:500] if isinstance(comment_value, str) else ""
    data = contact_from_form(form, contact_id=contact_id, old=old)
    try:
        contact = Contact.model_validate(data)
    except ValidationError as exc:
        errors = [f"{'.'.join(str(x) for x in e['loc'])}：{e['msg']}" for e in exc.errors()]
        return _contact_form(request, console, old, data, errors=errors, comment=comment, status_code=422)
    candidate = kb.model_copy(update={"contacts": {**kb.contacts, contact.id: contact}})
    checked = await anyio.to_thread.run_sync(lambda: run_checks(rt, candidate, entries=set(), contacts={contact.id}))
    if checked.errors:
        return _contact_form(
            request,
            console,
            old,
            data,
            errors=checked.errors,
            warnings=checked.warnings,
            comment=comment,
            status_code=422,
        )
    if contact == old:
        return RedirectResponse("/kb/contacts?msg=unchanged", status_code=303)
    item = kbdb.Item(kbdb.CONTACT, contact.id, contact_dict(contact))
    msg = await anyio.to_thread.run_sync(lambda: _store(rt, who, item, comment))
    return RedirectResponse(f"/kb/contacts?msg={msg}", status_code=303)


# ----- revisions, diff, rollback


def _yaml(text: str | None) -> list[str]:
    data = kbdb.loads(text)
    if data is None:
        return []
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=1000).splitlines()


def diff_lines(before: str | None, after: str | None) -> list[tuple[str, str]]:
    """(kind, line) of a unified diff of the YAML of before and after: add, del, hunk or same."""
    out: list[tuple[str, str]] = []
    for line in difflib.unified_diff(_yaml(before), _yaml(after), "前", "後", lineterm="", n=2):
        if line.startswith(("---", "+++")):
            continue
        kind = (
            "hunk"
            if line.startswith("@@")
            else "add"
            if line.startswith("+")
            else "del"
            if line.startswith("-")
            else "same"
        )
        out.append((kind, line))
    return out


@router.get("/kb/revisions", response_class=HTMLResponse)
def revisions_page(
    request: Request,
    who: Reader,
    rt: RuntimeDep,
    console: ConsoleDep,
    before: Annotated[int | None, Query(ge=1)] = None,
    msg: str | None = None,
) -> HTMLResponse:
    with transaction(rt.sessions) as s:
        rows = kbdb.revisions(s, limit=PAGE, before_id=before)
        counts = {r.id: len(kbdb.versions(s, revision_id=r.id or 0)) for r in rows}
        required = kbdb.approval_required(s)
        waiting = len(kbdb.pending(s))
    older = rows[-1].id if len(rows) == PAGE else None
    return console.render(
        request,
        "kb_revisions.html",
        rows=rows,
        counts=counts,
        older=older,
        live=rt.live.revision,
        changes=CHANGES,
        can_edit=who.staff.role in EDITORS,
        is_supervisor=who.staff.role == Role.SUPERVISOR,
        required=required,
        waiting=waiting,
        msg=msg,
        messages=MESSAGES,
    )


@router.get("/kb/revisions/{revision_id}", response_class=HTMLResponse)
def revision_page(request: Request, who: Reader, rt: RuntimeDep, console: ConsoleDep, revision_id: int) -> HTMLResponse:
    with transaction(rt.sessions) as s:
        revision = kbdb.get_revision(s, revision_id=revision_id)
        if revision is None:
            raise NotFoundError()
        items = [
            (
                v.kind,
                v.item_id,
                KINDS.get(v.kind, v.kind),
                diff_lines(v.before, v.after),
                v.before is None,
                v.after is None,
            )
            for v in kbdb.versions(s, revision_id=revision_id)
        ]
    return console.render(
        request,
        "kb_revision.html",
        revision=revision,
        items=items,
        changes=CHANGES,
        can_edit=who.staff.role in EDITORS,
        live=rt.live.revision,
    )


@router.get("/kb/{entry_id}/history", response_class=HTMLResponse)
def entry_history(request: Request, who: Reader, rt: RuntimeDep, console: ConsoleDep, entry_id: str) -> HTMLResponse:
    with transaction(rt.sessions) as s:
        history = kbdb.item_history(s, kind=kbdb.ENTRY, item_id=entry_id)
    if not history:
        raise NotFoundError()
    rows = [(r, diff_lines(v.before, v.after)) for r, v in history]
    return console.render(
        request, "kb_history.html", entry_id=entry_id, rows=rows, changes=CHANGES, can_edit=who.staff.role in EDITORS
    )


def _rollback(rt: Runtime, who: Authed, to_revision: int, kind: str | None, item_id: str | None, comment: str) -> str:
    with transaction(rt.sessions) as s:
        if kbdb.get_revision(s, revision_id=to_revision) is None:
            raise NotFoundError()
        current = rt.kb
        target = kbdb.state_at(s, revision_id=to_revision, kind=kind, item_id=item_id)
        # The KB as it would be after the rollback must load and pass the checks' errors, as any edit.
        entries = dict(current.entries)
        contacts = dict(current.contacts)
        keys = set(target) | ({(kind, item_id)} if kind and item_id else set())
        if kind is None:
            keys |= {(kbdb.ENTRY, e) for e in current.entries} | {(kbdb.CONTACT, c) for c in current.contacts}
        try:
            for k, i in keys:
                data = target.get((k, i))
                store: dict[str, Any] = entries if k == kbdb.ENTRY else contacts
                if data is None:
                    store.pop(i, None)
                else:
                    store[i] = Entry.model_validate(data) if k == kbdb.ENTRY else Contact.model_validate(data)
        except ValidationError:
            return "bad_value"
        candidate = current.model_copy(update={"entries": entries, "contacts": contacts})
        # The checks' errors on what differs (the topics or the limits may have changed since that revision).
        changed_entries = {i for i, e in entries.items() if current.entries.get(i) != e}
        changed_contacts = {i for i, c in contacts.items() if current.contacts.get(i) != c}
        checked = run_checks(rt, candidate, entries=changed_entries, contacts=changed_contacts)
        dangling = [e.id for e in entries.values() if set(e.contacts) - set(contacts) or set(e.related) - set(entries)]
        if checked.errors or dangling:
            return "rollback_blocked"
        revision = kbdb.rollback(
            s,
            to_revision=to_revision,
            staff_name=who.name,
            staff_id=who.staff.id,
            comment=comment,
            kind=kind,
            item_id=item_id,
        )
        if revision is None:
            return "unchanged"
        what = f"{kind}:{item_id}" if kind else "all"
        staffdb.audit(
            s,
            actor=who.name,
            action="rollback",
            record_type=RECORD_TYPE,
            record_id=what,
            detail=f"to revision {to_revision}: revision {revision.id}",
        )
    rt.live.refresh()
    return "rolled_back"


@router.post("/kb/revisions/{revision_id}/rollback")
async def rollback_all(
    who: FormEditor, rt: RuntimeDep, revision_id: int, comment: Annotated[str, Form(max_length=500)] = ""
) -> RedirectResponse:
    msg = await anyio.to_thread.run_sync(lambda: _rollback(rt, who, revision_id, None, None, comment.strip()))
    return RedirectResponse(f"/kb/revisions?msg={msg}", status_code=303)


@router.post("/kb/revisions/{revision_id}/rollback/{kind}/{item_id}")
async def rollback_item(
    who: FormEditor,
    rt: RuntimeDep,
    revision_id: int,
    kind: str,
    item_id: str,
    comment: Annotated[str, Form(max_length=500)] = "",
) -> RedirectResponse:
    if kind not in kbdb.KINDS:
        raise NotFoundError()
    msg = await anyio.to_thread.run_sync(lambda: _rollback(rt, who, revision_id, kind, item_id, comment.strip()))
    return RedirectResponse(f"/kb/revisions?msg={msg}", status_code=303)


# ----- approval


@router.post("/kb/settings")
def kb_settings(who: FormSupervisor, rt: RuntimeDep, require_approval: Annotated[str, Form()] = "") -> RedirectResponse:
    with transaction(rt.sessions) as s:
        kbdb.set_approval_required(s, required=bool(require_approval), staff_name=who.name)
        staffdb.audit(
            s,
            actor=who.name,
            action="settings",
            record_type=RECORD_TYPE,
            detail=f"approval required: {'yes' if require_approval else 'no'}",
        )
    return RedirectResponse("/kb/revisions?msg=settings_saved", status_code=303)


@router.get("/kb/pending", response_class=HTMLResponse)
def pending_page(
    request: Request, who: Reader, rt: RuntimeDep, console: ConsoleDep, msg: str | None = None
) -> HTMLResponse:
    with transaction(rt.sessions) as s:
        rows = kbdb.pending(s)
        current = {(r.kind, r.item_id): kbdb.get_item(s, kind=r.kind, item_id=r.item_id) for r in rows}
    items = [(r, KINDS.get(r.kind, r.kind), diff_lines(kbdb.dumps(current[(r.kind, r.item_id)]), r.data)) for r in rows]
    return console.render(
        request,
        "kb_pending.html",
        items=items,
        is_supervisor=who.staff.role == Role.SUPERVISOR,
        me_name=who.name,
        msg=msg,
        messages=MESSAGES,
    )


@router.post("/kb/pending/{pending_id}/{decision}")
async def decide_pending(who: FormSupervisor, rt: RuntimeDep, pending_id: int, decision: str) -> RedirectResponse:
    if decision not in ("approve", "reject"):
        raise NotFoundError()

    def run() -> str:
        with transaction(rt.sessions) as s:
            row = kbdb.get_pending(s, pending_id=pending_id)
            if row is None:
                raise NotFoundError()
            if row.staff_name == who.name:
                raise ForbiddenError("own edit")
            if row.status != kbdb.PendingStatus.PENDING:
                return "already_decided"
            if decision == "approve":
                data = kbdb.loads(row.data) or {}
                current = rt.kb
                try:
                    if row.kind == kbdb.ENTRY:
                        entry = Entry.model_validate(data)
                        candidate = _candidate(current, entry)
                        checked = run_checks(rt, candidate, entries={entry.id}, contacts=set())
                    else:
                        contact = Contact.model_validate(data)
                        candidate = current.model_copy(update={"contacts": {**current.contacts, contact.id: contact}})
                        checked = run_checks(rt, candidate, entries=set(), contacts={contact.id})
                except ValidationError:
                    return "bad_value"
                if checked.errors:  # the KB changed since the edit was written
                    return "approval_blocked"
            revision = kbdb.decide(
                s, proposal=row, approve=decision == "approve", staff_name=who.name, staff_id=who.staff.id
            )
            staffdb.audit(
                s,
                actor=who.name,
                action=decision,
                record_type=RECORD_TYPE,
                record_id=f"{row.kind}:{row.item_id}",
                detail=f"pending edit {row.id}" + (f": revision {revision.id}" if revision else ""),
            )
        rt.live.refresh()
        return "approved" if decision == "approve" else "rejected"

    msg = await anyio.to_thread.run_sync(run)
    return RedirectResponse(f"/kb/pending?msg={msg}", status_code=303)
