"""The retention task: every `[retention] interval` seconds, done jobs and idempotency keys past their
ages are pruned in batches (gateway/store/retention.py says what is kept), one line logged per pruning
that removed anything."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import structlog

from gateway.config.model import RetentionSettings
from gateway.errors import StorageUnavailable
from gateway.store.base import Store
from gateway.store.retention import Pruned

log = structlog.get_logger("lienthong.retention")
DAY = 86400.0


async def prune_once(
    store: Store, agencies: Sequence[str], settings: RetentionSettings, now: float | None = None
) -> Pruned:
    """Batches until a batch finds less than a full one; returns the totals."""
    now = time.time() if now is None else now
    jobs_before = now - settings.done_jobs_days * DAY
    keys_before = datetime.fromtimestamp(now, UTC) - timedelta(days=settings.idempotency_keys_days)
    jobs = inputs = keys = 0
    while True:
        got = await store.prune(agencies, jobs_before, keys_before, settings.batch)
        jobs, inputs, keys = jobs + got.jobs, inputs + got.inputs, keys + got.keys
        if max(got.jobs, got.inputs, got.keys) < settings.batch:
            return Pruned(jobs, inputs, keys)
        await asyncio.sleep(0)  # other writes get their turn between batches


async def run_retention(store: Store, conf: Callable[[], tuple[Sequence[str], RetentionSettings]]) -> None:
    """`conf`: the configured agencies and [retention], as the configuration in use says."""
    while True:
        agencies, current = conf()
        try:
            done = await prune_once(store, agencies, current)
            if done.total:
                log.info("retention_pruned", done_jobs=done.jobs, job_inputs=done.inputs, idempotency_keys=done.keys)
        except StorageUnavailable:
            pass  # logged once by the store; tried again at the next interval
        except Exception:
            log.exception("retention_failed")
        await asyncio.sleep(current.interval)
