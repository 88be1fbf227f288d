"""Reading real-world mail: charsets as Japanese mailers really write them, HTML-only bodies, quoted replies,
signatures, attachments and automated mail. Pure functions over bytes; nothing here raises on bad input.

Japanese mail in the wild: "Shift_JIS" is Windows' cp932; "ISO-2022-JP" from Windows (CP50220) carries NEC and
IBM extension characters (①, ㈱, 髙) that Python's iso2022_jp rejects, so it is transcoded to cp932; headers
may hold raw 8-bit bytes instead of encoded words. Every decode ends in errors="replace" rather than failing.
"""

from __future__ import annotations

import email
import email.header
import email.utils
import re
import unicodedata
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage, Message
from html.parser import HTMLParser

# ----- charsets

_CHARSET_ALIASES = {
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "x-sjis": "cp932",
    "s-jis": "cp932",
    "ms_kanji": "cp932",
    "csshiftjis": "cp932",
    "windows-31j": "cp932",
    "ms932": "cp932",
    "cp932": "cp932",
    "iso-2022-jp": "iso2022_jp",
    "iso2022-jp": "iso2022_jp",
    "csiso2022jp": "iso2022_jp",
    "iso-2022-jp-1": "iso2022_jp",
    "iso-2022-jp-2": "iso2022_jp",
    "iso-2022-jp-3": "iso2022_jp",
    "iso-2022-jp-2004": "iso2022_jp",
    "euc-jp": "euc_jp",
    "x-euc-jp": "euc_jp",
    "eucjp": "euc_jp",
    "us-ascii": "ascii",
    "ascii": "ascii",
    "iso-8859-1": "cp1252",  # mislabelled Windows text is the common case
    "latin-1": "cp1252",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "ks_c_5601-1987": "cp949",
    "utf8": "utf-8",
}
# What to try after the declared charset fails, before giving up with replacement characters.
_FALLBACKS = {
    "iso2022_jp": ["cp5022x", "iso2022_jp_2004", "iso2022_jp_ext"],
    "euc_jp": ["euc_jis_2004"],
    "ascii": ["utf-8", "cp932", "euc_jp"],  # 8-bit text labelled us-ascii (or not labelled at all)
}
_GUESS = ["utf-8", "cp932", "euc_jp"]


def _codec(charset: str | None) -> str | None:
    if not charset:
        return None
    label = charset.strip().strip('"').lower()
    return _CHARSET_ALIASES.get(label, label)


def _jis_to_cp932(data: bytes, errors: str = "strict") -> str:
    """ISO-2022-JP as Windows writes it (CP50220/50221/50222): JIS pairs mapped to Shift_JIS arithmetically,
    so NEC row 13 and IBM extensions decode through cp932."""
    out = bytearray()
    mode = "ascii"
    i, n = 0, len(data)
    while i < n:
        b = data[i]
        if b == 0x1B:
            seq = data[i + 1 : i + 3]
            if seq in (b"$B", b"$@"):
                mode, i = "jis", i + 3
                continue
            if seq in (b"(B", b"(J"):
                mode, i = "ascii", i + 3
                continue
            if seq == b"(I":
                mode, i = "kana", i + 3
                continue
            if errors == "strict":
                raise UnicodeDecodeError("cp5022x", data, i, i + 1, "unknown escape sequence")
            i += 1
            continue
        if b == 0x0E:  # SO: half-width katakana (CP50222)
            mode, i = "kana", i + 1
            continue
        if b == 0x0F:  # SI
            mode, i = "ascii", i + 1
            continue
        if b in (0x0A, 0x0D):
            out.append(b)
            i += 1
            continue
        if mode == "jis" and i + 1 < n and 0x21 <= b <= 0x7E and 0x21 <= data[i + 1] <= 0x7E:
            j1, j2 = b, data[i + 1]
            s1 = ((j1 + 1) >> 1) + (0x70 if j1 <= 0x5E else 0xB0)
            s2 = j2 + (0x7E if j1 % 2 == 0 else (0x1F if j2 <= 0x5F else 0x20))
            out += bytes((s1, s2))
            i += 2
            continue
        if mode == "kana" and 0x21 <= b <= 0x5F:
            out.append(b + 0x80)
            i += 1
            continue
        if b >= 0x80 and errors == "strict":
            raise UnicodeDecodeError("cp5022x", data, i, i + 1, "8-bit byte in a 7-bit encoding")
        out.append(b)
        i += 1
    return bytes(out).decode("cp932", errors=errors)


