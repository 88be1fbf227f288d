"""What the bot says outside KB answers, per language, and how it reads the KB's conversation phrases.

Japanese is the service language; English serves foreign residents. A language missing here falls back
to English (see `t`).
"""

from __future__ import annotations

import re

from knowledge.models import Phrases
from knowledge.normalize import Normalizer, clean, to_hiragana

TEXTS: dict[str, dict[str, str]] = {
    "ja": {
        "greeting": (
            "友だち追加ありがとうございます。はこだてキッズプラザの子育て支援コンシェルジュです。\n"
            "保育園・一時預かり・健診・手当など、子育てのよくある質問に自動でお答えします。"
            "相談員（保育士）と話したいときは「相談員と話したい」と送ってください（受付 {hours}）。\n"
            "プライバシー：ご相談の内容は、同意をいただいた場合にだけ記録します。"
            "命や安全に関わる緊急のときは、119番・110番にお電話ください。"
        ),
        "empty": "ご質問を文字で送ってください。例：「一時預かりの料金は？」「児童手当はいつ振り込まれる？」",
        "media": "申し訳ありません。このチャットでは文字のメッセージだけを読み取れます。ご質問を文字で送ってください。",
        "group": "ご相談は1対1のトークで受け付けています。個別にメッセージを送ってください。",
        "too_long": "長いメッセージをありがとうございます。最初の部分を読んでお答えします。詳しいご相談は相談員におつなぎできます。",
        "clarify": "次のどれについてのご質問ですか？番号かボタンで選んでください。",
        "fallback": "申し訳ありません、そのご質問にはここでは正確にお答えできません。子育て支援コンシェルジュ（保育士）が直接お答えできます。",
        "fallback_again": "うまくお答えできず申し訳ありません。相談員におつなぎしますね。",
        "answer_source": "最新の情報は各窓口でご確認ください（出典：{url}　確認日：{checked}）",
        "handoff_offer": "相談員と話す",
        "consent": (
            "相談員におつなぎする前に、記録について確認させてください。\n"
            "・記録する内容：このチャットでのご相談のやりとり（お名前や電話番号はうかがいません）\n"
            "・目的：相談員がご相談に対応し、必要な支援や窓口におつなぎするため\n"
            "・見られる人：子育て支援コンシェルジュと担当の職員だけです\n"
            "・保存期間：やりとりはご相談の終了から{transcript_years}年、相談記録は{case_years}年で廃棄します\n"
            "・取り消し：いつでも「同意を取り消す」と送ると、それ以降は記録しません\n"
            "記録に同意していただけますか？"
        ),
        "consent_yes": "はい（同意する）",
        "consent_no": "いいえ",
        "consent_expired": "この確認の期限が切れています。相談員と話したい場合は、もう一度「相談員と話したい」と送ってください。",
        "consent_retry": "「はい」か「いいえ」でお答えください。",
        "declined": "承知しました。内容は記録しません。引き続きよくある質問にはお答えします。相談員と直接話したいときは、下記の電話・メールでご連絡ください。",
        "handoff_open": "ありがとうございます。相談員におつなぎしました（受付番号 {case_id}）。相談員から順番にこのトークでお返事します。続けてご相談内容を送っていただいても大丈夫です。",
        "handoff_closed": "ありがとうございます。ご相談を受け付けました（受付番号 {case_id}）。ただいま受付時間外のため、{next_open}以降に相談員からこのトークでお返事します。受付時間：{hours}",
        "handoff_already": "相談員におつなぎ済みです（受付番号 {case_id}）。お返事まで少しお待ちください。",
        "withdrawn": "同意を取り消しました。これ以降、このチャットの内容は記録しません。これまでの記録の確認や削除をご希望の場合は、子育て支援コンシェルジュにお伝えください。",
        "withdraw_none": "現在、記録への同意はいただいていません。内容は記録していません。",
        "stale_choice": "その選択肢は古くなっています。もう一度ご質問を送ってください。",
        "resolved": "相談員とのやりとりが終了しました。またいつでもご質問ください。",
    },
    "en": {
        "empty": 'Please send your question as text, for example: "How much is temporary childcare?"',
        "media": "Sorry, this chat can only read text messages. Please send your question as text.",
        "group": "Consultations are one-to-one. Please send us a message in a private chat.",
        "too_long": "Thank you for your long message. We read the first part to answer; a concierge can help with the details.",
        "clarify": "Which of these is your question about? Choose a number or a button.",
        "fallback": "Sorry, we can't give you a reliable answer to that here. The child-rearing concierge (a nursery teacher) can answer you directly.",
        "fallback_again": "Sorry we couldn't answer. Let us connect you with a concierge.",
        "answer_source": "Please check the latest information with the office (source: {url}, checked {checked}).",
        "handoff_offer": "Talk to a concierge",
        "consent": (
            "Before we connect you with a concierge, please read how your consultation is recorded.\n"
            "- What: the messages of this consultation (we do not ask your name or phone number)\n"
            "- Why: so the concierge can help you and connect you with the right services\n"
            "- Who sees it: only the child-rearing concierge and the staff in charge\n"
            "- How long: messages {transcript_years} year(s) after the consultation ends, case records {case_years} years; then they are destroyed\n"
            '- Withdraw: send "withdraw consent" at any time and nothing more is recorded\n'
            "Do you agree to this record?"
        ),
        "consent_yes": "Yes, I agree",
        "consent_no": "No",
        "consent_expired": 'This confirmation has expired. If you want to talk to a concierge, send "talk to a person" again.',
        "consent_retry": "Please answer yes or no.",
        "declined": "Understood. Nothing will be recorded. We will still answer common questions. To talk to a concierge directly, please call or email:",
        "handoff_open": "Thank you. You are now connected with a concierge (case {case_id}). They will reply in this chat. You can go on writing your question here.",
        "handoff_closed": "Thank you. Your consultation is registered (case {case_id}). We are closed now; a concierge will reply in this chat from {next_open}. Opening hours: {hours}",
        "handoff_already": "You are already connected with a concierge (case {case_id}). Please wait for their reply.",
        "withdrawn": "Your consent is withdrawn. From now on nothing in this chat is recorded. To see or delete earlier records, please tell the concierge.",
        "withdraw_none": "You have not agreed to any record, so nothing is recorded.",
        "stale_choice": "That choice is no longer valid. Please send your question again.",
        "resolved": "Your conversation with the concierge has ended. Ask us anything, any time.",
    },
}


