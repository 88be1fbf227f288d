"""Chat commands for notices and for the parent's own records: an Engine extension.

- 「お知らせ設定」 (or the rich menu's お知らせ設定 button, postback `notices`): the current settings with buttons to
  turn topics on/off, choose the notice language, register or remove the child's birth or due month, and stop
  or start notices. The month is stored only while consent is in force: without it the parent is told what is
  recorded and why, and offered the (shared) consent; the month is then asked for as text (「2025年4月」).
- 「お知らせ停止」 / "stop notices": notices off at once.
- 「記録を削除」 / "delete my data": erasure of everything about the parent after a confirmation button, with the
  legal exceptions said up front (see handlers/lifecycle.py).
- 「記録を見たい」 / "export my data": after a confirmation button, an export request in the concierge queue.

Commands are whole messages (a question that merely mentions 記録 goes to the FAQ). Postbacks: `notices[:...]`,
`records:...`. Nothing typed here is stored except the month, and only under consent.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass

from handlers import consent
from handlers.consent import Notices
from handlers.engine import EngineConfig, Turn
from handlers.lifecycle import erase_contact, request_export
from handlers.texts import t as engine_text
from handlers.types import Choice, InboundKind, Reply, ReplyKind
from knowledge.normalize import clean, to_hiragana
from storage import lifecycle as store
from storage.lifecycle import NOTICE_TOPICS, MonthKind, RequestStatus

AWAIT_WINDOW = dt.timedelta(minutes=10)  # how long a typed month is waited for
LABEL_MAX = 20  # LINE quick-reply labels
BIRTH_MONTHS_BACK = 18 * 12
DUE_MONTHS_AHEAD = 10

TOPIC_LABELS = {
    "ja": {
        "events": "イベント・講座",
        "health": "健診・予防接種",
        "nursery": "保育園の申込",
        "general": "一般のお知らせ",
    },
    "en": {"events": "Events", "health": "Check-ups", "nursery": "Nursery apps", "general": "General"},
}
LANG_NAMES = {"ja": "日本語", "en": "English"}

TEXTS: dict[str, dict[str, str]] = {
    "ja": {
        "menu_title": "お知らせ設定",
        "menu_on": "受け取り：オン",
        "menu_off": "受け取り：停止中（「お知らせを受け取る」を押すと届くようになります）",
        "on": "オン",
        "off": "オフ",
        "lang_line": "言語：{lang}",
        "month_line_none": "お子さんの誕生月・出産予定月：未登録",
        "month_line_birth": "お子さんの誕生月：{month}",
        "month_line_due": "出産予定月：{month}",
        "menu_hint": "下のボタンで切り替えられます。",
        "btn_topic_on": "{label}：オンにする",
        "btn_topic_off": "{label}：オフにする",
        "btn_start": "お知らせを受け取る",
        "btn_stop": "お知らせを止める",
        "btn_lang": "言語 / Language",
        "btn_month": "誕生月・予定月",
        "btn_back": "戻る",
        "lang_prompt": "お知らせの言語を選んでください。",
        "lang_set": "お知らせの言語を{lang}にしました。",
        "stopped": "お知らせを停止しました。再開するときは「お知らせ設定」から「お知らせを受け取る」を押してください。",
        "started": "お知らせの受け取りをオンにしました。",
        "month_intro": (
            "お子さんの誕生月（または出産予定月）を登録すると、月齢に合わせて健診や予防接種などのお知らせをお送りできます。"
            "登録は任意です。いつでも「誕生月を削除」と送ると削除されます。"
        ),
        "month_current": "登録中：{line}",
        "btn_month_birth": "誕生月を登録",
        "btn_month_due": "出産予定月を登録",
        "btn_month_remove": "登録を削除",
        "btn_month_consent": "同意して登録する",
        "btn_month_no": "登録しない",
        "month_ask_birth": (
            "お子さんの誕生月を「2025年4月」のように送ってください。やめるときは「やめる」と送ってください。"
        ),
        "month_ask_due": "出産予定月を「2027年3月」のように送ってください。やめるときは「やめる」と送ってください。",
        "month_bad": (
            "年と月を読み取れませんでした。「2025年4月」のように送ってください。やめるときは「やめる」と送ってください。"
        ),
        "month_range_birth": "誕生月は、今月から18年前までの年月で送ってください。",
        "month_range_due": "出産予定月は、今月から10か月先までの年月で送ってください。",
        "month_saved_birth": "誕生月を{month}で登録しました。削除するときは「誕生月を削除」と送ってください。",
        "month_saved_due": "出産予定月を{month}で登録しました。削除するときは「誕生月を削除」と送ってください。",
        "month_removed": "登録していた月を削除しました。",
        "month_none": "登録されている月はありません。",
        "month_cancelled": "登録をやめました。",
        "month_declined": "承知しました。誕生月は登録しません。お知らせはこれまでどおりお届けします。",
        "erase_confirm": (
            "このアカウントに関する記録をすべて削除します（ご相談のやりとり、相談記録、お知らせの設定、誕生月など）。"
            "削除すると元に戻せません。\n"
            "ただし、次のものは法令上の理由で残ります。\n"
            "・同意の記録（いつ同意・取り消しをしたか。内容や連絡先は含みません）\n"
            "・命や子どもの安全に関わる緊急のご相談の記録（保存期間が終わるまで）\n"
            "削除しますか？"
        ),
        "btn_erase_yes": "削除する",
        "btn_cancel": "やめる",
        "erased": "記録を削除しました（受付番号 D-{id}）。またいつでもご質問ください。",
        "erased_partial": (
            "記録を削除しました（受付番号 D-{id}）。ただし、緊急のご相談が続いているため、その相談の記録と、"
            "相談員がこのトークでお返事するための連絡先は相談の終了まで残し、終了後に削除します。"
        ),
        "erase_cancelled": "削除をやめました。記録はそのままです。",
        "export_confirm": (
            "このアカウントについて保存している記録（ご相談のやりとり、同意の記録、お知らせの設定）をまとめて、"
            "相談員からこのトークでお送りします。依頼しますか？"
        ),
        "btn_export_yes": "依頼する",
        "export_requested": (
            "記録の開示のご依頼を受け付けました（受付番号 {case_id}）。"
            "相談員が内容を確認し、受付時間内に順番にこのトークでお送りします。"
        ),
        "export_cancelled": "依頼をやめました。",
    },
    "en": {
        "menu_title": "Notice settings",
        "menu_on": "Notices: on",
        "menu_off": 'Notices: off (press "Receive notices" to get them)',
        "on": "on",
        "off": "off",
        "lang_line": "Language: {lang}",
        "month_line_none": "Child's birth or due month: not registered",
        "month_line_birth": "Child's birth month: {month}",
        "month_line_due": "Due month: {month}",
        "menu_hint": "Use the buttons below to change them.",
        "btn_topic_on": "{label}: turn on",
        "btn_topic_off": "{label}: turn off",
        "btn_start": "Receive notices",
        "btn_stop": "Stop notices",
        "btn_lang": "言語 / Language",
        "btn_month": "Birth / due month",
        "btn_back": "Back",
        "lang_prompt": "Choose the language of your notices.",
        "lang_set": "Your notices will be in {lang}.",
        "stopped": 'Notices are stopped. To receive them again, open "notice settings" and press "Receive notices".',
        "started": "Notices are on.",
        "month_intro": (
            "If you register your child's birth month (or due month), we can send notices that fit your child's age, "
            'such as check-ups and vaccinations. This is optional; send "remove birth month" at any time to delete it.'
        ),
        "month_current": "Registered: {line}",
        "btn_month_birth": "Register birth month",
        "btn_month_due": "Register due month",
        "btn_month_remove": "Remove it",
        "btn_month_consent": "Agree and register",
        "btn_month_no": "Don't register",
        "month_ask_birth": 'Please send your child\'s birth month, like "2025-04". Send "cancel" to stop.',
        "month_ask_due": 'Please send the due month, like "2027-03". Send "cancel" to stop.',
        "month_bad": 'Sorry, we could not read a year and month. Please send it like "2025-04", or "cancel".',
        "month_range_birth": "Please send a birth month between 18 years ago and this month.",
        "month_range_due": "Please send a due month between this month and 10 months from now.",
        "month_saved_birth": 'Birth month {month} is registered. Send "remove birth month" to delete it.',
        "month_saved_due": 'Due month {month} is registered. Send "remove birth month" to delete it.',
        "month_removed": "The registered month is deleted.",
        "month_none": "No month is registered.",
        "month_cancelled": "Registration cancelled.",
        "month_declined": "Understood. No month is registered; your notices continue as before.",
        "erase_confirm": (
            "This deletes every record about this account (your consultation messages, case records, notice settings, "
            "birth month). It cannot be undone.\n"
            "By law, two things are kept:\n"
            "- the record of your consent (when you agreed or withdrew; no content, no contact id)\n"
            "- records of urgent consultations about life or a child's safety, until their retention period ends\n"
            "Delete now?"
        ),
        "btn_erase_yes": "Delete",
        "btn_cancel": "Cancel",
        "erased": "Your records are deleted (reference D-{id}). Ask us anything, any time.",
        "erased_partial": (
            "Your records are deleted (reference D-{id}). Because an urgent consultation is still open, its record and "
            "the contact id a concierge needs to reply in this chat are kept until it ends, then deleted."
        ),
        "erase_cancelled": "Nothing was deleted.",
        "export_confirm": (
            "A concierge will collect what we keep about this account (consultation messages, consent record, notice "
            "settings) and send it to you in this chat. Send the request?"
        ),
        "btn_export_yes": "Send request",
        "export_requested": (
            "Your request is registered (case {case_id}). "
            "A concierge will check it and send it in this chat during opening hours."
        ),
        "export_cancelled": "Request cancelled.",
    },
}

# The texts worded for a mail, where they differ from the chat's.
MAIL_TEXTS: dict[str, dict[str, str]] = {
    "ja": {
        "erased_partial": (
            "記録を削除しました（受付番号 D-{id}）。ただし、緊急のご相談が続いているため、その相談の記録と、"
            "相談員がこのメールでお返事するための連絡先は相談の終了まで残し、終了後に削除します。"
        ),
        "export_confirm": (
            "このアカウントについて保存している記録（ご相談のやりとり、同意の記録、お知らせの設定）をまとめて、"
            "相談員からこのメールでお送りします。依頼しますか？"
        ),
        "export_requested": (
            "記録の開示のご依頼を受け付けました（受付番号 {case_id}）。"
            "相談員が内容を確認し、受付時間内に順番にこのメールでお送りします。"
        ),
    },
    "en": {
        "erased_partial": (
            "Your records are deleted (reference D-{id}). Because an urgent consultation is still open, its record and "
            "the contact id a concierge needs to reply by email are kept until it ends, then deleted."
        ),
        "export_confirm": (
            "A concierge will collect what we keep about this account (consultation messages, consent record, notice "
            "settings) and send it to you by email. Send the request?"
        ),
        "export_requested": (
            "Your request is registered (case {case_id}). "
            "A concierge will check it and send it by email during opening hours."
        ),
    },
}

COMMANDS: dict[str, tuple[str, ...]] = {
    "settings": (
        "お知らせ設定",
        "お知らせの設定",
        "お知らせ",
        "通知設定",
        "通知の設定",
        "notice settings",
        "notification settings",
        "notices",
        "notifications",
    ),
    "start": (
        "お知らせを受け取る",
        "お知らせを受け取りたい",
        "お知らせ再開",
        "お知らせを再開",
        "お知らせ登録",
        "receive notices",
        "start notices",
        "subscribe",
    ),
    "stop": (
        "お知らせ停止",
        "お知らせを停止",
        "お知らせの停止",
        "お知らせをやめる",
        "お知らせを止める",
        "お知らせ解除",
        "お知らせはいらない",
        "配信停止",
        "通知停止",
        "通知をオフ",
        "stop notices",
        "stop notifications",
        "unsubscribe",
    ),
    "erase": (
        "記録を削除",
        "記録を消して",
        "記録削除",
        "記録の削除",
        "私の記録を削除",
        "データを削除",
        "個人情報を削除",
        "delete my data",
        "erase my data",
        "delete my records",
    ),
    "export": (
        "記録を見たい",
        "記録を見せて",
        "記録の開示",
        "記録を開示",
        "私の記録を見たい",
        "開示請求",
        "データを見たい",
        "export my data",
        "show my data",
        "see my records",
        "see my data",
    ),
    "month_remove": (
        "誕生月を削除",
        "誕生月の削除",
        "予定月を削除",
        "出産予定月を削除",
        "月齢の登録を削除",
        "remove birth month",
        "remove due month",
        "delete birth month",
    ),
}
CANCEL = ("やめる", "やめます", "キャンセル", "中止", "cancel", "stop")
SUFFIXES = (
    "",
    "して",
    "してください",
    "して下さい",
    "したい",
    "します",
    "お願いします",
    "をお願いします",
    "ください",
    "please",
)

_TRIM = re.compile(r"[\s。、.!！?？]+$")
_MONTH = re.compile(
    r"^(?:(令和|r)\s*(\d{1,2}|元)|(\d{4}))\s*(?:年|/|-|\.)\s*(\d{1,2})\s*(?:月)?\s*(?:生まれ|うまれ|予定|頃|ごろ)?$"
)


def fold(text: str) -> str:
    """Width, case and kana folded, trailing punctuation off: how commands are compared."""
    return _TRIM.sub("", to_hiragana(clean(text)))


def parse_month(text: str) -> dt.date | None:
    """「2025年4月」, 2025/4, 2025-04, 令和7年4月, R7.4 → the first day of that month."""
    m = _MONTH.match(unicodedata.normalize("NFKC", text).strip().casefold())
    if m is None:
        return None
    reiwa = 1 if m.group(2) == "元" else int(m.group(2) or 0)
    year = int(m.group(3)) if m.group(3) else 2018 + reiwa
    month = int(m.group(4))
    if not 1 <= month <= 12:
        return None
    return dt.date(year, month, 1)


def format_month(month: dt.date, lang: str) -> str:
    return f"{month.year}年{month.month}月" if lang == "ja" else f"{month:%b} {month.year}"


def _label(text: str) -> str:
    return text if len(text) <= LABEL_MAX else text[: LABEL_MAX - 1] + "…"


@dataclass(frozen=True)
class _Commands:
    by_name: dict[str, frozenset[str]]
    cancel: frozenset[str]
    suffixes: tuple[str, ...]

    @classmethod
    def build(cls) -> _Commands:
        suffixes = tuple(sorted({fold(s) if s else "" for s in SUFFIXES}, key=len, reverse=True))
        return cls(
            {name: frozenset(fold(p) for p in phrases) for name, phrases in COMMANDS.items()},
            frozenset(fold(c) for c in CANCEL),
            suffixes,
        )

    def find(self, text: str) -> str | None:
        folded = fold(text)
        if not folded or len(folded) > 40:
            return None
        for name, phrases in self.by_name.items():
            for phrase in phrases:
                if folded.startswith(phrase) and folded[len(phrase) :].strip() in self.suffixes:
                    return name
        return None


class NoticeSettings:
    """The extension (see the module docstring). Built once by `bootstrap` from the engine's config."""

    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        self.notices = Notices.for_config(config.notice_path, config.notice_version)
        self.commands = _Commands.build()

    # ----- dispatch
    def handle(self, turn: Turn) -> list[Reply] | None:
        msg = turn.message
        if msg is not None and msg.kind == InboundKind.POSTBACK:
            data = msg.postback or ""
            if data == "notices" or data.startswith("notices:"):
                return self._notices(turn, data.split(":")[1:])
            if data.startswith("records:"):
                return self._records(turn, data.split(":")[1:])
            return None
        if not turn.text:
            return None
        awaited = self._awaited_month(turn)
        if awaited is not None:
            return awaited
        command = self.commands.find(turn.text)
        if command == "settings":
            return [self._menu(turn)]
        if command in ("start", "stop"):
            return self._set_subscribed(turn, command == "start")
        if command == "month_remove":
            return self._remove_month(turn)
        if command == "erase":
            choices = (
                Choice(self._t(turn, "btn_erase_yes"), "records:erase:yes"),
                self._cancel("records:erase:no", turn),
            )
            return [self._info(turn, self._t(turn, "erase_confirm"), choices)]
        if command == "export":
            yes = Choice(self._t(turn, "btn_export_yes"), "records:export:yes")
            return [self._info(turn, self._t(turn, "export_confirm"), (yes, self._cancel("records:export:no", turn)))]
        return None

    # ----- notices
    def _notices(self, turn: Turn, parts: list[str]) -> list[Reply]:
        cid = self._cid(turn)
        what = parts[0] if parts else ""
        if what == "on":
            return self._set_subscribed(turn, True)
        if what == "off":
            return self._set_subscribed(turn, False)
        if what == "topic" and len(parts) == 3 and parts[1] in NOTICE_TOPICS and parts[2] in ("on", "off"):
            enabled = parts[2] == "on"
            store.set_topic(turn.session, contact_id=cid, topic=parts[1], enabled=enabled)
            if enabled and not turn.contact.subscribed:  # choosing a topic is an explicit opt-in
                store.set_subscribed(turn.session, contact=turn.contact, subscribed=True)
            return [self._menu(turn)]
        if what == "lang":
            if len(parts) == 2 and parts[1] in self.config.languages:
                store.set_notice_lang(turn.session, contact_id=cid, lang=parts[1])
                turn.lang = parts[1]
                name = LANG_NAMES.get(parts[1], parts[1])
                return [self._info(turn, self._t(turn, "lang_set", lang=name)), self._menu(turn)]
            choices = tuple(
                Choice(LANG_NAMES.get(code, code), f"notices:lang:{code}") for code in self.config.languages
            )
            return [self._info(turn, self._t(turn, "lang_prompt"), choices)]
        if what == "month":
            return self._month(turn, parts[1:])
        return [self._menu(turn)]

    def _set_subscribed(self, turn: Turn, subscribed: bool) -> list[Reply]:
        store.set_subscribed(turn.session, contact=turn.contact, subscribed=subscribed)
        if not subscribed:
            return [self._info(turn, self._t(turn, "stopped"), (Choice(self._t(turn, "btn_start"), "notices:on"),))]
        return [self._info(turn, self._t(turn, "started")), self._menu(turn)]

    def _menu(self, turn: Turn) -> Reply:
        cid = self._cid(turn)
        self._drop_month_without_consent(turn)
        topics = store.topic_settings(turn.session, contact_id=cid)
        profile = store.get_profile(turn.session, contact_id=cid)
        subscribed = turn.contact.subscribed
        labels = TOPIC_LABELS.get(turn.lang, TOPIC_LABELS["en"])
        lines = [self._t(turn, "menu_title"), self._t(turn, "menu_on" if subscribed else "menu_off")]
        for topic, enabled in topics.items():
            lines.append(f"・{labels[topic]}：{self._t(turn, 'on' if enabled else 'off')}")
        lang = (profile.lang if profile else None) or turn.contact.lang or self.config.default_lang
        lines.append(self._t(turn, "lang_line", lang=LANG_NAMES.get(lang, lang)))
        lines.append(self._month_line(turn, profile))
        lines.append(self._t(turn, "menu_hint"))
        choices: list[Choice] = []
        if not subscribed:
            choices.append(Choice(self._t(turn, "btn_start"), "notices:on"))
        for topic, enabled in topics.items():
            key = "btn_topic_off" if enabled else "btn_topic_on"
            data = f"notices:topic:{topic}:{'off' if enabled else 'on'}"
            choices.append(Choice(_label(self._t(turn, key, label=labels[topic])), data))
        choices.append(Choice(self._t(turn, "btn_lang"), "notices:lang"))
        choices.append(Choice(self._t(turn, "btn_month"), "notices:month"))
        if subscribed:
            choices.append(Choice(self._t(turn, "btn_stop"), "notices:off"))
        return self._info(turn, "\n".join(lines), tuple(choices))

    # ----- the child's month
    def _month(self, turn: Turn, parts: list[str]) -> list[Reply]:
        cid = self._cid(turn)
        what = parts[0] if parts else ""
        if what == "remove":
            return self._remove_month(turn)
        if what in (MonthKind.BIRTH, MonthKind.DUE):
            if consent.must_ask(turn.session, contact_id=cid, version=self.notices.version):
                return [self._month_consent(turn, MonthKind(what))]
            return [self._ask_month(turn, MonthKind(what))]
        if what == "consent" and len(parts) == 2 and parts[1] in (MonthKind.BIRTH, MonthKind.DUE):
            # The month prompt was shown in the contact's language, worded for its channel.
            shown = self.notices.shown(turn.lang, turn.contact.channel, month=True)
            consent.grant_once(turn.session, contact=turn.contact, shown=shown)
            return [self._ask_month(turn, MonthKind(parts[1]))]
        if what in ("no", "cancel"):
            store.set_awaiting(turn.session, contact_id=cid, step=None)
            key = "month_declined" if what == "no" else "month_cancelled"
            return [self._info(turn, self._t(turn, key)), self._menu(turn)]
        # the month sub-menu
        self._drop_month_without_consent(turn)
        profile = store.get_profile(turn.session, contact_id=cid)
        text = self._t(turn, "month_intro")
        choices = [
            Choice(self._t(turn, "btn_month_birth"), "notices:month:birth"),
            Choice(self._t(turn, "btn_month_due"), "notices:month:due"),
        ]
        if profile is not None and profile.child_month is not None:
            text += "\n" + self._t(turn, "month_current", line=self._month_line(turn, profile))
            choices.insert(0, Choice(self._t(turn, "btn_month_remove"), "notices:month:remove"))
        choices.append(Choice(self._t(turn, "btn_back"), "notices"))
        return [self._info(turn, text, tuple(choices))]

    def _month_consent(self, turn: Turn, kind: MonthKind) -> Reply:
        shown = self.notices.shown(turn.lang, turn.contact.channel, month=True)
        choices = (
            Choice(self._t(turn, "btn_month_consent"), f"notices:month:consent:{kind.value}"),
            Choice(self._t(turn, "btn_month_no"), "notices:month:no"),
        )
        # INFO, not CONSENT: the engine's typed yes/no belongs to its own consent step; this one is answered by button.
        return Reply(
            ReplyKind.INFO,
            shown.text,
            choices=choices,
            lang=turn.lang,
            meta={"notice": shown.version},
        )

    def _ask_month(self, turn: Turn, kind: MonthKind) -> Reply:
        store.set_awaiting(turn.session, contact_id=self._cid(turn), step=kind.value, until=turn.now + AWAIT_WINDOW)
        return self._info(turn, self._t(turn, f"month_ask_{kind.value}"), (self._cancel("notices:month:cancel", turn),))

    def _awaited_month(self, turn: Turn) -> list[Reply] | None:
        """A typed month while one is awaited; anything that is not an attempt at a month goes on to the FAQ."""
        cid = self._cid(turn)
        profile = store.get_profile(turn.session, contact_id=cid)
        if profile is None or profile.awaiting is None:
            return None
        if profile.awaiting_until is None or profile.awaiting_until <= turn.now:
            store.set_awaiting(turn.session, contact_id=cid, step=None)
            return None
        kind = MonthKind(profile.awaiting)
        if fold(turn.text) in self.commands.cancel:
            store.set_awaiting(turn.session, contact_id=cid, step=None)
            return [self._info(turn, self._t(turn, "month_cancelled"))]
        month = parse_month(turn.text)
        if month is None:
            if len(turn.text) <= 16 and any(ch.isdigit() for ch in turn.text):
                return [self._info(turn, self._t(turn, "month_bad"))]
            store.set_awaiting(turn.session, contact_id=cid, step=None)
            return None
        this_month = turn.now.astimezone(self.config.office_hours.tz).date().replace(day=1)
        age = store.months_between(month, this_month)
        in_range = 0 <= age <= BIRTH_MONTHS_BACK if kind == MonthKind.BIRTH else -DUE_MONTHS_AHEAD <= age <= 1
        if not in_range:
            return [self._info(turn, self._t(turn, f"month_range_{kind.value}"))]
        try:
            store.set_child_month(turn.session, contact_id=cid, month=month, kind=kind)
        except store.ConsentRequiredError:  # withdrawn meanwhile
            store.set_awaiting(turn.session, contact_id=cid, step=None)
            return [self._month_consent(turn, kind)]
        store.set_awaiting(turn.session, contact_id=cid, step=None)
        saved = self._t(turn, f"month_saved_{kind.value}", month=format_month(month, turn.lang))
        return [self._info(turn, saved), self._menu(turn)]

    def _remove_month(self, turn: Turn) -> list[Reply]:
        removed = store.clear_child_month(turn.session, contact_id=self._cid(turn))
        return [self._info(turn, self._t(turn, "month_removed" if removed else "month_none"))]

    def _drop_month_without_consent(self, turn: Turn) -> None:
        cid = self._cid(turn)
        profile = store.get_profile(turn.session, contact_id=cid)
        if (
            profile is not None
            and profile.child_month is not None
            and not consent.in_force(turn.session, contact_id=cid)
        ):
            store.clear_child_month(turn.session, contact_id=cid)

    def _month_line(self, turn: Turn, profile: store.NoticeProfile | None) -> str:
        if profile is None or profile.child_month is None:
            return self._t(turn, "month_line_none")
        key = "month_line_due" if profile.child_month_kind == MonthKind.DUE else "month_line_birth"
        return self._t(turn, key, month=format_month(profile.child_month, turn.lang))

    # ----- records
    def _records(self, turn: Turn, parts: list[str]) -> list[Reply]:
        action = tuple(parts[:2])
        if action == ("erase", "yes"):
            result = erase_contact(
                turn.session,
                contact=turn.contact,
                requested_by="parent",
                notice_version=self.notices.version,
                now=turn.now,
            )
            key = "erased" if result.status == RequestStatus.DONE else "erased_partial"
            return [self._info(turn, self._t(turn, key, id=result.request_id))]
        if action == ("erase", "no"):
            return [self._info(turn, self._t(turn, "erase_cancelled"))]
        if action == ("export", "yes"):
            _, case_id = request_export(turn.session, contact=turn.contact)
            return [self._info(turn, self._t(turn, "export_requested", case_id=case_id))]
        if action == ("export", "no"):
            return [self._info(turn, self._t(turn, "export_cancelled"))]
        return [Reply(ReplyKind.INFO, engine_text(turn.lang, "stale_choice", turn.contact.channel), lang=turn.lang)]

    # ----- helpers
    def _t(self, turn: Turn, key: str, **values: object) -> str:
        table = TEXTS.get(turn.lang) or TEXTS["en"]
        if turn.contact.channel == "email":
            table = {**table, **(MAIL_TEXTS.get(turn.lang) or MAIL_TEXTS["en"])}
        return table[key].format(**values)

    def _info(self, turn: Turn, text: str, choices: tuple[Choice, ...] = ()) -> Reply:
        return Reply(ReplyKind.INFO, text, choices=choices, lang=turn.lang)

    def _cancel(self, data: str, turn: Turn) -> Choice:
        return Choice(self._t(turn, "btn_cancel"), data)

    @staticmethod
    def _cid(turn: Turn) -> int:
        assert turn.contact.id is not None
        return turn.contact.id