def _try(data: bytes, codec: str) -> str | None:
    try:
        if codec == "cp5022x":
            return _jis_to_cp932(data)
        return data.decode(codec)
    except (UnicodeDecodeError, LookupError):
        return None


def decode_bytes(data: bytes, charset: str | None) -> str:
    """Text from `data` labelled `charset`: the label, its known fallbacks, a guess, then replacement."""
    codec = _codec(charset)
    if codec is None:
        codec = "iso2022_jp" if b"\x1b$" in data or b"\x1b(" in data else "ascii"
    if codec == "utf-8":
        return _utf8(data)
    for c in [codec, *_FALLBACKS.get(codec, [])]:
        text = _try(data, c)
        if text is not None:
            return text
    if codec == "iso2022_jp":
        return _jis_to_cp932(data, errors="replace")
    try:
        return data.decode(codec, errors="replace")
    except LookupError:  # a charset Python does not know: guess
        for c in _GUESS:
            text = _try(data, c)
            if text is not None:
                return text
        return data.decode("utf-8", errors="replace")


def _utf8(data: bytes) -> str:
    """UTF-8 with stray bad bytes replaced; but Shift_JIS text mislabelled as UTF-8 (a quarter or more of its
    non-ASCII characters invalid) is read as cp932 when that reads cleanly."""
    text = data.decode("utf-8", errors="replace")
    bad = text.count("\ufffd")
    if bad:
        wide = sum(1 for ch in text if ord(ch) > 0x7F)
        alt = _try(data, "cp932")
        if bad * 4 >= wide and alt is not None and not any("\ue000" <= ch <= "\uf8ff" for ch in alt):
            return alt
    return text


def decode_header_value(value: str) -> str:
    """A header's text: encoded words decoded, raw 8-bit bytes guessed, control characters removed."""
    if any("\udc80" <= ch <= "\udcff" for ch in value) or any(ord(ch) > 0x7F for ch in value):
        raw = value.encode("utf-8", "surrogateescape")
        value = decode_bytes(raw, None)
    try:
        parts = email.header.decode_header(value)
    except Exception:  # a malformed encoded word: keep what is there
        parts = [(value, None)]
    out = []
    for chunk, charset in parts:
        if isinstance(chunk, bytes) and charset is None:
            out.append(chunk.decode("raw-unicode-escape", errors="replace"))  # how decode_header encoded it
        elif isinstance(chunk, bytes):
            out.append(decode_bytes(chunk, charset))
        else:
            out.append(chunk)
    text = "".join(out)
    return " ".join("".join(ch if unicodedata.category(ch)[0] != "C" else " " for ch in text).split())


# ----- HTML

_BLOCK = {
    "p",
    "div",
    "br",
    "li",
    "tr",
    "table",
    "ul",
    "ol",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "pre",
    "section",
    "article",
    "header",
    "footer",
}
_SKIP = {"script", "style", "head", "title", "blockquote", "template", "noscript"}
_VOID = {"br", "hr", "img", "meta", "link", "input", "wbr", "col", "area", "base", "source"}


