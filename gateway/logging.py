"""structlog set up once: correlation id from contextvars, secrets and personal data masked, JSON lines.

Every request and every outbound call logs a line, so the JSON pipeline is one processor (context,
level, time, masking, rendering to bytes) and lines are written as bytes, one write each. The standard
library's loggers (aiohttp, asyncssh, zeep, asyncio, ...) go through structlog's ProcessorFormatter
into the same processor and the same writer: every line is JSON and masked.

Masking goes by a field's meaning: secrets (keys, passwords, tokens) become ***, personal ids and phone
numbers keep their first 3 and last 2 digits, names their initials; identifiers (correlation, dossier,
job ids, codes) are never touched. Free text (messages, paths, errors, tracebacks, library lines) is
masked by pattern: numbers of a personal id's or a phone's length standing alone (not inside an id, a
code or a UUID), and the value after a secret's name (`password=...`, `X-Api-Key: ...`).
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import re
import sys
import threading
import time
from collections.abc import MutableMapping
from datetime import UTC, datetime
from typing import Any

import orjson
import structlog
from structlog.contextvars import merge_contextvars
from structlog.processors import format_exc_info

from contracts.identifiers import mask_personal_id

SECRET_FIELDS = frozenset(
    {
        "authorization",
        "api_key",
        "x-api-key",
        "password",
        "secret",
        "token",
        "access_token",
        "refresh_token",
        "client_secret",
        "passphrase",
        "private_key",
    }
)
PERSONAL_FIELDS = frozenset(
    {"personal_id", "so_dinh_danh", "soDinhDanh", "SoDinhDanh", "child_personal_id", "so_cccd", "cccd", "cmnd"}
)
PHONE_FIELDS = frozenset({"phone", "phone_number", "so_dien_thoai", "soDienThoai", "SoDienThoai", "mobile"})
NAME_FIELDS = frozenset({"full_name", "applicant_name", "ho_ten", "hoTen", "HoTen", "ChuHoSo", "owner_name"})
# Identifiers: never masked, whatever digits they hold (a UUID's last group may be 12 digits).
ID_FIELDS = frozenset(
    {
        "correlation_id",
        "dossier_id",
        "dossier",
        "dossier_code",
        "code",
        "codes",
        "job",
        "job_id",
        "idempotency_key",
        "event_id",
        "bundle_id",
        "upload_id",
        "sha256",
        "traceparent",
        "trace_id",
    }
)
# In free text: 12 digits (a citizen id), 9 (an old id card), 10 from 0 (a phone), standing alone: not
# next to a letter, digit, '_', '-', or a '.' that goes on (inside a code, a UUID, a version, a host).
_ID_IN_TEXT = re.compile(r"(?<![\w-])(?<!\w\.)(\d{12}|0\d{9}|\d{9})(?![\w-])(?!\.\w)")
_SHORTEST_ID = 9
# A cheap first look for a personal id in text: any run of 9 digits (the precise pattern is applied after).
_DIGIT_RUN = re.compile(r"\d{9}")
# A secret's value after its name in free text: `password=x`, `"api_key": "x"`, `X-Api-Key: x`,
# `Authorization: Bearer x`.
_SECRET_IN_TEXT = re.compile(
    r"(?i)\b(x-api-key|api[_-]?key|authorization|password|passwd|passphrase|client_secret|secret|access_token|token)"
    r"(['\"]?\s*[:=]\s*['\"]?\s*)((?:bearer|basic)\s+)?([^\s'\",;&}\]]+)"
)
_PLAIN, _SECRET, _PERSONAL, _PHONE, _NAME, _ID = 0, 1, 2, 3, 4, 5
_KINDS: dict[str, int] = {}
_KINDS_MAX = 4096
_LEVEL_NAMES = {"warn": "warning", "exception": "error"}  # as structlog's add_log_level


def _key_kind(key: str) -> int:
    kind = _KINDS.get(key)
    if kind is None:
        lower = key.lower()
        if lower in SECRET_FIELDS:
            kind = _SECRET
        elif key in PERSONAL_FIELDS:
            kind = _PERSONAL
        elif key in PHONE_FIELDS:
            kind = _PHONE
        elif key in NAME_FIELDS:
            kind = _NAME
        elif key in ID_FIELDS:
            kind = _ID
        else:
            kind = _PLAIN
        if len(_KINDS) < _KINDS_MAX:  # keys come from code, but a dict logged as a value may bring many
            _KINDS[key] = kind
    return kind


def _mask_text(text: str) -> str:
    if len(text) < _SHORTEST_ID:  # too short to hold a personal id or a secret with its name: no scan
        return text
    if _DIGIT_RUN.search(text):
        text = _ID_IN_TEXT.sub(lambda m: mask_personal_id(m.group(1)), text)
    return _HEADER_IN_TEXT.sub(_hide_secret, _SECRET_IN_TEXT.sub(_hide_secret, text))


# A credential header quoted whole where no separator follows its name (a malformed header line in a
# parser's error): `X-Api-Key abc`, `Authorization Bearer abc`.
_HEADER_IN_TEXT = re.compile(r"(?i)\b(x-api-key|authorization)(\s+)((?:bearer|basic)\s+)?([^\s'\"]+)")


def _hide_secret(m: re.Match[str]) -> str:
    return f"{m.group(1)}{m.group(2)}{m.group(3) or ''}***"


def mask_name(value: str) -> str:
    """Initials only: `Nguyễn Văn An` -> `N*** V*** A***`."""
    return " ".join(f"{w[0]}***" for w in value.split())


def _mask_value(key: str, value: Any) -> Any:
    kind = _key_kind(key)
    if kind == _SECRET:
        return "***"
    if kind == _ID:
        return value
    if isinstance(value, str):
        if kind in (_PERSONAL, _PHONE):
            return mask_personal_id(value)
        return mask_name(value) if kind == _NAME else _mask_text(value)
    if value is None or isinstance(value, int | float):
        return value
    if isinstance(value, dict):
        return {k: _mask_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask_value(key, v) for v in value]
    return value


def mask_processor(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in event_dict.items():
        masked = _mask_value(key, value)
        if masked is not value:
            event_dict[key] = masked  # a new value for an existing key: the iteration goes on safely
    return event_dict


def _fallback(obj: Any) -> Any:
    """What orjson cannot serialise, as structlog's JSONRenderer does: __structlog__(), else repr()."""
    try:
        return obj.__structlog__()
    except AttributeError:
        return repr(obj)