def t(lang: str, key: str, **values: object) -> str:
    table = TEXTS.get(lang) or TEXTS["en"]
    return table[key].format(**values)


def _folded(text: str) -> str:
    return to_hiragana(clean(text))


_TRIM = re.compile(r"[\s。、.!！?？]+$")


class PhraseBook:
    """The KB's conversation phrases, folded once: asking for a person, withdrawing consent, yes/no."""

    SOUND_MIN_LEN = 5

    def __init__(self, phrases: Phrases, normalizer: Normalizer | None = None) -> None:
        self._norm = normalizer
        self._handoff = self._pattern(phrases.handoff)
        self._withdraw = self._pattern(phrases.withdraw)
        # Japanese phrases also by sound, so kana-only writing (たんとうしゃとはなしたい) is understood.
        self._handoff_sounds = self._sounds(phrases.handoff.get("ja", []))
        self._withdraw_sounds = self._sounds(phrases.withdraw.get("ja", []))
        self._yes = {_TRIM.sub("", _folded(w)) for ws in phrases.yes.values() for w in ws}
        self._no = {_TRIM.sub("", _folded(w)) for ws in phrases.no.values() for w in ws}

    @staticmethod
    def _pattern(by_lang: dict[str, list[str]]) -> re.Pattern[str] | None:
        words = sorted({_folded(w) for ws in by_lang.values() for w in ws}, key=len, reverse=True)
        return re.compile("|".join(re.escape(w) for w in words)) if words else None

    def _sounds(self, words: list[str]) -> list[str]:
        if self._norm is None:
            return []
        sounds = {self._norm(w).sound.replace(" ", "") for w in words}
        return sorted(s for s in sounds if len(s) >= self.SOUND_MIN_LEN)

    def _search(self, pattern: re.Pattern[str] | None, sounds: list[str], text: str) -> bool:
        if pattern is None:
            return False
        folded = _folded(text)
        # Japanese is often written with spaces between words (にんげんの ひとと はなしたい).
        if pattern.search(folded) or pattern.search(folded.replace(" ", "")):
            return True
        if sounds and self._norm is not None:
            heard = self._norm(text[:2000]).sound.replace(" ", "")
            return any(s in heard for s in sounds)
        return False

    def wants_person(self, text: str) -> bool:
        return self._search(self._handoff, self._handoff_sounds, text)

    def wants_withdraw(self, text: str) -> bool:
        return self._search(self._withdraw, self._withdraw_sounds, text)

    def yes_no(self, text: str) -> bool | None:
        """True for yes, False for no, None for anything else."""
        folded = _TRIM.sub("", _folded(text))
        if folded in self._yes:
            return True
        if folded in self._no:
            return False
        return None
