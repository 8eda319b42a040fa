"""Parsing: raw RFC 5322 bytes into an `Incoming` value the rules can read.

Owns charset repair (Thai windows-874/TIS-620), HTML-to-text, attachments and
the message identity; it never raises on bad input: the error is recorded instead."""

from __future__ import annotations

import binascii
import codecs
import email
import email.errors
import email.parser
import email.policy
import hashlib
import re
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.header import decode_header, make_header
from email.headerregistry import BaseHeader, HeaderRegistry
from email.message import EmailMessage, Message
from email.utils import getaddresses, parseaddr, parsedate_to_datetime
from html.parser import HTMLParser

# Outlook labels Thai text "windows-874"; Python knows the codec only as cp874.
_ALIASES = {"windows_874": "cp874", "x_windows_874": "cp874", "x_cp874": "cp874"}


def _thai_codec_search(name: str) -> codecs.CodecInfo | None:
    target = _ALIASES.get(name.replace("-", "_").lower())
    return codecs.lookup(target) if target else None


codecs.register(_thai_codec_search)

MAX_TEXT = 1_000_000  # characters of body text kept for the rules


@dataclass(frozen=True)
class Attachment:
    name: str
    content_type: str
    size: int
    sha256: str
    data: bytes = field(repr=False, compare=False)


@dataclass(frozen=True)
class Forwarded:
    """The original sender of a message/rfc822 attached to the mail."""

    from_addr: str
    from_name: str
    reply_to: str
    subject: str
    message_id: str = ""


@dataclass(frozen=True)
class Incoming:
    identity: str
    message_id: str
    from_addr: str
    from_name: str
    reply_to: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    subject: str
    date_header: datetime | None
    text: str
    headers: dict[str, str]
    attachments: tuple[Attachment, ...] = ()
    forwarded: tuple[Forwarded, ...] = ()
    references: tuple[str, ...] = ()
    content_type: str = "text/plain"
    parse_error: str | None = None
    size: int = 0


# Headers the classifier reads (lower-case names).
_WATCHED = (
    "auto-submitted", "x-autoreply", "x-autorespond", "x-auto-response-suppress",
    "precedence", "list-id", "list-unsubscribe", "x-spam-flag", "x-spam-status",
    "return-path", "x-failed-recipients", "list-post",
)


def identity_of(raw: bytes, message_id: str) -> str:
    """Message-ID plus a hash of the body, so copies of one mail share an identity.

    The header block is left out of the hash: each delivery adds its own Received lines."""
    split = raw.find(b"\r\n\r\n")
    split = raw.find(b"\n\n") if split < 0 else split
    body = memoryview(raw)[split:] if split >= 0 else raw  # a view: no copy of a large body
    digest = hashlib.sha256(body).hexdigest()
    return hashlib.sha256(f"{message_id}\n{digest}".encode()).hexdigest()[:40]


@dataclass(frozen=True)
class ServerPart:
    """A large base64 part as the IMAP server split the message: its MIME header exactly
    as stored (BODY[n.MIME]), its content's length (BODYSTRUCTURE) and the boundary of
    the multipart holding it. With these the content is cut out of the raw message and
    decoded in one call, instead of going line by line through the stdlib parser."""

    header: bytes
    octets: int
    boundary: bytes


def parse(raw: bytes, parts: Sequence[ServerPart] = ()) -> Incoming:
    """Parse without raising: a broken message comes back with `parse_error` set.

    `parts` are what the IMAP server says of the message's large attachments; where they
    do not fit the raw bytes exactly, the whole message goes to the stdlib parser."""
    try:
        cut = _cut(raw, parts) if parts else None
        if cut is not None:
            try:
                return _incoming(_message(cut[0]), raw, cut[1])
            except Exception:  # the full parse below decides what is wrong
                pass
        return _incoming(_message(raw), raw)
    except Exception as exc:  # any parser failure is a needs_review message, not a crash
        message_id = _sniff_message_id(raw)
        return Incoming(
            identity=identity_of(raw, message_id), message_id=message_id, from_addr="",
            from_name="", reply_to="", to=(), cc=(), subject="", date_header=None, text="",
            headers={}, parse_error=f"{type(exc).__name__}: {exc}"[:300], size=len(raw),
        )


class _RememberingHeaders(HeaderRegistry):
    """The modern policy's header registry, remembering what it parsed: the stdlib parses
    a header anew at each access (a part's Content-Type a dozen times while the message
    is parsed and walked). Header objects are not changed once made; long ones are not
    kept, and the memory is cleared when it is full."""

    KEEP, LONGEST = 4096, 998

    def __init__(self) -> None:
        super().__init__()
        self._made: dict[tuple[str, str], BaseHeader] = {}

    def __call__(self, name: str, value: str) -> BaseHeader:
        if len(value) > self.LONGEST:
            return super().__call__(name, value)
        header = self._made.get((name, value))
        if header is None:
            if len(self._made) >= self.KEEP:
                self._made.clear()
            header = self._made[(name, value)] = super().__call__(name, value)
        return header


POLICY = email.policy.default.clone(header_factory=_RememberingHeaders())

FEED_CHUNK = 1 << 20


