"""/notices: staff notices to subscribed parents (storage/notices.py holds the workflow, scheduler/notices.py
the sending schedule). Compose → preview (the text as a parent sees it, recipients by channel, LINE messages
against the month's quota) → submit → a supervisor approves → scheduled; cancel at any point before it is sent.

Roles:
- concierge: composes, edits and submits their own notices, cancels their own; reads all of them;
- supervisor: everything, and approves notices written by someone else (nobody approves their own);
- auditor: reads the list and the notice pages, changes nothing;
- assistant: no access (notices are not case work).

Approval is required unless the deployment turns it off (`NOTICES__REQUIRE_APPROVAL=false`, read defensively
below); then the author chooses per notice. Every view, create, edit, submit, approve, send and cancel is
audited under record type "notice"; no text and no parent's data goes to the audit log or the logs. A notice
page names recipients only by channel and internal contact number.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, BackgroundTasks, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from bot.console import labels
from bot.console.bounds import in_years
from bot.console.core import Authed, ConsoleDep, ForbiddenError, NotFoundError, StaffDep, checked_form
from bot.console.views import staff_names
from bot.deps import RuntimeDep
from bot.runtime import Runtime
from handlers import channels
from handlers import notices as sending
from handlers.notices import Quota, resume
from handlers.subscriptions import TOPIC_LABELS
from scheduler import notices as jobs
from scheduler.core import Cron
from scheduler.notices import JobWriter
from scheduler.service import SchedulerService
from storage import notice_runs
from storage import notices as noticedb
from storage import staff as staffdb
from storage.db import transaction
from storage.lifecycle import NOTICE_TOPICS
from storage.models import utcnow
from storage.notices import (
    Misfire,
    Notice,
    NoticeError,
    NoticeKind,
    NoticeStatus,
)
from storage.staff import Role

router = APIRouter()
RECORD_TYPE = "notice"
DELIVERY_PAGE = 100
MAX_TEXT = 5000

TOPICS = TOPIC_LABELS["ja"]
STATUSES = {
    "draft": "下書き",
    "awaiting_approval": "承認待ち",
    "scheduled": "配信予定",
    "sending": "送信中",
    "sent": "送信済み",
    "cancelled": "取り消し",
    "missed": "送らず（予定時刻を過ぎた）",
}
KINDS = {"once": "1回", "recurring": "定期（繰り返し）", "age": "月齢に合わせて"}
MISFIRE = {"send_late": "遅れても送る", "skip": "その回は送らない"}
CHANNELS = labels.NOTICE_CHANNELS
LANGS = {"ja": "日本語", "en": "英語"}
DELIVERY = {"pending": "送信待ち", "sent": "送信済み", "failed": "失敗", "skipped": "送らず"}
REASONS = {
    "unsubscribed": "配信停止済み",
    "topic_off": "この分野を受け取らない設定",
    "channel_off": "この経路は現在送信できません",
}
RUN_STATUSES = {"planning": "準備中", "sending": "送信中", "done": "完了"}

MESSAGES = {
    "created": "下書きを保存しました。内容と配信先の人数を確認して「送信を申請」してください。",
    "saved": "下書きを更新しました。",
    "submitted": "承認を申請しました。管理者の承認後に配信されます。",
    "scheduled": "配信を予約しました。",
    "approved": "承認しました。配信を予約しました。",
    "cancelled": "お知らせの配信を取り消しました。",
    "resent": "届かなかった宛先にもう一度送っています。結果はこの画面の「送信の記録」に出ます。",
}


def reason_text(reason: str | None) -> str:
    """A delivery's reason in Japanese: skip reasons by name, failures by status code ("429:gave_up": retried
    until the attempts ran out)."""
    if not reason:
        return ""
    code, _, gave_up = reason.partition(":")
    text = REASONS.get(code, f"エラー {code}")
    return text + ("（再試行の上限に達しました）" if gave_up == "gave_up" else "")


# ----- roles


def reader(who: StaffDep) -> Authed:
    if who.staff.role == Role.ASSISTANT:
        raise ForbiddenError("notices")
    return who


def composer(who: StaffDep) -> Authed:
    if who.staff.role not in (Role.CONCIERGE, Role.SUPERVISOR):
        raise ForbiddenError("notices")
    return who


def composer_form(who: Annotated[Authed, Depends(checked_form)]) -> Authed:
    return composer(who)


Reader = Annotated[Authed, Depends(reader)]
Composer = Annotated[Authed, Depends(composer)]
ComposerForm = Annotated[Authed, Depends(composer_form)]


def is_editor(who: Authed, notice: Notice) -> bool:
    """The author (a concierge) or any supervisor: who may edit, submit or cancel this notice."""
    return who.staff.role == Role.SUPERVISOR or (who.staff.role == Role.CONCIERGE and notice.created_by == who.name)


def may_edit(who: Authed, notice: Notice) -> bool:
    """An editor, while the notice is a draft or awaiting approval."""
    return notice.status in noticedb.EDITABLE_STATUSES and is_editor(who, notice)


def may_approve(who: Authed, notice: Notice) -> bool:
    return (
        who.staff.role == Role.SUPERVISOR
        and notice.status == NoticeStatus.AWAITING_APPROVAL
        and not noticedb.wrote(notice, who.name)
    )


def may_cancel(who: Authed, notice: Notice) -> bool:
    return notice.status not in (NoticeStatus.SENT, NoticeStatus.CANCELLED) and is_editor(who, notice)


def approval_required(rt: Runtime) -> bool:
    """Deployment-wide (NOTICES__REQUIRE_APPROVAL): when false, each notice's own checkbox decides."""
    return rt.settings.notices.require_approval


