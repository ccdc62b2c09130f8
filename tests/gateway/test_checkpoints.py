"""The audit log proves itself: seals on every batch and signed checkpoints exported to a folder.

Fifteen ways of tampering with the store (and its checkpoint folder), each found by
`lienthong audit verify --checkpoints DIR --public-key PUB` with nothing but the public key; and a
gateway that refuses to chain new records onto a log cut short until the operator acknowledges it.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from gateway.app import create_app
from gateway.checkpoints import AuditLogTampered, Checkpointer, file_name
from gateway.cli import main
from gateway.config import load_config
from gateway.plugin_manager import Registry
from gateway.sandbox.demo import DEMO_KEYS
from gateway.store import AuditEntry, SqliteStore
from gateway.store import audit as audit_sql
from gateway.store.seals import new_key, private_key
from tests.gateway.pki import conf_copy
from tests.gateway.test_store_audit import raw


def untrigger(conn: sqlite3.Connection) -> None:
    """What whoever holds the file can do first: drop the append-only triggers."""
    for name in ("audit_no_update", "audit_no_delete", "audit_follows_last"):
        conn.execute(f"DROP TRIGGER IF EXISTS {name}")


def entry(i: int) -> AuditEntry:
    return AuditEntry("centre-hanoi", "read", "allowed", "own", f"d-{i % 5}", {"i": i})


@dataclass
class Log:
    db: Path
    folder: Path
    key_file: Path
    pub_file: Path

    async def verify(self, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
        capsys.readouterr()
        argv = ["audit", "verify", "--store", str(self.db), "--checkpoints", str(self.folder)]
        rc = await asyncio.to_thread(main, [*argv, "--public-key", str(self.pub_file)])
        return rc, capsys.readouterr().out

    async def store(self, *, keyed: bool = True) -> SqliteStore:
        key = private_key(await asyncio.to_thread(self.key_file.read_bytes)) if keyed else None
        store = SqliteStore(self.db, batch_max=4, audit_key=key)
        await store.open()
        return store


@pytest.fixture
async def log(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Log:
    """40 records written in batches by a keyed store, with checkpoints #1 at 0 (start), #2 at 20, #3 at 40."""
    key_file = tmp_path / "keys" / "audit.pem"
    assert await asyncio.to_thread(main, ["audit", "keygen", "--out", str(key_file)]) == 0
    out = capsys.readouterr().out
    pub_file = key_file.with_name("audit.pem.pub")
    assert (await asyncio.to_thread(pub_file.read_text)).strip() in out
    lg = Log(tmp_path / "gw.db", tmp_path / "checkpoints", key_file, pub_file)
    store = await lg.store()
    try:
        checkpointer = Checkpointer(store, store.audit_key, lg.folder, 60)  # type: ignore[arg-type]
        await checkpointer.start()
        await checkpointer.write(why="start")
        await asyncio.gather(*(store.audit([entry(i), entry(i + 100)]) for i in range(10)))  # 2 a call
        await checkpointer.write(why="test")
        await asyncio.gather(*(store.audit([entry(i)]) for i in range(20, 40)))  # grouped in batches of 4
        await checkpointer.write(why="test")
    finally:
        await store.close()
    return lg


async def head(db: Path) -> tuple[int, str]:
    return await raw(db, audit_sql.head)


def rehash_from(conn: sqlite3.Connection, seq: int, change: Callable[[dict[str, Any]], None]) -> None:
    """Rewrite record `seq` and recompute the hash chain after it, as anyone without the key can."""
    conn.row_factory = sqlite3.Row
    untrigger(conn)
    rows = conn.execute("SELECT * FROM audit WHERE seq >= ? ORDER BY seq", (seq,)).fetchall()
    prev = rows[0]["prev_hash"]
    for row in rows:
        fields = {k: row[k] for k in ("seq", "at", "client_id", "action", "outcome", "basis", "dossier_id")}
        fields["detail"] = orjson.loads(row["detail"])
        if row["seq"] == seq:
            change(fields)
        digest = audit_sql.record_hash(prev, [fields[k] for k in audit_sql._FIELDS])
        conn.execute(
            "UPDATE audit SET client_id = ?, detail = ?, prev_hash = ?, hash = ? WHERE seq = ?",
            (fields["client_id"], orjson.dumps(fields["detail"]).decode(), prev, digest, row["seq"]),
        )
        prev = digest