class _HTMLText(HTMLParser):
    """Visible text of an HTML mail; quoted parts (blockquote, Gmail's gmail_quote) are left out."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _VOID:
            if tag in _BLOCK and not self._skip:
                self.parts.append("\n")
            return
        classes = " ".join(v or "" for k, v in attrs if k == "class")
        if self._skip or tag in _SKIP or "gmail_quote" in classes or "moz-cite-prefix" in classes:
            self._skip.append(tag)
            return
        if tag in _BLOCK:
            self.parts.append("\n")
        if tag == "li":
            self.parts.append("・")

    def handle_endtag(self, tag: str) -> None:
        if self._skip:
            if tag in self._skip:
                while self._skip and self._skip.pop() != tag:
                    pass
            return
        if tag in _BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    parser = _HTMLText()
    try:
        parser.feed(html)
        parser.close()
    except Exception:  # HTMLParser is lenient; what was read so far is still better than nothing
        parser.parts.append("\n")
    lines = (" ".join(line.replace("\xa0", " ").split()) for line in "".join(parser.parts).split("\n"))
    return _squeeze("\n".join(lines))


# ----- quoted replies and signatures

_QUOTE_LINE = re.compile(r"^\s*[>＞|｜]")
_ATTRIBUTION = [
    re.compile(r"^\s*On\b.{0,300}\bwrote\s*:\s*$", re.IGNORECASE | re.DOTALL),
    re.compile(r"^.{0,200}\bwrote\s*:\s*$", re.IGNORECASE),
    re.compile(r"^\s*\d{4}\s*年\s*\d{1,2}\s*月\s*\d{1,2}\s*日.{0,200}[:：]\s*$"),
    re.compile(r"^\s*\d{4}[/\-.]\d{1,2}[/\-.]\d{1,2}.{0,200}[:：]\s*$"),
    re.compile(r"^.{0,200}(さん|様)?(は|が)書きました\s*[:：]?\s*$"),
    re.compile(r"^.{0,200}からのメッセージ\s*[:：]\s*$"),
]
_HARD_CUT = [
    re.compile(r"^\s*-{2,}\s*(Original Message|元のメッセージ|オリジナルメッセージ)\s*-{2,}\s*$", re.I),
    re.compile(r"^\s*-{2,}\s*(Forwarded message|転送されたメッセージ|転送メッセージ)\s*-{2,}\s*$", re.I),
    re.compile(r"^\s*_{10,}\s*$"),  # Outlook's line above the quoted header block
    re.compile(r"^\s*(Begin forwarded message|転送されたメッセージ)\s*[:：]\s*$", re.I),
]
_HEADER_BLOCK = re.compile(r"^\s*(From|差出人|送信者)\s*[:：]")
_HEADER_NEXT = re.compile(r"^\s*(Sent|Date|To|Subject|送信日時|日時|宛先|件名)\s*[:：]")
_SIG_DASHES = re.compile(r"^--\s*$")
_RULE = re.compile(r"^\s*[-=_*~・.―－＝＊─━〜～※◆◇■□●○☆★♪]{4,}\s*$")
_SIG_MAX_LINES = 8
_SIG_MAX_CHARS = 400
_COURTESY = re.compile(
    r"^("
    r"(いつも)?お世話になって(おり|い)ます|お世話になります|はじめまして|初めまして|"
    r"突然の(ご)?(メール|連絡)(で|を)?(失礼|申し訳(ございません|ありません))(いた|致)?(します|しました)?|"
    r"(どうぞ)?(よろしく|宜しく)(お願い(いた|致|申し上げ)?(します|ます)?)?|"
    r"(以上、?)?(どうぞ)?(よろしく|宜しく)お願い(いた|致|申し上げ)?(します|ます)|"
    r"お願い(いた|致)?します|(ありがとうございます|ありがとうございました)|以上です|以上|"
    r"thanks?( you)?|best regards|kind regards|regards|best|cheers|hi|hello|dear [^\n]{0,40}"
    r")[。、.!！,，\s]*$",
    re.IGNORECASE,
)


def _squeeze(text: str) -> str:
    """Trailing spaces off, at most one blank line in a row, no blank lines at the ends."""
    out: list[str] = []
    for line in text.split("\n"):
        line = line.rstrip()
        if not line and (not out or not out[-1]):
            continue
        out.append(line)
    return "\n".join(out).strip()


def _is_attribution(lines: list[str], i: int) -> int:
    """How many lines the attribution at `i` takes (0: none). "On ... wrote:" may wrap onto a second line."""
    line = lines[i]
    if any(p.match(line) for p in _ATTRIBUTION):
        return 1
    if i + 1 < len(lines) and re.match(r"^\s*On\b", line) and re.search(r"wrote\s*:\s*$", lines[i + 1]):
        return 2
    if i + 1 < len(lines) and re.match(r"^\s*\d{4}\s*年", line) and re.search(r"[:：]\s*$", lines[i + 1]):
        joined = line + " " + lines[i + 1]
        if any(p.match(joined) for p in _ATTRIBUTION[2:3]) and "@" in joined:
            return 2
    return 0


def strip_reply(text: str) -> str:
    """The parent's own words: quoted replies, forwarded parts, signatures and courtesy lines removed."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    # A hard marker (Original Message, Outlook header block, forward) ends the new text.
    for i, line in enumerate(lines):
        header_block = _HEADER_BLOCK.match(line) and i + 1 < len(lines) and _HEADER_NEXT.match(lines[i + 1])
        if any(p.match(line) for p in _HARD_CUT) or header_block:
            lines = lines[:i]
            break
    kept: list[str] = []
    i = 0
    while i < len(lines):
        span = _is_attribution(lines, i)
        if span:
            i += span
            continue
        if not _QUOTE_LINE.match(lines[i]):
            kept.append(lines[i])
        i += 1
    kept = _cut_signature(kept)
    body = _squeeze("\n".join(kept))
    lines = [_drop_courtesy_tail(ln) for ln in body.split("\n")]
    if any(ln.strip() and not _COURTESY.match(ln.strip()) for ln in lines):
        body = _squeeze("\n".join(ln for ln in lines if not ln.strip() or not _COURTESY.match(ln.strip())))
    return body