# ----- the compose form


@dataclass
class Draft:
    """The compose form as typed (strings), so a refused form comes back as it was."""

    title: str = ""
    text_ja: str = ""
    text_en: str = ""
    topic: str = "general"
    channel: str = ""
    lang: str = ""
    age_min: str = ""
    age_max: str = ""
    kind: str = NoticeKind.ONCE.value
    when: str = "now"  # once: now | at
    send_at: str = ""  # datetime-local, office time zone
    cron: str = ""
    repeat: str = "weekly"  # recurring: weekly | monthly (the picker) or cron (詳細)
    weekdays: tuple[str, ...] = ()  # cron day-of-week numbers, 0 = Sunday
    monthday: str = "1"
    at_time: str = "10:00"
    offset_months: str = ""
    offset_days: str = ""
    misfire: str = Misfire.SEND_LATE.value
    requires_approval: bool = True
    errors: list[str] = field(default_factory=list)

    @classmethod
    def from_form(cls, form: Any) -> Draft:
        def get(name: str) -> str:
            value = form.get(name)
            return value.strip() if isinstance(value, str) else ""

        return cls(
            title=get("title"),
            text_ja=get("text_ja"),
            text_en=get("text_en"),
            topic=get("topic"),
            channel=get("channel"),
            lang=get("lang"),
            age_min=get("age_min"),
            age_max=get("age_max"),
            kind=get("kind") or NoticeKind.ONCE.value,
            when=get("when") or "now",
            send_at=get("send_at"),
            cron=" ".join(get("cron").split()),
            repeat=get("repeat") or ("cron" if get("cron") else "weekly"),  # a form with only cron: cron
            weekdays=tuple(v for v in form.getlist("weekday") if isinstance(v, str))
            if hasattr(form, "getlist")
            else (),
            monthday=get("monthday") or "1",
            at_time=get("at_time") or "10:00",
            offset_months=get("offset_months"),
            offset_days=get("offset_days"),
            misfire=get("misfire") or Misfire.SEND_LATE.value,
            requires_approval=form.get("requires_approval") is not None,
        )

    @classmethod
    def from_notice(cls, notice: Notice, tz: dt.tzinfo) -> Draft:
        def num(v: int | None) -> str:
            return "" if v is None else str(v)

        return cls(
            title=notice.title,
            text_ja=notice.texts.get("ja", ""),
            text_en=notice.texts.get("en", ""),
            topic=notice.topic,
            channel=notice.channel or "",
            lang=notice.lang or "",
            age_min=num(notice.age_min_months),
            age_max=num(notice.age_max_months),
            kind=notice.kind,
            when="at" if notice.send_at is not None else "now",
            send_at=f"{_aware(notice.send_at).astimezone(tz):%Y-%m-%dT%H:%M}" if notice.send_at else "",
            cron=notice.cron or "",
            **picker_fields(notice.cron or ""),
            offset_months=num(notice.age_offset_months),
            offset_days=num(notice.age_offset_days),
            misfire=notice.misfire,
            requires_approval=notice.requires_approval,
        )

    def values(self, *, tz: dt.tzinfo, now: dt.datetime, forced_approval: bool) -> dict[str, Any] | None:
        """The storage fields, or None with `errors` filled (Japanese, for the form)."""
        err = self.errors
        if not self.title:
            err.append("件名（職員用）を入力してください。")
        if not self.text_ja:
            err.append("日本語の本文を入力してください。")
        if len(self.text_ja) > MAX_TEXT or len(self.text_en) > MAX_TEXT:
            err.append("本文は5,000文字までにしてください。")
        if self.topic not in NOTICE_TOPICS:
            err.append("お知らせの分野を選んでください。")
        if self.channel not in ("", *CHANNELS):
            err.append("配信経路の指定が正しくありません。")
        if self.lang not in ("", *LANGS):
            err.append("言語の指定が正しくありません。")
        if self.misfire not in tuple(Misfire):
            err.append("送れなかったときの扱いを選んでください。")
        age_min, age_max = _int(self.age_min, err, "月齢（から）"), _int(self.age_max, err, "月齢（まで）")
        if age_min is not None and age_max is not None and age_min > age_max:
            err.append("月齢の範囲は「から」を「まで」以下にしてください。")
        out: dict[str, Any] = {
            "title": self.title[:200],
            "texts": {"ja": self.text_ja, **({"en": self.text_en} if self.text_en else {})},
            "topic": self.topic,
            "channel": self.channel or None,
            "lang": self.lang or None,
            "age_min_months": age_min,
            "age_max_months": age_max,
            "kind": self.kind,
            "send_at": None,
            "cron": None,
            "age_offset_months": None,
            "age_offset_days": None,
            "misfire": self.misfire,
            "requires_approval": forced_approval or self.requires_approval,
        }
        if self.kind == NoticeKind.ONCE:
            if self.when == "at":
                at = _local_datetime(self.send_at, tz)
                if at is None:
                    err.append("送信日時を正しく入力してください。")
                elif at <= now:
                    err.append("送信日時は未来の日時にしてください（今すぐ送る場合は「今すぐ」を選んでください）。")
                out["send_at"] = at
            else:
                out["send_at"] = now  # "now": refreshed when it is submitted or approved
        elif self.kind == NoticeKind.RECURRING:
            if self.repeat in ("weekly", "monthly"):
                built = picked_cron(self.repeat, self.weekdays, self.monthday, self.at_time)
                if built is None:
                    err.append(
                        "繰り返しの指定を確認してください（毎週なら曜日を1つ以上、毎月なら1〜28日、時刻は「10:00」の形）。"
                    )
                    return None
                self.cron = built
            if not _valid_cron(self.cron, tz):
                err.append("繰り返しの指定（cron形式：分 時 日 月 曜日）が正しくありません。")
            out["cron"] = self.cron
        elif self.kind == NoticeKind.AGE:
            months = _int(self.offset_months, err, "誕生月からの月数")
            days = _int(self.offset_days, err, "日数")
            if months is None and days is None:
                err.append("誕生月から何か月・何日後に送るかを入力してください。")
            out["age_offset_months"], out["age_offset_days"] = months, days
        else:
            err.append("配信のしかたを選んでください。")
        return None if err else out


