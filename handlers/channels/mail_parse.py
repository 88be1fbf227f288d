"""Reading real-world mail: charsets as Japanese mailers really write them, HTML-only bodies, quoted replies,
signatures, attachments and automated mail. Pure functions over bytes; nothing here raises on bad input.

Japanese mail in the wild: "Shift_JIS" is Windows' cp932; "ISO-2022-JP" from Windows (CP50220) carries NEC and
IBM extension characters (①, ㈱, 髙) that Python's iso2022_jp rejects, so it is transcoded to cp932; headers
may hold raw 8-bit bytes instead of encoded words. Every decode ends in errors="replace" rather than failing.
"""

from __future__ import annotations

import email
import email.errors
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

    sender: str | None  # the address inside From's <...>, lower-cased; None when From is unreadable
    message_id: str | None
    in_reply_to: str | None
    references: tuple[str, ...]
    subject: str  # decoded, prefixes kept
    body: str  # the parent's own words: quotes and signature stripped
    attachments: tuple[Attachment, ...] = ()
    automated: str | None = None  # why this is not a person writing (auto-reply, bounce, list ...), or None
    content_language: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    display_name: str = ""  # From's decoded display name: shown to staff, never an address
    from_problem: str | None = None  # why From gives no single sender (none, several, malformed), or None
    auth: str = "none"  # our receiving server's verdict on the sender: pass | fail | none (no trusted result)
    auth_detail: str = ""  # e.g. "dmarc=fail": for staff, no addresses


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


# ----- the sender: From by its structure


@dataclass(frozen=True)
class Origin:
    address: str | None
    display_name: str = ""
    problem: str | None = None  # none | several | malformed


# Defects of the local part alone (Japanese mobile addresses such as "taro..x.@docomo.ne.jp" are common and
# deliverable); any other structural defect makes the address list ambiguous, and it is refused.
_TOLERATED_DEFECT = re.compile(r"local.part|repeated '\.'|non-ascii|undecodable", re.IGNORECASE)


def parse_from(msg: Message) -> Origin:
    """The sender of `msg`: the addr-spec of its single From mailbox (the part in <...>). Encoded words are
    decoded in the display name only, so a display name that looks like an address never becomes the sender.
    No From, several From headers or several mailboxes, or a list the parser had to guess at: no sender."""
    try:
        raw_values = _raw_values(msg, "from")
    except Exception:
        return Origin(None, problem="malformed")
    if not raw_values or not "".join(raw_values).strip():
        return Origin(None, problem="none")
    if len(raw_values) > 1:
        return Origin(None, problem="several")
    try:
        header = msg.get_all("From", [])
        mailboxes = [a for h in header for a in getattr(h, "addresses", ())]
        defects = [d for h in header for d in getattr(h, "defects", ())]
        if not header or not all(hasattr(h, "addresses") for h in header):
            raise ValueError("not an address header")
        pairs = [(str(a.display_name), str(a.addr_spec)) for a in mailboxes]
    except Exception:
        # The header registry refuses some values outright (a display name that decodes to CR/LF): read the
        # raw, still-encoded value with the classic parser, then decode the display name alone.
        pairs = email.utils.getaddresses([raw_values[0].replace("\r", " ").replace("\n", " ")])
        defects = []
        if raw_values[0].count("<") > 1 or raw_values[0].count(">") > 1:
            return Origin(None, problem="several")
    pairs = [(name, addr) for name, addr in pairs if name or addr]
    if not pairs:
        return Origin(None, problem="none")
    if len(pairs) > 1:
        return Origin(None, problem="several")
    if any(isinstance(d, email.errors.InvalidHeaderDefect) and not _TOLERATED_DEFECT.search(str(d)) for d in defects):
        return Origin(None, problem="malformed")
    name, addr = pairs[0]
    address = addr.strip().lower()
    if not (address.isascii() and 3 <= len(address) <= 254 and _ADDRESS.match(address)):
        return Origin(None, problem="malformed")
    return Origin(address, display_name=safe_header_text(decode_header_value(_undo_surrogates(name)))[:200])