_LAST_CLAUSE = re.compile(r"^(.+?)([、,，。.!！?？\s]+)([^、,，。.!！?？\s]+)[。.!！\s]*$")


def _drop_courtesy_tail(line: str) -> str:
    """「はい、お願いします。」 → 「はい」: a closing courtesy after the words adds nothing (and hides a yes)."""
    while True:
        m = _LAST_CLAUSE.match(line.strip())
        if m is None or not _COURTESY.match(m.group(3)):
            return line
        line = m.group(1) + "".join(ch for ch in m.group(2) if ch in "。.!！?？")  # a comma or space goes


def _cut_signature(lines: list[str]) -> list[str]:
    """Cut at "-- " or a decorative rule line when what follows is short enough to be a signature."""
    for i, line in enumerate(lines):
        if not (_SIG_DASHES.match(line) or _RULE.match(line)):
            continue
        before = "\n".join(lines[:i]).strip()
        after = [ln for ln in lines[i + 1 :] if ln.strip()]
        if before and len(after) <= _SIG_MAX_LINES and sum(len(ln) for ln in after) <= _SIG_MAX_CHARS:
            return lines[:i]
        if _SIG_DASHES.match(line) and before:
            return lines[:i]  # "-- " is the standard delimiter: trust it whatever follows
    return lines


# ----- subjects

_REPLY_PREFIX = re.compile(
    r"^\s*((re|fwd?|aw|sv|vs|wg|tr|rif|返信|返|転送|答复|回复|転)\s*(\[\d+\]|\(\d+\)|\^\d+)?\s*[:：>]\s*)+",
    re.IGNORECASE,
)


def clean_subject(subject: str) -> tuple[str, bool]:
    """The subject without Re:/Fwd:/RE：/転送: prefixes, and whether there were any."""
    folded = unicodedata.normalize("NFKC", subject)
    m = _REPLY_PREFIX.match(folded)
    if not m:
        return subject.strip(), False
    return folded[m.end() :].strip(), True


# ----- messages

_MSGID = re.compile(r"<[^<>\s]{1,250}>")
_DAEMONS = {"mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon"}
_NOREPLY = re.compile(r"^(no[-_.]?reply|do[-_.]?not[-_.]?reply|donotreply)([-_.+].*)?$")
_ADDRESS = re.compile(r"^[^\s@<>()\[\],;:\"]+@[^\s@<>()\[\],;:\"]+$")
_BOUNCE_TYPES = {
    "multipart/report",
    "message/delivery-status",
    "message/global-delivery-status",
    "message/disposition-notification",
    "message/feedback-report",
}


@dataclass(frozen=True)
class Attachment:
    content_type: str
    size: int  # bytes as received (before any trimming by the poller)


@dataclass(frozen=True)
class Mail:
    """What the channel needs from one message."""

    sender: str | None  # normalised From address
    message_id: str | None
    in_reply_to: str | None
    references: tuple[str, ...]
    subject: str  # decoded, prefixes kept
    body: str  # the parent's own words: quotes and signature stripped
    attachments: tuple[Attachment, ...] = ()
    automated: str | None = None  # why this is not a person writing (auto-reply, bounce, list ...), or None
    content_language: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