WEEKDAY_NAMES = {"1": "月", "2": "火", "3": "水", "4": "木", "5": "金", "6": "土", "0": "日"}
_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
_SIMPLE_CRON = re.compile(r"^(\d{1,2}) (\d{1,2}) (\*|\d{1,2}) \* (\*|[0-6](?:,[0-6])*)$")


def picked_cron(repeat: str, weekdays: tuple[str, ...], monthday: str, at_time: str) -> str | None:
    """The crontab for a schedule chosen with the picker (毎週 on these days / 毎月 on this day, at a time)."""
    found = _TIME.match(at_time.strip())
    if found is None:
        return None
    hour, minute = int(found.group(1)), int(found.group(2))
    if repeat == "weekly":
        days = sorted({d for d in weekdays if d in WEEKDAY_NAMES}, key=lambda d: (int(d) + 6) % 7)
        return f"{minute} {hour} * * {','.join(days)}" if days else None
    if repeat == "monthly" and monthday.isdigit() and 1 <= int(monthday) <= 28:
        return f"{minute} {hour} {int(monthday)} * *"
    return None


def picker_fields(cron: str) -> dict[str, Any]:
    """The picker's fields for a stored crontab; one the picker cannot show opens under 詳細 (cron)."""
    found = _SIMPLE_CRON.match(cron)
    if found is None or (found.group(3) == "*") == (found.group(4) == "*"):
        return {"repeat": "cron" if cron else "weekly"}
    minute, hour, day, dow = found.groups()
    fields: dict[str, Any] = {"at_time": f"{int(hour):02d}:{int(minute):02d}"}
    if day == "*":
        return {**fields, "repeat": "weekly", "weekdays": tuple(dow.split(","))}
    return {**fields, "repeat": "monthly", "monthday": day}