def _raw_values(msg: Message, name: str) -> list[str]:
    """Every value of header `name`, unparsed (a message may carry a header several times)."""
    items = msg.raw_items() if isinstance(msg, EmailMessage) else msg.items()
    return [str(v) for k, v in items if str(k).strip().lower() == name]


def _undo_surrogates(value: str) -> str:
    """policy.default keeps raw 8-bit header bytes as surrogates: give them back to the charset guesser."""
    if any("\udc80" <= ch <= "\udcff" for ch in value):
        return decode_bytes(value.encode("utf-8", "surrogateescape"), None)
    return value


def safe_header_text(value: str) -> str:
    """A header value we write: every control character (CR, LF, tabs, NUL ...) becomes a space, white space
    collapsed. Applied to everything we put in a header, whatever its source."""
    return " ".join("".join(" " if unicodedata.category(ch)[0] == "C" else ch for ch in value).split())


# ----- Authentication-Results (RFC 8601) from our own receiving server

_AUTH_METHODS = ("dmarc", "dkim", "spf")
_AUTH_COMMENT = re.compile(r"\([^()]*\)")
_AUTH_RESULT = re.compile(r"^\s*([a-z0-9_-]+)\s*=\s*([a-z]+)\b(.*)$", re.IGNORECASE | re.DOTALL)
_AUTH_PROP = re.compile(r"([a-z0-9_-]+\.[a-z0-9_-]+)\s*=\s*\"?([^\s;\"]+)", re.IGNORECASE)


def authentication(values: list[str], authserv_id: str | None, sender: str | None) -> tuple[str, str]:
    """Our receiving server's verdict on the sender: ("pass" | "fail" | "none", detail such as "dmarc=fail").

    Only a header whose authserv-id is ours counts, and of those the topmost (our server prepends its own,
    and must remove incoming ones that claim its id, RFC 8601 section 5). DMARC decides when it has a result;
    otherwise a DKIM or SPF pass for the From domain (or a parent or child of it) is a pass, and any
    dkim/spf fail is a fail. Anything else (no header of ours, temperror, none, neutral): "none"."""
    wanted = (authserv_id or "").strip().lower()
    if not wanted:
        return "none", ""
    for value in values:
        text = _AUTH_COMMENT.sub(" ", safe_header_text(value))
        parts = text.split(";")
        head = parts[0].split()
        if not head or head[0].lower() != wanted:
            continue
        results: dict[str, list[tuple[str, dict[str, str]]]] = {}
        for part in parts[1:]:
            m = _AUTH_RESULT.match(part)
            if m is None:
                continue
            method, result = m.group(1).lower(), m.group(2).lower()
            props = {k.lower(): v.lower() for k, v in _AUTH_PROP.findall(m.group(3))}
            results.setdefault(method, []).append((result, props))
        return _verdict(results, sender)
    return "none", ""


def _verdict(results: dict[str, list[tuple[str, dict[str, str]]]], sender: str | None) -> tuple[str, str]:
    domain = sender.rsplit("@", 1)[1] if sender and "@" in sender else ""
    dmarc = [r for r, _ in results.get("dmarc", [])]
    if "fail" in dmarc:
        return "fail", "dmarc=fail"
    if "pass" in dmarc:
        return "pass", "dmarc=pass"
    keys = {"dkim": ("header.d", "header.i"), "spf": ("smtp.mailfrom", "smtp.helo")}
    for method in ("dkim", "spf"):
        for result, props in results.get(method, []):
            if result == "pass" and any(_aligned(props.get(k, ""), domain) for k in keys[method]):
                return "pass", f"{method}=pass"
    for method in ("dkim", "spf"):
        if any(result == "fail" for result, _ in results.get(method, [])):
            return "fail", f"{method}=fail"
    found = ", ".join(f"{m}={r}" for m in _AUTH_METHODS for r, _ in results.get(m, []))
    return "none", found


