"""multipart/related answers (MTOM/XOP and SOAP with Attachments), read with the standard library's MIME
parser: the root part (named by the `start` parameter, else the first) holds the envelope; the others
are attachments, and an `xop:Include` in the envelope is replaced by the content of the part it names.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.errors import CloseBoundaryNotFoundDefect, MessageDefect
from email.message import Message
from urllib.parse import unquote

from lxml import etree

from gateway.errors import MalformedAnswer, UnsafeAnswer

XOP_NS = "http://www.w3.org/2004/08/xop/include"
ROOT_TYPES = frozenset({"text/xml", "application/soap+xml", "application/xop+xml"})
MAX_PARTS = 256


@dataclass(frozen=True, slots=True)
class Attachment:
    """One part of a multipart answer besides the envelope."""

    content_id: str | None  # without the angle brackets
    media_type: str
    content: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    included: bool = False  # an xop:Include of the envelope put it in place


@dataclass(frozen=True, slots=True)
class Related:
    root: bytes  # the envelope
    root_type: str
    attachments: tuple[Attachment, ...]
    complete: bool  # the closing boundary was there: nothing was cut off


def _content_id(value: str | None) -> str | None:
    if value is None:
        return None
    cid = "".join(value.split()).strip()  # folded headers put line breaks inside
    return cid[1:-1] if cid.startswith("<") and cid.endswith(">") else cid or None


def _leaves(message: Message) -> list[Message]:
    out: list[Message] = []
    for part in message.get_payload():
        if not isinstance(part, Message):
            continue
        if part.is_multipart():  # an attachment that is itself multipart (X-Road allows it): its leaves
            out.extend(_leaves(part))
        else:
            out.append(part)
    return out


def _defects(message: Message) -> list[MessageDefect]:
    found = list(message.defects)
    for part in message.walk():
        if part is not message:
            found.extend(part.defects)
    return found


def read_related(content_type: str, data: bytes) -> Related:
    """Split a multipart/related body. MalformedAnswer when it cannot be read as one."""
    if "\r" in content_type or "\n" in content_type:
        raise MalformedAnswer("multipart answer with a line break in its Content-Type")
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1", "replace")
    try:
        message = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(head + data)
    except RecursionError as exc:  # parts nested without end
        raise UnsafeAnswer("multipart answer nested too deeply") from exc
    if not message.get_param("boundary"):
        raise MalformedAnswer("multipart answer without a boundary parameter")
    if not message.is_multipart():
        raise MalformedAnswer("multipart answer whose body has no parts")
    defects = _defects(message)
    broken = [d for d in defects if not isinstance(d, CloseBoundaryNotFoundDefect)]
    if broken:
        raise MalformedAnswer(f"unreadable multipart answer: {type(broken[0]).__name__}")
    parts = _leaves(message)
    complete = not any(isinstance(d, CloseBoundaryNotFoundDefect) for d in defects)
    if not complete and parts and not parts[-1].keys() and not _payload(parts[-1]):
        parts.pop()  # what follows a last boundary without its closing "--": nothing
    if not parts:
        raise MalformedAnswer("multipart answer without any part")
    if len(parts) > MAX_PARTS:
        raise UnsafeAnswer(f"multipart answer with {len(parts)} parts (at most {MAX_PARTS})")
    start = message.get_param("start")
    root_index = 0
    if isinstance(start, str) and start.strip():
        wanted = _content_id(start)
        ids = [_content_id(p.get("Content-ID")) for p in parts]
        if wanted not in ids:
            raise MalformedAnswer(f"multipart answer: no part has the Content-ID {start!r} its start names")
        root_index = ids.index(wanted)
    root = parts[root_index]
    root_type = root.get_content_type()
    if root_type not in ROOT_TYPES:
        raise MalformedAnswer(f"multipart answer whose root part is {root_type}, not a SOAP envelope")
    attachments = tuple(
        Attachment(
            content_id=_content_id(p.get("Content-ID")),
            media_type=p.get_content_type(),
            content=_payload(p),
            headers={k: str(v) for k, v in p.items()},
        )
        for i, p in enumerate(parts)
        if i != root_index
    )
    return Related(_payload(root), root_type, attachments, complete)


def _payload(part: Message) -> bytes:
    content = part.get_payload(decode=True)  # base64 and quoted-printable decoded; 8bit/binary as sent
    return content if isinstance(content, bytes) else b""


def resolve_xop(envelope: etree._Element, attachments: tuple[Attachment, ...]) -> tuple[Attachment, ...]:
    """Put each xop:Include's part in place (base64 text, as zeep reads base64Binary); the attachments
    come back with `included` set. MalformedAnswer for an Include naming no part of the answer."""
    by_id = {a.content_id: a for a in attachments if a.content_id}
    used: set[str] = set()
    for include in envelope.iter(f"{{{XOP_NS}}}Include"):
        href = (include.get("href") or "").strip()
        cid = unquote(href[4:]) if href.lower().startswith("cid:") else None  # RFC 2392: cid URLs are %-encoded
        if cid is None or cid not in by_id:
            raise MalformedAnswer(f"xop:Include refers to {href!r}, which is not a part of the answer")
        parent = include.getparent()
        if parent is None or len(parent) != 1 or (parent.text or "").strip():
            raise MalformedAnswer("xop:Include must be the only content of its element")
        parent.remove(include)
        parent.text = base64.b64encode(by_id[cid].content).decode("ascii")
        used.add(cid)
    return tuple(
        Attachment(a.content_id, a.media_type, a.content, a.headers, included=a.content_id in used) for a in attachments
    )