def _message(raw: bytes) -> EmailMessage:
    """The stdlib parser fed a megabyte at a time: given the whole message at once it
    first makes a text copy of all of it (a 25 MB scan would cost 25 MB more at the peak)."""
    parser = email.parser.BytesFeedParser(policy=POLICY)
    view = memoryview(raw)
    for start in range(0, len(raw), FEED_CHUNK):
        parser.feed(bytes(view[start:start + FEED_CHUNK]))
    return parser.close()  # type: ignore[return-value]


def _cut(raw: bytes, parts: Sequence[ServerPart]) -> tuple[bytes, dict[str, bytes]] | None:
    """The message with each located part's content replaced by a marker, and the
    decoded contents by marker; None unless every part is found exactly where the server
    put it: its header at a line start, `octets` of content, then its boundary."""
    token = secrets.token_hex(8)  # a mail cannot forge a marker it cannot know
    view = memoryview(raw)
    pieces: list[bytes | memoryview] = []
    contents: dict[str, bytes] = {}
    at = 0
    for index, part in enumerate(parts):
        if b":" not in part.header or not part.header.endswith((b"\r\n\r\n", b"\n\n")):
            return None
        start = raw.find(part.header, at)
        if start <= 0 or raw[start - 1] != 0x0A:
            return None
        begin = start + len(part.header)
        end = begin + part.octets
        if not any(raw.startswith(newline + b"--" + part.boundary, end)
                   for newline in (b"\r\n", b"\n")):
            return None
        try:
            data = binascii.a2b_base64(view[begin:end])
        except (binascii.Error, ValueError):
            return None  # damaged: the stdlib's lenient decoding
        marker = f"saraban-cut-{token}-{index}"
        contents[marker] = data
        pieces += [view[at:begin], marker.encode()]
        at = end
    pieces.append(view[at:])
    return b"".join(pieces), contents


def _decoded(part: Message) -> bytes:
    """A part's content, decoded. Base64 (nearly every attachment) is decoded from the
    parsed text directly, without the byte copy `get_payload(decode=True)` makes first."""
    if str(part.get("Content-Transfer-Encoding", "")).strip().lower() == "base64":
        payload = part.get_payload()
        if isinstance(payload, str):
            try:
                return binascii.a2b_base64(payload)
            except (binascii.Error, ValueError):
                pass  # damaged: the stdlib's lenient decoding below
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else b""


def _sniff_message_id(raw: bytes) -> str:
    found = re.search(rb"^message-id:\s*(<[^>\r\n]{1,250}>)", raw[:65536], re.I | re.M)
    return found.group(1).decode("ascii", "replace") if found else ""


def _incoming(msg: EmailMessage, raw: bytes, cut: dict[str, bytes] | None = None) -> Incoming:
    message_id = _clean(header_text(msg, "Message-ID"))
    from_name, from_addr = _address(header_text(msg, "From"))
    reply_to = _address(header_text(msg, "Reply-To"))[1]
    headers = {name: header_text(msg, name) for name in _WATCHED if msg.get(name) is not None}
    attachments, forwarded = _parts(msg, cut or {})
    return Incoming(
        identity=identity_of(raw, message_id),
        message_id=message_id,
        from_addr=from_addr,
        from_name=from_name,
        reply_to=reply_to,
        to=_addresses(header_text(msg, "To")),
        cc=_addresses(header_text(msg, "Cc")),
        subject=_clean(header_text(msg, "Subject")),
        date_header=_date(header_text(msg, "Date")),
        text=body_text(msg)[:MAX_TEXT],
        headers=headers,
        attachments=tuple(attachments),
        forwarded=tuple(forwarded),
        references=tuple(
            header_text(msg, "References").split() + header_text(msg, "In-Reply-To").split()
        ),
        content_type=msg.get_content_type(),
        size=len(raw),
    )


def header_text(msg: Message, name: str) -> str:
    """A header as text, decoded from its raw form: adjacent RFC 2047 words are joined
    (Thai names split across words gain no stray space), raw 8-bit text is repaired."""
    raw = next((v for k, v in msg.raw_items() if k.lower() == name.lower()), None)
    if raw is None:
        return ""
    if isinstance(raw, str):
        data = raw.encode("ascii", "surrogateescape") if _has_surrogates(raw) or raw.isascii() \
            else raw.encode("utf-8")
    else:
        data = bytes(raw)
    text = _decode_bytes(data, None) if not data.isascii() else data.decode("ascii")
    try:
        return str(make_header(decode_header(" ".join(text.split()))))
    except (LookupError, UnicodeError, ValueError, email.errors.HeaderParseError):
        return str(msg.get(name, ""))


def _has_surrogates(text: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in text)


def _clean(text: str) -> str:
    """One line, no control characters: header text never injects a header of ours."""
    return re.sub(r"[\x00-\x1f\x7f\u202a-\u202e\u2066-\u2069]+", " ", text).strip()


def _address(text: str) -> tuple[str, str]:
    name, addr = parseaddr(text)
    addr = addr.strip().lower()
    if not re.fullmatch(r"[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\"]+", addr):
        addr = ""
    return _clean(name), addr


