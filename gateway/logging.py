"""structlog set up once: correlation id from contextvars, secrets and personal ids masked, JSON lines."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import orjson
import structlog

from contracts.identifiers import mask_personal_id

SECRET_FIELDS = frozenset(
    {"authorization", "api_key", "x-api-key", "password", "secret", "token", "access_token", "client_secret"}
)
PERSONAL_FIELDS = frozenset({"personal_id", "so_dinh_danh", "soDinhDanh", "child_personal_id"})
# 9 or 12 digits standing alone: personal ids in free text (paths, notes, errors).
_ID_IN_TEXT = re.compile(r"(?<!\d)(\d{12}|\d{9})(?!\d)")


def _mask_text(text: str) -> str:
    return _ID_IN_TEXT.sub(lambda m: mask_personal_id(m.group(1)), text)


def _mask_value(key: str, value: Any) -> Any:
    if key.lower() in SECRET_FIELDS:
        return "***"
    if key in PERSONAL_FIELDS and isinstance(value, str):
        return mask_personal_id(value)
    if isinstance(value, str):
        return _mask_text(value)
    if isinstance(value, dict):
        return {k: _mask_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask_value(key, v) for v in value]
    return value


def mask_processor(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event_dict):
        event_dict[key] = _mask_value(key, event_dict[key])
    return event_dict


def _orjson_dumps(obj: Any, default: Any = None) -> str:
    return orjson.dumps(obj, default=default or str).decode()


def configure(level: str = "info", *, json: bool | None = None, stream: Any = None) -> None:
    """Configure structlog; JSON unless writing to a terminal (then a readable console line)."""
    stream = stream or sys.stderr
    if json is None:
        json = not stream.isatty()
    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=_orjson_dumps)
        if json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            mask_processor,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=True,
    )
