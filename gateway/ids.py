"""Identifiers of the rows the gateway creates (dossiers, bundles, uploads, appointments, payments).

They are UUIDs of version 7 (RFC 9562, section 5.7): a millisecond Unix time, then random bits. Ids made
one after the other sort one after the other, so a batch of new rows lands on the last pages of every
index keyed by them. Random (version 4) ids put each new row on a page of its own in each of those
indexes: in a store of 30,000 dossiers, a commit of 100 then wrote about 26 KiB to the write-ahead log
per dossier instead of 4, and took three times as long. Python gains `uuid.uuid7` only in 3.14.
"""

from __future__ import annotations

import secrets
import threading
import time
import uuid

_lock = threading.Lock()
_last = 0  # the last (milliseconds << 12 | sub-millisecond fraction) handed out in this process


def new_id() -> uuid.UUID:
    """A version 7 UUID, later than every one this process made before it (the 12 bits after the
    milliseconds count a fraction of the millisecond, RFC 9562 method 3, and step on when the clock
    does not move or goes back); the 62 bits after them are random."""
    global _last
    ns = time.time_ns()
    stamp = (ns // 1_000_000) << 12 | (ns % 1_000_000) * 4096 // 1_000_000
    with _lock:
        stamp = _last = max(stamp, _last + 1)
    value = (stamp >> 12) << 80 | 0x7 << 76 | (stamp & 0xFFF) << 64 | 0b10 << 62 | secrets.randbits(62)
    return uuid.UUID(int=value)