def render_json(logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> bytes:
    """merge_contextvars, add_log_level, masking, TimeStamper(iso, utc), format_exc_info and JSON, in one step.

    It runs twice per request (the request line and the outbound line), so it avoids per-key calls:
    plain text fields are checked for a run of 9 digits in one pass over all of them, and only masked
    when there is one; level and time are added after masking (nothing in them can look like an id).
    """
    merge_contextvars(logger, method_name, event_dict)
    texts: list[str] = []
    for key, value in event_dict.items():
        kind = _KINDS.get(key)
        if kind is None:
            kind = _key_kind(key)
        if kind == _ID:
            continue
        vtype = type(value)
        if kind == _PLAIN:
            if vtype is str:
                texts.append(value)
                continue
            if value is None or vtype in _UNMASKED_TYPES:
                continue
        masked = _mask_value(key, value)
        if masked is not value:
            event_dict[key] = masked  # a new value for an existing key: the iteration goes on safely
    if texts:
        joined = "\n".join(texts)
        if _DIGIT_RUN.search(joined) or _SECRET_IN_TEXT.search(joined) or _HEADER_IN_TEXT.search(joined):
            for key, value in event_dict.items():
                if _key_kind(key) == _PLAIN and type(value) is str:
                    event_dict[key] = _mask_text(value)
    event_dict["level"] = _LEVEL_NAMES.get(method_name, method_name)
    event_dict["timestamp"] = _timestamp()
    if "exc_info" in event_dict:
        _format_exception(logger, method_name, event_dict)
    return orjson.dumps(event_dict, default=_fallback)


_clock: list[Any] = [-1, ""]  # [second, "YYYY-MM-DDTHH:MM:SS"] of the last line


def _timestamp() -> str:
    """ISO 8601 UTC with microseconds, as TimeStamper(fmt="iso", utc=True); the date part is built once a second."""
    now = time.time()
    second = int(now)
    if second != _clock[0]:
        _clock[0], _clock[1] = second, datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{_clock[1]}.{int((now - second) * 1_000_000):06d}Z"


def _format_exception(logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """format_exc_info, then masking of the traceback: exception messages often quote the input."""
    format_exc_info(logger, method_name, event_dict)
    if isinstance(event_dict.get("exception"), str):
        event_dict["exception"] = _mask_text(event_dict["exception"])
    return event_dict


_UNMASKED_TYPES = (int, float, bool)


class JsonLinesLogger:
    """Writes rendered lines to the binary buffer under a text stream when it has one.

    On the event loop, the lines of one loop turn are written together right after it (one write
    instead of one per line, and never later than the next turn); elsewhere, each line at once. The
    standard library's loggers may write from other threads (a library's worker thread): a lock keeps
    every line whole and none lost between the pending list and the stream.
    """

    def __init__(self, stream: Any) -> None:
        binary = getattr(stream, "buffer", None)
        self._binary = binary is not None
        self._stream = binary if binary is not None else stream
        self._pending: list[bytes] = []
        self._lock = threading.Lock()
        atexit.register(self.flush)

    def msg(self, message: bytes) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            with self._lock:
                self._pending.append(message)
                self._flush_locked()
            return
        with self._lock:
            if not self._pending:
                loop.call_soon(self.flush)
            self._pending.append(message)

    def flush(self) -> None:
        with self._lock:
            self._flush_locked()

    def _flush_locked(self) -> None:
        if self._pending:
            lines, self._pending = self._pending, []
            self._write(b"\n".join(lines) + b"\n")

    def _write(self, data: bytes) -> None:
        self._stream.write(data if self._binary else data.decode())
        self._stream.flush()

    log = debug = info = warn = warning = msg
    fatal = failure = err = error = critical = exception = msg


def render_text(logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> str:
    """render_json as text, the last processor of the standard library's ProcessorFormatter."""
    return render_json(logger, method_name, event_dict).decode()


class LinesHandler(logging.Handler):
    """The standard library's records, formatted by ProcessorFormatter, written by the JSON lines writer
    (so that they keep their order with structlog's lines)."""

    def __init__(self, lines: JsonLinesLogger) -> None:
        super().__init__()
        self.lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.msg(self.format(record).encode())
        except Exception:
            self.handleError(record)


class _ConsoleHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The console mode's handler, told apart from others' StreamHandlers when configure runs again."""


def _drop_record(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """ProcessorFormatter's own keys out, and the library's logger name in (as `logger`)."""
    record = event_dict.pop("_record", None)
    event_dict.pop("_from_structlog", None)
    if record is not None and "logger" not in event_dict:
        event_dict["logger"] = record.name
    return event_dict


def configure(level: str = "info", *, json: bool | None = None, stream: Any = None) -> None:
    """Configure structlog and the standard library's root logger; JSON unless writing to a terminal
    (then a readable console line)."""
    stream = stream or sys.stderr
    if json is None:
        json = not stream.isatty()
    numeric = logging.getLevelNamesMapping()[level.upper()]
    handler: logging.Handler
    if json:
        processors: list[Any] = [render_json]
        lines = JsonLinesLogger(stream)
        factory: Any = lambda *_: lines  # noqa: E731 - one writer for every logger name keeps the lines in order
        handler = LinesHandler(lines)
        handler.setFormatter(structlog.stdlib.ProcessorFormatter(processors=[_drop_record, render_text]))
    else:
        processors = [
            merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            mask_processor,
            _format_exception,
            structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback),
        ]
        factory = structlog.PrintLoggerFactory(stream)
        handler = _ConsoleHandler(stream)
        handler.setFormatter(structlog.stdlib.ProcessorFormatter(processors=[_drop_record, *processors]))
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=factory,
        cache_logger_on_first_use=True,
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, LinesHandler | _ConsoleHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)


def plain_defaults() -> list[Any]:
    """structlog's built-in processors, with a plain traceback: its default one, when rich is installed (a
    development tool brings it), reads source files to draw the traceback, a blocking read on the loop."""
    return [
        merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.StackInfoRenderer(),
        structlog.dev.set_exc_info,
        structlog.processors.TimeStamper(fmt="%Y-%m-%d %H:%M:%S", utc=False),
        structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback),
    ]


def reset() -> None:
    """structlog's defaults again (plain tracebacks), and the root logger without our handler (tests)."""
    structlog.reset_defaults()
    structlog.configure(processors=plain_defaults())
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, LinesHandler | _ConsoleHandler)]:
        root.removeHandler(handler)