def describe_cron(cron: str) -> str:
    """A crontab in Japanese where the picker could have made it (毎週月・水 10:00, 毎月1日 10:00)."""
    fields = picker_fields(cron)
    if fields["repeat"] == "weekly" and fields.get("weekdays"):
        days = "・".join(WEEKDAY_NAMES[d] for d in fields["weekdays"])
        return f"毎週{days}曜 {fields['at_time']}"
    if fields["repeat"] == "monthly":
        return f"毎月{fields['monthday']}日 {fields['at_time']}"
    return f"cron「{cron}」" if cron else "—"


def _int(value: str, errors: list[str], name: str) -> int | None:
    if not value:
        return None
    try:
        n = int(value)
    except ValueError:
        errors.append(f"{name}は0以上の整数で入力してください。")
        return None
    if not 0 <= n <= 1200:
        errors.append(f"{name}は0以上の整数で入力してください。")
        return None
    return n


def _local_datetime(value: str, tz: dt.tzinfo) -> dt.datetime | None:
    """A datetime-local value typed in the office time zone, as UTC."""
    try:
        naive = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    if naive.tzinfo is not None or not in_years(naive):
        return None
    return naive.replace(tzinfo=tz).astimezone(dt.UTC)


def _aware(value: dt.datetime) -> dt.datetime:
    """SQLite hands back naive UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def _valid_cron(cron: str, tz: dt.tzinfo) -> bool:
    return len(cron.split()) == 5 and next_cron(cron, tz, utcnow()) is not None


def next_cron(cron: str, tz: dt.tzinfo, now: dt.datetime) -> dt.datetime | None:
    """The next time a crontab fires (office time zone), or None when it is invalid or never fires."""
    from apscheduler.triggers.cron import CronTrigger

    try:  # the scheduler's reading of the crontab (cron's day-of-week numbers: 0 = Sunday)
        trigger = CronTrigger.from_crontab(Cron(cron).aps_expr(), timezone=tz)
    except (ValueError, IndexError):
        return None
    fire: dt.datetime | None = trigger.get_next_fire_time(None, now.astimezone(tz))
    return fire


# ----- presentation helpers


def segment_text(notice: Notice) -> str:
    parts = [CHANNELS.get(notice.channel, notice.channel) if notice.channel else "すべての経路"]
    parts.append(LANGS.get(notice.lang, notice.lang) if notice.lang else "すべての言語")
    band = notice.age_band
    if band is not None:
        lo, hi = band
        parts.append(f"月齢{lo}〜{hi}か月" if hi < 1200 else f"月齢{lo}か月以上")
    return "・".join(parts)


def shown_status(notice: Notice, *, sent: int, failed: int) -> dict[str, str]:
    """The status as staff should read it: a notice whose deliveries all failed is 送信失敗, not 送信済み."""
    if notice.status == NoticeStatus.SENT and failed and not sent:
        return {"status_key": "failed", "status_label": "送信失敗"}
    if notice.status == NoticeStatus.SENT and failed:
        return {"status_key": "partial", "status_label": "一部送信失敗"}
    return {"status_key": notice.status, "status_label": STATUSES.get(notice.status, notice.status)}


def timing_text(notice: Notice, tz: ZoneInfo) -> str:
    if notice.kind == NoticeKind.ONCE:
        return f"1回：{labels.local(notice.send_at, tz)}" if notice.send_at else "1回"
    if notice.kind == NoticeKind.RECURRING:
        return f"定期：{describe_cron(notice.cron or '')}"
    months, days = notice.age_offset_months or 0, notice.age_offset_days or 0
    return f"月齢に合わせて：誕生月から{months}か月{f'と{days}日' if days else ''}後"


def next_send(notice: Notice, tz: ZoneInfo, now: dt.datetime) -> str:
    if notice.status in (NoticeStatus.SENT, NoticeStatus.CANCELLED):
        return "—"
    if notice.kind == NoticeKind.ONCE:
        if notice.send_at is None:
            return "—"
        at = _aware(notice.send_at)
        if at > now:
            return labels.local(at, tz)
        if notice.status in noticedb.EDITABLE_STATUSES:
            return "承認後すぐ" if notice.requires_approval else "申請後すぐ"
        return "送信中" if notice.status == NoticeStatus.SENDING else "まもなく"
    if notice.kind == NoticeKind.RECURRING and notice.cron:
        fire = next_cron(notice.cron, tz, now)
        return labels.local(fire, tz) if fire else "—"
    return "子どもごと（毎日判定）"


def line_quota(rt: Runtime) -> Quota | None:
    """LINE's monthly quota (handlers/notices.py), or None when LINE is off or the quota could not be read.
    Never raises: the quota is advisory, a preview renders without it. Runs in the route's worker thread."""
    if not rt.settings.line.enabled:
        return None
    try:
        return sending.line_quota(rt.settings)
    except Exception:
        return None


