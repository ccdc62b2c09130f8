"""What proving the audit log costs: sealing each batch, and verifying chain, seals and checkpoints.

    .venv/bin/python -m bench.audit_proof [--records 20000]

Writes the same audit records to a store without and with the audit key (concurrent callers, grouped
commits as the gateway makes them), then verifies the keyed log with its public key. Prints one line
per figure; nothing is kept.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from gateway.checkpoints import Checkpointer, verify_log
from gateway.store import AuditEntry, SqliteStore
from gateway.store.seals import AuditKey, new_key


async def write(path: Path, key: AuditKey | None, records: int, callers: int) -> tuple[float, int]:
    store = SqliteStore(path, audit_key=key)
    await store.open()
    try:
        started = time.perf_counter()
        commits = store.commits
        per = records // callers

        async def caller(c: int) -> None:
            for i in range(per):
                await store.audit([AuditEntry(f"centre-{c}", "read", "allowed", "own", f"d-{i}", {"i": i})])

        await asyncio.gather(*(caller(c) for c in range(callers)))
        return time.perf_counter() - started, store.commits - commits
    finally:
        await store.close()


async def main(records: int, callers: int) -> None:
    key = new_key()
    started = time.perf_counter()
    for i in range(10_000):
        key.seal(1, i, "0" * 64)
    print(f"one seal (Ed25519 signature): {(time.perf_counter() - started) / 10_000 * 1e6:.1f} µs")
    with tempfile.TemporaryDirectory() as tmp:
        plain, plain_commits = await write(Path(tmp) / "plain.db", None, records, callers)
        sealed, sealed_commits = await write(Path(tmp) / "sealed.db", key, records, callers)
        print(
            f"{records:,} records by {callers} callers: chain only {records / plain:,.0f}/s "
            f"({plain_commits:,} commits); sealed {records / sealed:,.0f}/s ({sealed_commits:,} commits, as many seals)"
        )
        store = SqliteStore(Path(tmp) / "sealed.db", audit_key=key)
        await store.open()
        try:
            checkpointer = Checkpointer(store, key, Path(tmp) / "checkpoints", 60)
            await checkpointer.start()
            cp = await checkpointer.write(why="bench")
            assert cp is not None
            started = time.perf_counter()
            chain_only = await store.verify_audit()
            walked = time.perf_counter() - started
            started = time.perf_counter()
            verdict = await verify_log(store, key.verifier, [cp])
            proved = time.perf_counter() - started
        finally:
            await store.close()
        assert chain_only.ok and verdict.ok, verdict.problems
        print(
            f"verify {records:,} records: chain only {records / walked:,.0f}/s; chain, "
            f"{sealed_commits:,} seals and the checkpoint {records / proved:,.0f}/s ({proved:.2f} s)"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--callers", type=int, default=64)
    args = parser.parse_args()
    asyncio.run(main(args.records, args.callers))