def _aligned(value: str, domain: str) -> bool:
    """Relaxed alignment without a public-suffix list: the same domain, or one a subdomain of the other
    (never a bare top-level domain)."""
    other = value.rsplit("@", 1)[-1].strip(".").lower()
    if not other or not domain or "." not in other:
        return False
    return other == domain or domain.endswith("." + other) or other.endswith("." + domain)


# ----- the first lines the parent wrote (an answer to a question by mail)

_SIG_LINE = re.compile(
    r"(0\d{1,4}[-ー－‐(（]?\d{1,4}[-ー－‐)）]?\d{3,4}"  # a phone number
    r"|(tel|fax|電話|携帯|℡)\s*[:：.]"
    r"|@[a-z0-9-]+\.[a-z]"  # an address
    r"|https?://|www\."
    r"|株式会社|有限会社|合同会社|（株）|\(株\)|㈱|㈲|\binc\b|\bco\.,?\s*ltd"
    r"|〒\s*\d{3}|^\s*[-=_*~・]{2,})",
    re.IGNORECASE,
)


def first_lines(body: str) -> list[str]:
    """Candidates for the answer the parent wrote first, shortest first: the first line, then the first
    paragraph up to its first line that looks like a signature (a phone, an address, a company, a rule).
    Japanese signatures rarely start with "-- ": after a blank line, or even directly, come a name, a phone
    and a company line, and the answer must still be read from what stands above them."""
    lines = [ln.strip() for ln in body.replace("\r\n", "\n").split("\n")]
    while lines and not lines[0]:
        lines.pop(0)
    if not lines:
        return []
    out = [lines[0]]
    paragraph: list[str] = []
    for line in lines:
        if not line or _SIG_LINE.search(line):
            break
        paragraph.append(line)
    joined = "\n".join(paragraph)
    if len(paragraph) > 1 and joined not in out:
        out.append(joined)
    return out


_SENTENCE = re.compile(r"[。、？！?!.,]")
_NAME_LINE_MAX = 24


def rest_after(body: str, answer: str) -> str:
    """What the parent wrote after `answer` (one of `first_lines`), without the signature: lines that look
    like one (phone, address, company, rule) and paragraphs of short lines without any sentence mark (a
    name, a department). Empty when nothing but a signature follows."""
    lines = [ln.strip() for ln in body.replace("\r\n", "\n").split("\n")]
    while lines and not lines[0]:
        lines.pop(0)
    lines = lines[len(answer.split("\n")) :]
    paragraphs: list[list[str]] = [[]]
    for line in lines:
        if not line:
            paragraphs.append([])
        elif not _SIG_LINE.search(line):
            paragraphs[-1].append(line)
    kept = [p for p in paragraphs if p and not all(len(ln) <= _NAME_LINE_MAX and not _SENTENCE.search(ln) for ln in p)]
    return "\n\n".join("\n".join(p) for p in kept)


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


def parse_mail(raw: bytes, *, authserv_id: str | None = None) -> Mail:
    """Everything the channel reads from one RFC 822 message. Never raises. `authserv_id`: our receiving
    server's id in Authentication-Results; without it no such header is trusted."""
    try:
        msg: Message = email.message_from_bytes(raw, policy=policy.default)
    except Exception:
        msg = email.message_from_bytes(raw, policy=policy.compat32)
    headers = read_headers(msg)
    origin = parse_from(msg)
    sender = origin.address
    auth, auth_detail = authentication(_raw_values(msg, "authentication-results"), authserv_id, sender)
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
        automated=automated_reason(headers, types, sender) if origin.problem is None else None,
        content_language=lang.split("-")[0] if lang else None,
        headers=headers,
        display_name=origin.display_name,
        from_problem=origin.problem,
        auth=auth,
        auth_detail=auth_detail,
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