@contextmanager
def _job_writer(request: Request) -> Iterator[JobWriter | None]:
    """Where notice jobs are written: the app's scheduler service (mode auto), or, when only `concierge
    scheduler` runs jobs (mode external), a service used just to write them to the shared job store; None
    when jobs are off."""
    service: SchedulerService | None = getattr(request.app.state, "scheduler", None)
    if service is not None:
        yield service
        return
    rt: Runtime = request.app.state.runtime
    if rt.settings.scheduler.mode != "external":
        yield None
        return
    from scheduler.jobs import build_service

    writer = build_service(rt.settings, rt.sessions)
    try:
        yield writer
    finally:
        writer.stop()


def schedule(request: Request, notice_id: int) -> None:
    """Put a scheduled notice on the job scheduler. Called after the commit, so the job finds the notice
    scheduled."""
    with _job_writer(request) as writer:
        if writer is None:
            return
        with request.app.state.runtime.sessions() as s:
            notice = noticedb.get_notice(s, notice_id=notice_id)
        if notice is not None:
            jobs.schedule_notice(writer, notice)


def unschedule(request: Request, notice_id: int) -> None:
    with _job_writer(request) as writer:
        if writer is not None:
            jobs.unschedule_notice(writer, notice_id)


def _load(s: Any, notice_id: int) -> Notice:
    notice = noticedb.get_notice(s, notice_id=notice_id)
    if notice is None:
        raise NotFoundError()
    return notice


def _back(notice_id: int, msg: str | None = None, error: str | None = None) -> RedirectResponse:
    query = f"?msg={msg}" if msg else (f"?error={error}" if error else "")
    return RedirectResponse(f"/notices/{notice_id}{query}", status_code=303)


# ----- pages


@router.get("/notices", response_class=HTMLResponse)
def notices_page(
    request: Request,
    who: Reader,
    rt: RuntimeDep,
    console: ConsoleDep,
    status: Annotated[str | None, Query()] = None,
) -> HTMLResponse:
    tz = console.office_hours.tz
    now = utcnow()
    chosen = status if status in STATUSES else None
    with transaction(rt.sessions) as s:
        items = []
        for n in noticedb.list_notices(s, status=chosen, limit=200):
            assert n.id is not None
            runs = noticedb.runs(s, notice_id=n.id)
            items.append(
                {
                    "notice": n,
                    "segment": segment_text(n),
                    "timing": timing_text(n, tz),
                    "next": next_send(n, tz, now),
                    "runs": len(runs),
                    "sent": sum(r.sent for r in runs),
                    "failed": sum(r.failed for r in runs),
                    "skipped": sum(r.skipped for r in runs),
                    **shown_status(n, sent=sum(r.sent for r in runs), failed=sum(r.failed for r in runs)),
                }
            )
        staffdb.audit(s, actor=who.name, action="view", record_type=RECORD_TYPE, detail="list")
        names = staff_names(s)
    return console.render(
        request,
        "notices.html",
        names=names,
        items=items,
        status=chosen or "",
        statuses=STATUSES,
        topics=TOPICS,
        kinds=KINDS,
        weekday_names=WEEKDAY_NAMES,
        can_compose=who.staff.role in (Role.CONCIERGE, Role.SUPERVISOR),
    )


