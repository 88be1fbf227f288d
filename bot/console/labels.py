"""Japanese labels of the console (the UI is Japanese; code and data stay English) and small formatters."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Mapping
from zoneinfo import ZoneInfo

from handlers import channels

WEEKDAYS = "月火水木金土日"

ROLES = {
    "concierge": "コンシェルジュ",
    "assistant": "補助スタッフ",
    "supervisor": "管理者（スーパーバイザー）",
    "auditor": "監査担当",
}
STATUSES = {
    "new": "新規",
    "in_progress": "対応中",
    "waiting_parent": "保護者の返信待ち",
    "resolved": "解決",
    "referred": "関係機関へつなぎ済み",
}
PRIORITIES = {"urgent": "緊急", "normal": "通常"}
KINDS = {"consultation": "相談", "complaint": "要望・苦情", "records_export": "記録の開示請求"}


class _ChannelLabels(Mapping[str, str]):
    """Channel name -> Japanese label, as the adapters declare them (handlers/channels/), read when used."""

    def _all(self) -> dict[str, str]:
        return channels.labels()

    def __getitem__(self, key: str) -> str:
        return self._all()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


class _NoticeChannels(_ChannelLabels):
    """The channels that send notices (bulk capability), with their labels."""

    def _all(self) -> dict[str, str]:
        return {c.channel: c.label for c in channels.all_capabilities() if c.bulk > 0}


CHANNELS: Mapping[str, str] = _ChannelLabels()
NOTICE_CHANNELS: Mapping[str, str] = _NoticeChannels()
LANGS = {"ja": "日本語", "en": "英語", "ko": "韓国語", "zh": "中国語", "vi": "ベトナム語"}
BASES = {"consent": "同意", "life_safety": "生命・安全（同意なし）"}
DELIVERY = {"pending": "送信待ち", "sent": "送信済み", "failed": "送信失敗", "held": "自動返信を保留"}
AUTHORS = {"parent": "保護者", "bot": "Bot"}
UNDELIVERED = "未達"
# What to try when a reply did not reach the parent, by the channel it was sent through.
OTHER_CONTACTS = {
    "line": (
        "保護者がLINEで次に連絡してきたときに、あらためて返信できます。",
        "ブロックされている場合は届きません。窓口や電話で連絡があったときに伝えてください。",
        "緊急の場合は、関係機関（子ども家庭支援センター等）と連携して連絡手段を確認してください。",
    ),
    "email": (
        "メールアドレスに誤りがないか、保護者が次に連絡してきたときに確認してください。",
        "LINEや窓口・電話で連絡があったときに伝えてください。",
        "緊急の場合は、関係機関（子ども家庭支援センター等）と連携して連絡手段を確認してください。",
    ),
}
OTHER_CONTACTS_DEFAULT = (
    "保護者が次に連絡してきたときに、あらためて返信できます。",
    "窓口や電話で連絡があったときに伝えてください。",
)


def failure_reason(error: str | None) -> str:
    """A delivery error (a status code or class name from the channel adapter) in plain Japanese."""
    text = (error or "").strip()
    code = next((int(part) for part in text.split() if part.isdigit()), None)
    if text.startswith("SMTP"):
        if code is not None and 400 <= code < 500:
            return "メールサーバーが一時的に受け付けませんでした。"
        return "メールサーバーが宛先を受け付けませんでした（アドレスが無効の可能性があります）。"
    if text == "invalid recipient":
        return "宛先のメールアドレスが無効です。"
    if code == 429:
        return "LINEの月間送信上限に達したか、送信が多すぎるため送れませんでした。"
    if code == 400:
        return "LINEが宛先を受け付けませんでした（友だち登録が解除されたかブロックされている可能性があります）。"
    if code in (401, 403):
        return "LINEへの送信が許可されませんでした（チャネルの設定を確認してください）。"
    if code is not None and code >= 500:
        return "LINEのサーバーが応答しませんでした。しばらくして再送してください。"
    if "Timeout" in text or "Connect" in text or "Error" in text:
        return "通信ができませんでした。しばらくして再送してください。"
    return "送信できませんでした。"


CONSENT = {"granted": "同意あり", "declined": "同意なし", "withdrawn": "同意取り消し済み", None: "記録なし"}
SLOTS = {"offered": "提示中", "booked": "予約確定", "withdrawn": "取り下げ", "cancelled": "キャンセル"}
COMPLAINT_STEPS = {"received": "受付", "handled": "対応", "reported": "結果報告"}
COMPLAINT_METHODS = ("電話", "窓口", "メール", "LINE", "文書", "その他")
SLA = {"ok": "目標内", "soon": "目標間近", "over": "目標超過", "none": "—"}
ACTIONS = {
    "view": "閲覧",
    "search": "検索",
    "export": "書き出し",
    "edit": "編集",
    "create": "作成",
    "reply": "返信",
    "resend": "再送",
    "note": "内部メモ",
    "claim": "担当する",
    "assign": "担当者の割り当て",
    "release": "担当を外す",
    "status": "状態の変更",
    "resolve": "解決・Botに戻す",
    "reclassify": "種別の変更",
    "offer": "予約枠の提示",
    "cancel": "取り消し",
    "login": "ログイン",
    "login_failed": "ログイン失敗",
    "login_locked": "ロック中のログイン",
    "lockout": "アカウントのロック",
    "logout": "ログアウト",
    "session_expired": "セッション期限切れ",
    "unlock": "ロック解除",
    "link_telegram": "Telegram連携",
    "password": "パスワード変更",
    "submit": "承認依頼",
    "approve": "承認",
    "send": "送信・送信予約",
    "import": "取り込み",
    "rollback": "巻き戻し",
    "propose": "承認待ちの編集",
    "reject": "差し戻し",
    "settings": "設定の変更",
}
RECORD_TYPES = {
    "case": "ケース",
    "queue": "受付一覧",
    "transcript": "やりとり",
    "note": "内部メモ",
    "consultation_record": "相談記録",
    "support_entry": "支援記録",
    "conference": "ケース会議記録",
    "referral": "つなぎ（関係機関）",
    "complaint_step": "苦情対応経過",
    "appointment": "予約",
    "calendar": "予約カレンダー",
    "records": "記録一覧",
    "kb": "知識ベース",
    "complaints": "要望・苦情一覧",
    "staff": "職員アカウント",
    "audit": "監査ログ",
    "session": "セッション",
    "notice": "お知らせ",
    "report": "統計",
    "canned": "定型文",
    "records_request": "記録開示の依頼",
}
VIA = {"web": "コンソール", "telegram": "Telegram", "cli": "コマンド"}

FORBIDDEN = "この画面・操作はあなたの役割では利用できません。必要な場合は管理者に相談してください。"
CSRF = "フォームの有効期限が切れたか、不正な送信の可能性があります。画面を開き直してからもう一度お試しください。"
NOT_FOUND = "お探しのページまたはケースは見つかりませんでした。"
LOGIN_AGAIN = "ログインの有効期限が切れたため、送信は受け付けられませんでした。もう一度ログインしてからお試しください。"


def local(value: dt.datetime | dt.date | None, tz: ZoneInfo, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if value is None:
        return "—"
    if isinstance(value, dt.datetime):
        value = value.astimezone(tz)
    if fmt == "ja":
        w = WEEKDAYS[value.weekday()]
        if isinstance(value, dt.datetime):
            return f"{value.month}月{value.day}日({w}) {value:%H:%M}"
        return f"{value.month}月{value.day}日({w})"
    return value.strftime(fmt)


def duration(minutes: float | int | None) -> str:
    if minutes is None:
        return "—"
    m = int(minutes)
    if m < 60:
        return f"{m}分"
    h, m = divmod(m, 60)
    if h < 24:
        return f"{h}時間{m}分" if m else f"{h}時間"
    d, h = divmod(h, 24)
    return f"{d}日{h}時間" if h else f"{d}日"


def author(value: str, names: dict[str, str] | None = None) -> str:
    if value.startswith("staff:"):
        user = value.split(":", 1)[1]
        name = (names or {}).get(user)
        return f"職員 {name}（{user}）" if name else f"職員 {user}"
    return AUTHORS.get(value, value)


MESSAGES = {
    "empty": "本文を入力してください。",
    "too_long": "長すぎます（5,000文字まで）。",
    "closed": "このケースは終了しています。",
    "no_channel": "このケースは窓口・電話で受け付けたため、チャットでは返信できません。",
    "bad_date": "日付・時刻の形式が正しくありません。",
    "past": "予約枠は未来の日時を指定してください。",
    "no_slots": "予約枠を1つ以上入力してください。",
    "overlap": "既に確定した予約と重なる枠があります：{detail}",
    "bad_value": "入力内容を確認してください。",
    "sent": "返信を送りました。保護者に届くと「送信済み」と表示されます。",
    "resent": "返信をもう一度送ります。保護者に届くと「送信済み」と表示されます。",
    "not_failed": "この返信は再送できません（送信に失敗した返信だけを再送できます）。",
    "noted": "内部メモを保存しました（保護者には送信されません）。",
    "saved": "保存しました。",
    "offered": "予約枠を保護者に送りました。",
    "claimed": "担当になりました。",
    "assigned": "担当者を割り当てました。",
    "released": "担当を外しました。",
    "status": "状態を変更しました。",
    "resolved": "ケースを終了し、会話をBotに戻しました。",
    "reopened": "ケースを再開しました。保護者からのメッセージは担当者に届きます。",
    "open": "このケースは終了していません。",
    "busy": "この保護者には対応中の別のケース（受付番号 {detail}）があるため、再開できません。",
    "not_found": "ケースが見つかりません。",
    "reclassified": "種別を「要望・苦情」に変更し、苦情受付担当に回しました。",
    "complaint_opened": "要望・苦情のケースを受け付け、苦情受付担当に回しました。",
    "cancelled": "予約を取り消しました。保護者への連絡は返信欄からお願いします。",
    "staff_created": "職員アカウントを作成しました。",
    "staff_updated": "職員アカウントを更新しました。",
    "bad_username": "ユーザー名は半角英小文字・数字・._- で10文字以内にしてください。",
    "exists": "そのユーザー名は既に使われています。",
    "weak_password": "パスワードは10文字以上にしてください。",
    "mismatch": "確認用のパスワードが一致しません。",
    "export_sent": "開示する記録を保護者のチャットに送りました。届いたかはやりとりの送信状態で確認できます。",
    "export_handed": "記録を窓口で手渡ししたことを記録しました。",
    "telegram_taken": "そのTelegramユーザーは別の職員に連携されています。",
}


_DETAIL_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^view=(\w+)$"), "view"),
    (re.compile(r"^to (\S+)$"), "to"),
    (re.compile(r"^message (\d+)$"), "メッセージ {0}"),
    (re.compile(r"^case (\d+)$"), "受付番号 {0}"),
    (re.compile(r"^case (\d+), (\d+) slot\(s\)$"), "受付番号 {0}、{1}枠"),
    (re.compile(r"^week (\S+)$"), "{0}の週"),
    (re.compile(r"^month (\S+)$"), "{0}"),
    (re.compile(r"^month (\S+), (\d+) case\(s\)$"), "{0}、{1}件"),
    (re.compile(r"^run (\d+)$"), "配信 {0}"),
    (re.compile(r"^role (\w+)$"), "role"),
    (re.compile(r"^was (\w+)$"), "was"),
    (re.compile(r"^for (\d+) min$"), "{0}分間"),
    (re.compile(r"^(\S+) for (\d+) min$"), "{0}（{1}分間）"),
    (re.compile(r"^(\w+)->(\w+)$"), "kinds"),
)
_DETAIL_WORDS = {
    "list": "一覧",
    "complaint": "要望・苦情",
    "address blocked": "接続元をブロック中",
    "unknown or inactive user": "存在しないか無効な職員",
    "scheduled without approval": "承認なしで送信予約",
    "awaiting approval": "承認待ち",
    "scheduled": "送信予約",
    "linked": "連携",
    "unlinked": "連携を解除",
}
VIEWS = {"all": "すべて", "mine": "自分の担当", "unassigned": "未担当", "closed": "終了したケース"}


def audit_detail(detail: str | None, names: dict[str, str] | None = None) -> str:
    """An audit entry's detail in Japanese for the log's page (entries keep what was written)."""
    if not detail:
        return ""
    if detail in _DETAIL_WORDS:
        return _DETAIL_WORDS[detail]
    if detail in STATUSES:
        return STATUSES[detail]
    for pattern, template in _DETAIL_RULES:
        found = pattern.match(detail)
        if found is None:
            continue
        parts = found.groups()
        if template == "view":
            return f"表示：{VIEWS.get(parts[0], parts[0])}"
        if template == "to":
            return f"担当：{(names or {}).get(parts[0], parts[0])}"
        if template == "role":
            return f"役割：{ROLES.get(parts[0], parts[0])}"
        if template == "was":
            return f"変更前：{parts[0]}"
        if template == "kinds":
            return f"{KINDS.get(parts[0], parts[0])}→{KINDS.get(parts[1], parts[1])}"
        return template.format(*parts)
    return detail
