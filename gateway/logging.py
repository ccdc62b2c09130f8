"""structlog set up once: correlation id from contextvars, secrets and personal ids masked, JSON lines.

Every request and every outbound call logs a line, so the JSON pipeline is one processor (context,
level, time, masking, rendering to bytes) and lines are written as bytes, one write each.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import re
import sys
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
    {"authorization", "api_key", "x-api-key", "password", "secret", "token", "access_token", "client_secret"}
)
PERSONAL_FIELDS = frozenset({"personal_id", "so_dinh_danh", "soDinhDanh", "child_personal_id"})
# 9 or 12 digits standing alone: personal ids in free text (paths, notes, errors).
_ID_IN_TEXT = re.compile(r"(?<!\d)(\d{12}|\d{9})(?!\d)")
_SHORTEST_ID = 9
# A cheap first look for a personal id in text: any run of 9 digits (the precise pattern is applied after).
_DIGIT_RUN = re.compile(r"\d{9}")
_PLAIN, _SECRET, _PERSONAL = 0, 1, 2
_KINDS: dict[str, int] = {}
_KINDS_MAX = 4096
_LEVEL_NAMES = {"warn": "warning", "exception": "error"}  # as structlog's add_log_level


def _key_kind(key: str) -> int:
    kind = _KINDS.get(key)
    if kind is None:
        kind = _SECRET if key.lower() in SECRET_FIELDS else _PERSONAL if key in PERSONAL_FIELDS else _PLAIN
        if len(_KINDS) < _KINDS_MAX:  # keys come from code, but a dict logged as a value may bring many
            _KINDS[key] = kind
    return kind


def _mask_text(text: str) -> str:
    if len(text) < _SHORTEST_ID:  # too short to hold a personal id: no scan
        return text
    return _ID_IN_TEXT.sub(lambda m: mask_personal_id(m.group(1)), text)


def _mask_value(key: str, value: Any) -> Any:
    kind = _key_kind(key)
    if kind == _SECRET:
        return "***"
    if isinstance(value, str):
        return mask_personal_id(value) if kind == _PERSONAL else _mask_text(value)
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
    if texts and _DIGIT_RUN.search("\n".join(texts)):
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
    instead of one per line, and never later than the next turn); elsewhere, each line at once.
    """

    def __init__(self, stream: Any) -> None:
        binary = getattr(stream, "buffer", None)
        self._binary = binary is not None
        self._stream = binary if binary is not None else stream
        self._pending: list[bytes] = []
        atexit.register(self.flush)

    def msg(self, message: bytes) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            self._write(message + b"\n")
            return
        if not self._pending:
            loop.call_soon(self.flush)
        self._pending.append(message)

    def flush(self) -> None:
        if self._pending:
            lines, self._pending = self._pending, []
            self._write(b"\n".join(lines) + b"\n")

    def _write(self, data: bytes) -> None:
        self._stream.write(data if self._binary else data.decode())
        self._stream.flush()

    log = debug = info = warn = warning = msg
    fatal = failure = err = error = critical = exception = msg


def configure(level: str = "info", *, json: bool | None = None, stream: Any = None) -> None:
    """Configure structlog; JSON unless writing to a terminal (then a readable console line)."""
    stream = stream or sys.stderr
    if json is None:
        json = not stream.isatty()
    if json:
        processors: list[Any] = [render_json]
        lines = JsonLinesLogger(stream)
        factory: Any = lambda *_: lines  # noqa: E731 - one writer for every logger name keeps the lines in order
    else:
        processors = [
            merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            mask_processor,
            _format_exception,
            structlog.dev.ConsoleRenderer(colors=False),
        ]
        factory = structlog.PrintLoggerFactory(stream)
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=factory,
        cache_logger_on_first_use=True,
    )