def _form_page(
    request: Request,
    console: ConsoleDep,
    rt: Runtime,
    draft: Draft,
    *,
    notice: Notice | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    return console.render(
        request,
        "notice_form.html",
        status_code=status_code,
        draft=draft,
        notice=notice,
        topics=TOPICS,
        channels=CHANNELS,
        langs=LANGS,
        kinds=KINDS,
        weekday_names=WEEKDAY_NAMES,
        misfire=MISFIRE,
        forced_approval=approval_required(rt),
        tz_name=console.office_hours.timezone,
    )


@router.get("/notices/new", response_class=HTMLResponse)
def new_notice(request: Request, who: Composer, rt: RuntimeDep, console: ConsoleDep) -> HTMLResponse:
    return _form_page(request, console, rt, Draft())


@router.post("/notices", response_model=None)
async def create_notice(
    request: Request, who: ComposerForm, rt: RuntimeDep, console: ConsoleDep
) -> HTMLResponse | RedirectResponse:
    draft = Draft.from_form(await request.form())
    values = draft.values(tz=console.office_hours.tz, now=utcnow(), forced_approval=approval_required(rt))
    if values is None:
        return _form_page(request, console, rt, draft, status_code=200)
    with transaction(rt.sessions) as s:
        try:
            notice = noticedb.create_notice(s, created_by=who.name, channels=channels.notice_channels(), **values)
        except NoticeError:
            draft.errors.append(labels.MESSAGES["bad_value"])
            return _form_page(request, console, rt, draft, status_code=200)
        assert notice.id is not None
        staffdb.audit(s, actor=who.name, action="create", record_type=RECORD_TYPE, record_id=notice.id)
        notice_id = notice.id
    return _back(notice_id, "created")


@router.get("/notices/{notice_id}/edit", response_model=None)
def edit_notice_page(
    request: Request, notice_id: int, who: Composer, rt: RuntimeDep, console: ConsoleDep
) -> HTMLResponse | RedirectResponse:
    with rt.sessions() as s:
        notice = _load(s, notice_id)
    if not is_editor(who, notice):
        raise ForbiddenError("notice edit")
    if not may_edit(who, notice):
        return _back(notice_id, error="invalid")
    return _form_page(request, console, rt, Draft.from_notice(notice, console.office_hours.tz), notice=notice)


@router.post("/notices/{notice_id}/edit", response_model=None)
async def edit_notice(
    request: Request, notice_id: int, who: ComposerForm, rt: RuntimeDep, console: ConsoleDep
) -> HTMLResponse | RedirectResponse:
    draft = Draft.from_form(await request.form())
    with transaction(rt.sessions) as s:
        notice = _load(s, notice_id)
        if not is_editor(who, notice):
            raise ForbiddenError("notice edit")
        if not may_edit(who, notice):
            return _back(notice_id, error="invalid")
        values = draft.values(tz=console.office_hours.tz, now=utcnow(), forced_approval=approval_required(rt))
        if values is None:
            return _form_page(request, console, rt, draft, notice=notice, status_code=200)
        try:
            noticedb.update_notice(s, notice=notice, channels=channels.notice_channels(), editor=who.name, **values)
        except NoticeError:
            draft.errors.append(labels.MESSAGES["bad_value"])
            return _form_page(request, console, rt, draft, notice=notice, status_code=200)
        staffdb.audit(s, actor=who.name, action="edit", record_type=RECORD_TYPE, record_id=notice_id)
    return _back(notice_id, "saved")


@router.get("/notices/{notice_id}", response_class=HTMLResponse)
def notice_page(
    request: Request,
    notice_id: int,
    who: Reader,
    rt: RuntimeDep,
    console: ConsoleDep,
    run: Annotated[int | None, Query()] = None,
    state: Annotated[str | None, Query()] = None,
    page: Annotated[int, Query(ge=0)] = 0,
    msg: str | None = None,
) -> HTMLResponse:
    tz = console.office_hours.tz
    now = utcnow()
    with transaction(rt.sessions) as s:
        notice = _load(s, notice_id)
        runs = noticedb.runs(s, notice_id=notice_id)
        counts = {r.id: noticedb.delivery_counts(s, run_id=r.id) for r in runs if r.id is not None}
        selected = next((r for r in runs if r.id == run), runs[0] if runs else None)
        chosen_state = state if state in DELIVERY else None
        rows = []
        if selected is not None and selected.id is not None:
            rows = noticedb.deliveries(
                s, run_id=selected.id, status=chosen_state, limit=DELIVERY_PAGE + 1, offset=page * DELIVERY_PAGE
            )
        names = staff_names(s)
        live = notice.status not in (NoticeStatus.SENT, NoticeStatus.CANCELLED)
        estimate = (
            noticedb.estimate(
                s,
                notice=notice,
                broadcast_channel=channels.broadcast_channel(),
                allow_broadcast=rt.settings.notices.line_broadcast,
            )
            if live
            else None
        )
        staffdb.audit(
            s,
            actor=who.name,
            action="view",
            record_type=RECORD_TYPE,
            record_id=notice_id,
            detail=f"run {selected.id}" if selected is not None else None,
        )
    quota = line_quota(rt) if estimate is not None and estimate.by_channel.get("line") else None
    send_at = _aware(notice.send_at) if notice.send_at else None
    return console.render(
        request,
        "notice.html",
        notice=notice,
        flash=MESSAGES.get(msg or ""),
        error=NOTICE_ERRORS.get(request.query_params.get("error") or ""),
        topics=TOPICS,
        statuses=STATUSES,
        kinds=KINDS,
        weekday_names=WEEKDAY_NAMES,
        misfire=MISFIRE,
        channels=CHANNELS,
        langs=LANGS,
        delivery_labels=DELIVERY,
        reason_text=reason_text,
        run_statuses=RUN_STATUSES,
        segment=segment_text(notice),
        timing=timing_text(notice, tz),
        next=next_send(notice, tz, now),
        estimate=estimate,
        quota=quota,
        runs=runs,
        counts=counts,
        selected=selected,
        deliveries=rows[:DELIVERY_PAGE],
        more=len(rows) > DELIVERY_PAGE,
        page=page,
        state=chosen_state or "",
        overdue=notice.kind == NoticeKind.ONCE and send_at is not None and send_at <= now,
        can_edit=may_edit(who, notice),
        can_submit=may_edit(who, notice) and notice.status == NoticeStatus.DRAFT,
        can_approve=may_approve(who, notice),
        own_awaiting=notice.status == NoticeStatus.AWAITING_APPROVAL and noticedb.wrote(notice, who.name),
        can_cancel=may_cancel(who, notice),
        can_resend=who.staff.role in (Role.CONCIERGE, Role.SUPERVISOR),
        names=names,
        shown=shown_status(
            notice,
            sent=sum(c.get("sent", 0) for c in counts.values()),
            failed=sum(c.get("failed", 0) for c in counts.values()),
        ),
    )


NOTICE_ERRORS = {
    "invalid": "このお知らせは現在の状態では操作できません。画面を開き直してください。",
    "own": "自分で作成または編集したお知らせは承認できません。別の管理者に承認を依頼してください。",
    "nobody": "配信先が0人のため申請できません。配信先の条件を見直してください。",
}


def _refresh_now(notice: Notice, now: dt.datetime) -> None:
    """A one-off notice whose time has passed (or "now") goes out as soon as it may: its send time becomes now,
    so the scheduler's misfire rule does not skip it."""
    if notice.kind == NoticeKind.ONCE and notice.send_at is not None and _aware(notice.send_at) <= now:
        notice.send_at = now


@router.post("/notices/{notice_id}/submit")
def submit(request: Request, notice_id: int, who: ComposerForm, rt: RuntimeDep) -> RedirectResponse:
    now = utcnow()
    with transaction(rt.sessions) as s:
        notice = _load(s, notice_id)
        if not is_editor(who, notice):
            raise ForbiddenError("notice submit")
        if notice.status != NoticeStatus.DRAFT:
            return _back(notice_id, error="invalid")
        if (
            notice.kind == NoticeKind.ONCE
            and noticedb.estimate(s, notice=notice, broadcast_channel=channels.broadcast_channel()).total == 0
        ):
            return _back(notice_id, error="nobody")
        _refresh_now(notice, now)
        try:
            noticedb.submit_notice(s, notice=notice, channels=channels.notice_channels())
        except NoticeError:
            return _back(notice_id, error="invalid")
        scheduled = notice.status == NoticeStatus.SCHEDULED
        staffdb.audit(
            s,
            actor=who.name,
            action="send" if scheduled else "submit",
            record_type=RECORD_TYPE,
            record_id=notice_id,
            detail="scheduled without approval" if scheduled else "awaiting approval",
        )
    if scheduled:
        schedule(request, notice_id)
    return _back(notice_id, "scheduled" if scheduled else "submitted")


@router.post("/notices/{notice_id}/approve")
def approve(
    request: Request, notice_id: int, who: Annotated[Authed, Depends(checked_form)], rt: RuntimeDep
) -> RedirectResponse:
    if who.staff.role != Role.SUPERVISOR:
        raise ForbiddenError("notice approve")
    now = utcnow()
    with transaction(rt.sessions) as s:
        notice = _load(s, notice_id)
        if noticedb.wrote(notice, who.name):  # wrote it, or edited the version awaiting approval
            return _back(notice_id, error="own")
        if notice.status != NoticeStatus.AWAITING_APPROVAL:
            return _back(notice_id, error="invalid")
        _refresh_now(notice, now)
        try:
            noticedb.approve_notice(s, notice=notice, approver=who.name)
        except NoticeError:
            return _back(notice_id, error="invalid")
        staffdb.audit(s, actor=who.name, action="approve", record_type=RECORD_TYPE, record_id=notice_id)
        staffdb.audit(
            s, actor=who.name, action="send", record_type=RECORD_TYPE, record_id=notice_id, detail="scheduled"
        )
    schedule(request, notice_id)
    return _back(notice_id, "approved")


@router.post("/notices/{notice_id}/runs/{run_id}/resend")
def resend_failed(
    notice_id: int, run_id: int, who: ComposerForm, rt: RuntimeDep, background: BackgroundTasks
) -> RedirectResponse:
    """再送: the failed deliveries of a run go out again (their batches keep their retry keys, so a call that did
    reach LINE is not repeated); the run is sent in the background and the page shows its progress."""
    with transaction(rt.sessions) as s:
        _load(s, notice_id)
        run = noticedb.get_run(s, run_id=run_id)
        if run is None or run.notice_id != notice_id:
            return _back(notice_id, error="invalid")
        reopened = notice_runs.retry_failed(s, run_id=run_id)
        if not reopened:
            return _back(notice_id, error="invalid")
        staffdb.audit(
            s,
            actor=who.name,
            action="resend",
            record_type=RECORD_TYPE,
            record_id=notice_id,
            detail=f"run {run_id}, {reopened} delivery(ies)",
        )
    background.add_task(resume, rt.settings, rt.sessions, run_id=run_id)
    return _back(notice_id, "resent")


@router.post("/notices/{notice_id}/cancel")
def cancel(request: Request, notice_id: int, who: ComposerForm, rt: RuntimeDep) -> RedirectResponse:
    with transaction(rt.sessions) as s:
        notice = _load(s, notice_id)
        if not is_editor(who, notice):
            raise ForbiddenError("notice cancel")
        if not may_cancel(who, notice):
            return _back(notice_id, error="invalid")
        was = notice.status
        try:
            noticedb.cancel_notice(s, notice=notice)
        except NoticeError:
            return _back(notice_id, error="invalid")
        staffdb.audit(
            s, actor=who.name, action="cancel", record_type=RECORD_TYPE, record_id=notice_id, detail=f"was {was}"
        )
    if was in (NoticeStatus.SCHEDULED, NoticeStatus.SENDING):
        unschedule(request, notice_id)
    return _back(notice_id, "cancelled")