def _addresses(text: str) -> tuple[str, ...]:
    return tuple(addr.lower() for _, addr in getaddresses([text]) if "@" in addr)


def _date(text: str) -> datetime | None:
    try:
        moment = parsedate_to_datetime(text) if text else None
    except (TypeError, ValueError, IndexError):
        return None
    return moment if moment and moment.tzinfo else None


def _decode_bytes(data: bytes, charset: str | None) -> str:
    """Declared charset first, then UTF-8, then Thai cp874 (a superset of TIS-620)."""
    for candidate in (charset, "utf-8", "cp874"):
        if not candidate:
            continue
        try:
            return data.decode(candidate)
        except (LookupError, UnicodeDecodeError):
            continue
    return data.decode("utf-8", "replace")


def part_text(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    text = _decode_bytes(payload, part.get_content_charset())
    return html_to_text(text) if part.get_content_type() == "text/html" else text


def body_text(msg: EmailMessage) -> str:
    """The readable text of the mail and of any forwarded mail inside it."""
    texts = []
    for message in _messages(msg):
        body = message.get_body(preferencelist=("plain", "html")) if message.is_multipart() else (
            message if message.get_content_maintype() == "text" else None
        )
        if body is not None:
            texts.append(part_text(body))
    return "\n\n".join(texts)


MAX_FORWARDED, MAX_DEPTH = 10, 5


def _messages(msg: EmailMessage) -> list[EmailMessage]:
    """The mail and the mails forwarded inside it (message/rfc822), outermost first: at
    most MAX_FORWARDED of them, MAX_DEPTH levels deep, each part looked at once."""
    found: list[EmailMessage] = []
    queue: list[tuple[EmailMessage, int]] = [(msg, 0)]
    while queue and len(found) < MAX_FORWARDED:
        current, depth = queue.pop(0)
        found.append(current)
        if depth >= MAX_DEPTH:
            continue
        for part in _walk(current, forwarded=False):
            if part.get_content_type() == "message/rfc822" and part is not current:
                inner = part.get_payload()
                inner = inner[0] if isinstance(inner, list) and inner else inner
                if isinstance(inner, EmailMessage):
                    queue.append((inner, depth + 1))
    return found


MAX_PARTS = 1_000  # parts looked at in one mail; a real request has a handful


def _walk(msg: Message, forwarded: bool) -> Iterator[Message]:
    """Message.walk() as a loop rather than recursion, so a thousand nested multiparts
    cost no stack, and capped at MAX_PARTS; forwarded=False stays out of the mails
    forwarded inside (message/rfc822)."""
    stack, seen = [msg], 0
    while stack and seen < MAX_PARTS:
        part = stack.pop()
        seen += 1
        yield part
        if not forwarded and part is not msg and part.get_content_type() == "message/rfc822":
            continue
        payload = part.get_payload() if part.is_multipart() else None
        if isinstance(payload, list):
            stack.extend(p for p in reversed(payload) if isinstance(p, Message))


def _parts(msg: EmailMessage, cut: dict[str, bytes]) -> tuple[list[Attachment], list[Forwarded]]:
    attachments: list[Attachment] = []
    forwarded: list[Forwarded] = []
    for part in _walk(msg, forwarded=True):
        ctype = part.get_content_type()
        if ctype == "message/rfc822":
            inner = part.get_payload()
            inner = inner[0] if isinstance(inner, list) and inner else inner
            if isinstance(inner, Message):
                name, addr = _address(header_text(inner, "From"))
                forwarded.append(Forwarded(
                    from_addr=addr, from_name=name,
                    reply_to=_address(header_text(inner, "Reply-To"))[1],
                    subject=_clean(header_text(inner, "Subject")),
                    message_id=_clean(header_text(inner, "Message-ID")),
                ))
            continue
        if part.is_multipart():
            continue
        filename = part.get_filename()
        if part.get_content_disposition() != "attachment" and not filename:
            continue
        marker = part.get_payload() if cut else None
        marker = marker.strip() if isinstance(marker, str) and len(marker) < 80 else None
        data = cut.get(marker) if marker else None
        if data is None:
            data = _decoded(part)
        attachments.append(Attachment(
            name=_clean(str(filename or "")) or "attachment",
            content_type=ctype,
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            data=data,
        ))
    return attachments, forwarded


class _TextExtractor(HTMLParser):
    """HTML to plain text for the rules: never rendered, nothing fetched."""

    _SKIP = {"script", "style", "head", "title"}
    _BLOCK = {"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "table", "blockquote"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag in self._SKIP:
            self._skipping += 1
        elif tag in self._BLOCK:
            self.chunks.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP and self._skipping:
            self._skipping -= 1
        elif tag in self._BLOCK:
            self.chunks.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.chunks.append(data)


def html_to_text(html: str) -> str:
    extractor = _TextExtractor()
    try:
        extractor.feed(html)
        extractor.close()
    except Exception:
        return re.sub(r"<[^>]*>", " ", html)
    text = "".join(extractor.chunks)
    return re.sub(r"[ \t\r\f\v]+", " ", re.sub(r"\n\s*\n+", "\n\n", text)).strip()