def normalise_address(value: str | None) -> str | None:
    """The address in a From-like header value, lower-cased; None when there is no usable address."""
    if not value:
        return None
    value = value.replace("\r", " ").replace("\n", " ")
    try:
        pairs = email.utils.getaddresses([value])
    except Exception:
        pairs = []
    candidates: list[str] = [str(addr) for _, addr in pairs] + re.findall(r"[^\s<>\"',;:()]+@[^\s<>\"',;:()]+", value)
    for addr in candidates:
        addr = addr.strip().strip("<>").lower()
        if addr.startswith("mailto:"):
            addr = addr[len("mailto:") :]
        if 3 <= len(addr) <= 254 and _ADDRESS.match(addr):
            return addr
    return None


def message_ids(value: str | None) -> list[str]:
    return [str(m) for m in _MSGID.findall(value or "")]


def read_headers(msg: Message) -> dict[str, str]:
    """Headers by lower-case name (first occurrence), decoded, without ever raising."""
    out: dict[str, str] = {}
    try:
        items = list(msg.raw_items()) if isinstance(msg, EmailMessage) else list(msg.items())
    except Exception:
        return out
    for name, value in items:
        key = str(name).strip().lower()
        if key in out:
            continue
        try:
            out[key] = decode_header_value(str(value))
        except Exception:
            out[key] = ""
    return out


def automated_reason(headers: dict[str, str], content_types: list[str], sender: str | None) -> str | None:
    """Why a message comes from a machine (and must not be answered), or None for a person."""
    auto = headers.get("auto-submitted", "").strip().lower()
    if auto and not auto.startswith("no"):
        return "auto-submitted"
    if headers.get("precedence", "").strip().lower() in {"bulk", "list", "junk", "auto_reply"}:
        return "precedence"
    if any(h in headers for h in ("list-id", "list-unsubscribe", "list-post")):
        return "list"
    suppress = headers.get("x-auto-response-suppress", "").lower()
    if any(w in suppress for w in ("all", "autoreply", "oof")):
        return "auto-response-suppress"
    if any(h in headers for h in ("x-autoreply", "x-autorespond", "x-auto-reply")):
        return "auto-reply"
    if any(ct in _BOUNCE_TYPES for ct in content_types):
        return "bounce"
    if headers.get("return-path", "").strip() == "<>":
        return "bounce"
    if sender is None:
        return "no-sender"
    local = sender.split("@", 1)[0]
    if local in _DAEMONS:
        return "daemon"
    if _NOREPLY.match(local):
        return "no-reply"
    return None


def _is_attachment(part: Message, parent_type: str) -> bool:
    ctype = part.get_content_type()
    try:
        disposition = (part.get_content_disposition() or "").lower()
        filename = part.get_filename()
    except Exception:
        disposition, filename = "attachment", None
    if disposition == "attachment":
        return True
    if ctype in ("text/plain", "text/html") and not filename:
        return False
    # Inline images of an HTML mail (logos, signatures) are layout, not something the parent sent.
    return not (parent_type == "multipart/related" and part.get("Content-ID") and disposition != "attachment")


def _walk(msg: Message) -> tuple[list[Message], list[Message], list[Attachment], list[str]]:
    """Plain parts, HTML parts, attachments and every content type, in order; message/* parts not entered."""
    plain: list[Message] = []
    html: list[Message] = []
    attachments: list[Attachment] = []
    types: list[str] = []

    def visit(part: Message, parent_type: str) -> None:
        ctype = part.get_content_type()
        types.append(ctype)
        if part.is_multipart() and ctype.startswith("multipart/"):
            for sub in part.get_payload() or []:
                if isinstance(sub, Message):
                    visit(sub, ctype)
            return
        if ctype.startswith("multipart/"):  # a multipart without a usable boundary: read it as text
            plain.append(part)
            return
        if ctype.startswith("message/") and ctype not in _BOUNCE_TYPES:
            attachments.append(Attachment(ctype, _size(part)))
            return
        if ctype in _BOUNCE_TYPES:
            return
        if _is_attachment(part, parent_type):
            attachments.append(Attachment(ctype, _size(part)))
        elif ctype == "text/html":
            html.append(part)
        elif ctype == "text/plain":
            plain.append(part)

    visit(msg, "")
    return plain, html, attachments, types