def forge(conn: sqlite3.Connection, *, seal_with: Any = None) -> None:
    """Append one record that follows the last, through the triggers: the chain cannot tell."""
    conn.row_factory = sqlite3.Row
    last = conn.execute("SELECT seq, hash, at FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    seq = last["seq"] + 1
    fields = [seq, last["at"], "centre-hcm", "read", "allowed", "own", "d-1", {"note": "never happened"}]
    digest = audit_sql.record_hash(last["hash"], fields)
    seal = seal_with.seal(seq, seq, digest) if seal_with is not None else None
    conn.execute(
        "INSERT INTO audit (seq, at, client_id, action, outcome, basis, dossier_id, detail, prev_hash, hash, "
        "sealed_from, seal) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (*fields[:7], orjson.dumps(fields[7]).decode(), last["hash"], digest, seq if seal else None, seal),
    )


def sql(*statements: str) -> Callable[[sqlite3.Connection], None]:
    def run(conn: sqlite3.Connection) -> None:
        untrigger(conn)
        for s in statements:
            conn.execute(s)

    return run


def delete_tail_and_forge_the_same_length(conn: sqlite3.Connection) -> None:
    sql("DELETE FROM audit WHERE seq > 35")(conn)
    for _ in range(5):
        forge(conn)


def fresh_log_of_the_same_length(conn: sqlite3.Connection) -> None:
    """Someone without the key builds a whole new log of the same length, chain and all."""
    n = conn.execute("SELECT MAX(seq) FROM audit").fetchone()[0]
    sql("DELETE FROM audit")(conn)
    conn.execute("UPDATE audit SET seq = seq")  # nothing left
    prev = audit_sql.GENESIS
    for seq in range(1, n + 1):
        fields = [seq, "2026-01-01T00:00:00+00:00", "centre-hcm", "read", "allowed", "own", None, {}]
        digest = audit_sql.record_hash(prev, fields)
        conn.execute(
            "INSERT INTO audit (seq, at, client_id, action, outcome, basis, dossier_id, detail, prev_hash, hash) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, '{}', ?, ?)",
            (*fields[:7], prev, digest),
        )
        prev = digest


TAMPERINGS: dict[str, tuple[Callable[[sqlite3.Connection], None], str]] = {
    "edit in place": (sql("""UPDATE audit SET detail = '{"i": 999}' WHERE seq = 10"""), "record 10: its hash does not"),
    "edit and rehash the rest": (
        lambda c: rehash_from(c, 10, lambda f: f.update(client_id="centre-hcm")),
        "seal does not verify",
    ),
    "edit the last record and rehash it": (
        lambda c: rehash_from(c, 40, lambda f: f["detail"].update(i=-1)),
        "record 40: its hash is not the one checkpoint #3",
    ),
    "rehash all and strip every seal": (
        lambda c: (rehash_from(c, 1, lambda f: f.update(client_id="operator")), sql("UPDATE audit SET seal = NULL")(c)),
        "is not the one checkpoint #",
    ),
    "strip every seal": (
        sql("UPDATE audit SET seal = NULL, sealed_from = NULL"),
        "seals from record 1 on were removed",
    ),
    "delete the last 5": (sql("DELETE FROM audit WHERE seq > 35"), "records 36 to 40 were deleted"),
    "delete the last 1": (sql("DELETE FROM audit WHERE seq = 40"), "record 40 were deleted"),
    "delete all": (sql("DELETE FROM audit"), "the log is empty, but checkpoint #3"),
    "delete one in the middle": (sql("DELETE FROM audit WHERE seq = 17"), "record 18: record 17 missing before it"),
    "append a forged record": (forge, "record 41 has no seal at the end of the log"),
    "append one sealed with another key": (
        lambda c: forge(c, seal_with=new_key()),
        "record 41: its seal does not verify with the audit key",
    ),
    "cut the tail and forge as many": (delete_tail_and_forge_the_same_length, "record 40: its hash is not the one"),
    "a fresh log of the same length": (fresh_log_of_the_same_length, "is not the one checkpoint #"),
}


@pytest.mark.parametrize("kind", list(TAMPERINGS))
async def test_each_tampering_with_the_log_is_found_with_the_public_key_only(
    log: Log, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    rc, out = await log.verify(capsys)
    assert rc == 0, out
    assert "audit log: 40 records, chain, seals and checkpoints intact" in out
    tamper, found = TAMPERINGS[kind]
    await raw(log.db, tamper)
    rc, out = await log.verify(capsys)
    assert rc == 1, out
    assert found in out, out


async def test_a_forged_record_between_two_of_the_gateways_batches_is_found(
    log: Log, capsys: pytest.CaptureFixture[str]
) -> None:
    await raw(log.db, forge)
    store = await log.store()  # the gateway goes on writing after the forged record
    try:
        await store.audit([entry(1), entry(2)])
    finally:
        await store.close()
    rc, out = await log.verify(capsys)
    assert rc == 1
    assert "record 43: record 41 before it has no seal: not written by the gateway" in out


@pytest.mark.parametrize(
    ("change", "found"),
    [
        (lambda folder: (folder / file_name(2)).unlink(), "checkpoint(s) #2 are missing before #3"),
        (
            lambda folder: (folder / file_name(3)).write_bytes(
                (folder / file_name(3)).read_bytes().replace(b'"seq": 40', b'"seq": 30')
            ),
            "checkpoint #3: its signature does not verify",
        ),
    ],
    ids=["a checkpoint file deleted", "a checkpoint file edited"],
)
async def test_tampering_with_the_checkpoint_folder_is_found(
    log: Log, capsys: pytest.CaptureFixture[str], change: Callable[[Path], Any], found: str
) -> None:
    await asyncio.to_thread(change, log.folder)
    rc, out = await log.verify(capsys)
    assert rc == 1 and found in out, out


async def test_records_written_after_the_last_checkpoint_verify(log: Log, capsys: pytest.CaptureFixture[str]) -> None:
    store = await log.store()
    try:
        await asyncio.gather(*(store.audit([entry(i)]) for i in range(7)))
    finally:
        await store.close()
    rc, out = await log.verify(capsys)
    assert rc == 0, out
    assert "last checkpoint: #3" in out and "record 40 (7 written since)" in out


# -- the gateway: start-up against the last checkpoint ------------------------------------------------


async def test_a_gateway_refuses_a_log_cut_short_until_the_operator_acknowledges_it(
    tmp_path: Path,
    registry: Registry,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    unused_tcp_port_factory: Callable[[], int],
) -> None:
    key_file, folder = tmp_path / "audit.pem", tmp_path / "checkpoints"
    assert await asyncio.to_thread(main, ["audit", "keygen", "--out", str(key_file)]) == 0
    conf = await asyncio.to_thread(
        conf_copy,
        tmp_path / "conf",
        gateway=f'[audit]\nsigning_key_file = "{key_file}"\npublic_key_file = "{key_file}.pub"\n'
        f'checkpoint_dir = "{folder}"\ncheckpoint_interval = 3600\n',
    )
    db = tmp_path / "gw.db"
    monkeypatch.setenv("LIENTHONG_DB", str(db))
    config = await asyncio.to_thread(load_config, conf, registry)
    operator = {"X-Api-Key": DEMO_KEYS["operator"]}

    def gateway() -> TestClient[Any, Any]:
        return TestClient(TestServer(create_app(config, registry), host="127.0.0.1", port=unused_tcp_port_factory()))

    async with gateway() as client:
        for _ in range(30):  # each list of dossiers is an audit record
            assert (await client.get("/v1/dossiers", headers={"X-Api-Key": DEMO_KEYS["centre-hanoi"]})).status == 200
        body = await (await client.get("/v1/admin/audit/verify", headers=operator)).json()
        assert body["ok"] and body["sealed"] and body["head"]["seq"] == 30
        assert body["checkpoint"]["number"] == 1 and body["checkpoint"]["seq"] == 0  # written at start
    # Shut down: a last checkpoint covers every record.
    assert (await head(db))[0] == 30
    await raw(db, sql("DELETE FROM audit WHERE seq > 5"))  # 25 records cut off the end

    refused = gateway()
    with pytest.raises(AuditLogTampered, match="records were deleted"):
        await refused.start_server()
    await refused.close()  # what start-up opened before it refused is closed again
    assert (await head(db))[0] == 5  # nothing chained onto the shortened log

    capsys.readouterr()
    argv = ["audit", "verify", "--conf", str(conf), "--checkpoints", str(folder)]
    assert await asyncio.to_thread(main, argv) == 1
    assert "records 6 to 30 were deleted" in capsys.readouterr().out

    reason = "store restored from the 06:00 backup is lost; 25 read records of 2026-12-05 gone (incident 42)"
    assert await asyncio.to_thread(main, ["audit", "acknowledge", "--conf", str(conf), "--reason", reason]) == 0
    assert "acknowledged as checkpoint #3: record 5" in capsys.readouterr().out

    async with gateway() as client:
        assert (await client.get("/v1/dossiers", headers={"X-Api-Key": DEMO_KEYS["centre-hanoi"]})).status == 200
        body = await (await client.get("/v1/admin/audit/verify", headers=operator)).json()
        assert body["ok"], body
    assert (await head(db))[0] == 6
    assert await asyncio.to_thread(main, argv) == 0
    out = capsys.readouterr().out
    assert f"(checkpoint #3): {reason}" in out
    assert "records were deleted" in out  # what was acknowledged, listed
    assert "chain, seals and checkpoints intact" in out


async def test_after_a_key_rotation_both_public_keys_verify_the_log(
    log: Log, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    new_file = tmp_path / "keys" / "audit-2027.pem"
    assert await asyncio.to_thread(main, ["audit", "keygen", "--out", str(new_file)]) == 0
    new = private_key(await asyncio.to_thread(new_file.read_bytes))
    old_public = (await asyncio.to_thread(log.pub_file.read_text)).strip()
    store = SqliteStore(log.db, batch_max=4, audit_key=new)
    await store.open()
    try:
        earlier = [private_key(await asyncio.to_thread(log.key_file.read_bytes)).verifier]
        checkpointer = Checkpointer(store, new, log.folder, 60, earlier)
        await checkpointer.start()  # the old series verifies with the earlier key: the log matches it
        await asyncio.gather(*(store.audit([entry(i)]) for i in range(6)))
        cp = await checkpointer.write(why="rotated")
        assert cp is not None and cp.number == 4 and cp.body["key"] == new.verifier.key_id
    finally:
        await store.close()
    argv = ["audit", "verify", "--store", str(log.db), "--checkpoints", str(log.folder)]
    capsys.readouterr()
    both = [*argv, "--public-key", f"{new_file}.pub", "--public-key", old_public]
    assert await asyncio.to_thread(main, both) == 0, capsys.readouterr().out
    assert "4 valid" in capsys.readouterr().out
    # The new key alone cannot vouch for what the old one sealed.
    assert await asyncio.to_thread(main, [*argv, "--public-key", f"{new_file}.pub"]) == 1
    out = capsys.readouterr().out
    assert "3 of other keys not checked" in out and "its seal does not verify" in out