def _size(part: Message) -> int:
    declared = part.get("X-Concierge-Attachment-Size")
    if declared and str(declared).strip().isdigit():
        return int(str(declared).strip())
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        return 0
    return len(payload) if isinstance(payload, bytes) else 0


def part_text(part: Message) -> str:
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        payload = None
    if not isinstance(payload, bytes):
        raw = part.get_payload()
        return raw if isinstance(raw, str) else ""
    try:
        charset = part.get_content_charset()
    except Exception:
        charset = None
    return decode_bytes(payload, charset)


def parse_mail(raw: bytes) -> Mail:
    """Everything the channel reads from one RFC 822 message. Never raises."""
    try:
        msg: Message = email.message_from_bytes(raw, policy=policy.default)
    except Exception:
        msg = email.message_from_bytes(raw, policy=policy.compat32)
    headers = read_headers(msg)
    sender = normalise_address(headers.get("from"))
    try:
        plain, html, attachments, types = _walk(msg)
    except Exception:
        plain, html, attachments, types = [], [], [], [msg.get_content_type()]
    texts = [part_text(p) for p in plain]
    body = "\n\n".join(t for t in texts if t.strip())
    if not body.strip() and html:
        body = "\n\n".join(html_to_text(part_text(p)) for p in html)
    lang = headers.get("content-language", "").split(",")[0].strip().lower() or None
    return Mail(
        sender=sender,
        message_id=next(iter(message_ids(headers.get("message-id"))), None),
        in_reply_to=next(iter(message_ids(headers.get("in-reply-to"))), None),
        references=tuple(message_ids(headers.get("references"))),
        subject=headers.get("subject", ""),
        body=strip_reply(body),
        attachments=tuple(attachments),
        automated=automated_reason(headers, types, sender),
        content_language=lang.split("-")[0] if lang else None,
        headers=headers,
    )


# ----- trimming before storage (the poller): attachments are never stored

TEXT_PART_LIMIT = 200_000  # characters of one text part kept: the engine reads far less


def strip_attachments(raw: bytes) -> bytes:
    """The message with every attachment's content removed (type, name and size kept) and huge text parts
    cut, so what is stored is the headers and the words. Falls back to the headers alone."""
    try:
        msg = email.message_from_bytes(raw, policy=policy.compat32)
        changed = False
        for part, parent_type in _leaves(msg, ""):
            ctype = part.get_content_type()
            if ctype in _BOUNCE_TYPES:
                continue
            if ctype.startswith("message/") or _is_attachment(part, parent_type):
                size = _size(part)
                _empty(part, size)
                changed = True
            elif ctype in ("text/plain", "text/html"):
                text = part_text(part)
                if len(text) > TEXT_PART_LIMIT:
                    del part["Content-Transfer-Encoding"]
                    part.set_payload(text[:TEXT_PART_LIMIT], charset="utf-8")
                    changed = True
        return msg.as_bytes() if changed else raw
    except Exception:
        return header_block(raw)


def _leaves(msg: Message, parent_type: str) -> list[tuple[Message, str]]:
    ctype = msg.get_content_type()
    if msg.is_multipart() and ctype.startswith("multipart/"):
        out: list[tuple[Message, str]] = []
        for sub in msg.get_payload() or []:
            if isinstance(sub, Message):
                out += _leaves(sub, ctype)
        return out
    return [(msg, parent_type)]


def _empty(part: Message, size: int) -> None:
    del part["Content-Transfer-Encoding"]
    del part["X-Concierge-Attachment-Size"]
    part["X-Concierge-Attachment-Size"] = str(size)
    part.set_payload("")


def header_block(raw: bytes) -> bytes:
    """The header section of a raw message (everything before the first empty line)."""
    for sep in (b"\r\n\r\n", b"\n\n"):
        end = raw.find(sep)
        if end >= 0:
            return raw[: end + len(sep)]
    return raw[:65536]
