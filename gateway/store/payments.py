"""Online payments in SQLite: one row per centre and Idempotency-Key, written before the platform is asked.

`paid` records the payment once, whoever tells first (the platform's callback or the reconciliation
poll): the row, the receipt, and an event on the dossier, in one transaction. The event keeps the
dossier's status (paying is no status of its own) and carries the payment, so the status feed and the
portal push report it (DuocThanhToanTrucTuyen).
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from contracts.payment import Bill, Payment, Receipt
from gateway.errors import IdempotencyConflict
from gateway.store.events import insert_event

_COLUMNS = (
    "p.id, p.client_id, p.dossier_id, p.agency, p.state, p.amount_vnd, p.bills, p.pay_url, p.qr_data, "
    "p.transaction_id, p.paid_at, p.bank_ref, p.receipt_number, p.receipt_media_type, p.receipt_sha256, "
    "LENGTH(p.receipt) AS receipt_size, p.created_at, p.updated_at, d.code AS dossier_code"
)
_FROM = "payments p JOIN dossiers d ON d.id = p.dossier_id"
ACTOR = "payment:national-platform"


@dataclass(frozen=True, slots=True)
class NewPayment:
    client_id: str
    key: str
    dossier_id: str
    agency: str
    bills: tuple[Bill, ...]

    @property
    def amount(self) -> int:
        return sum(b.amount_vnd for b in self.bills)


@dataclass(frozen=True, slots=True)
class PaidNotice:
    """What the platform says of a paid transaction."""

    transaction_id: str
    paid_at: datetime
    bank_ref: str
    receipt_number: str
    receipt_media_type: str
    receipt: bytes


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _payment(row: sqlite3.Row) -> Payment:
    receipt = None
    if row["receipt_number"]:
        receipt = Receipt(
            number=row["receipt_number"],
            media_type=row["receipt_media_type"],
            size=row["receipt_size"] or 0,
            sha256=row["receipt_sha256"],
        )
    return Payment(
        id=row["id"],
        client_id=row["client_id"],
        dossier_id=row["dossier_id"],
        dossier_code=row["dossier_code"],
        agency=row["agency"],
        state=row["state"],
        amount_vnd=row["amount_vnd"],
        bills=orjson.loads(row["bills"]),
        pay_url=row["pay_url"],
        qr_data=row["qr_data"],
        transaction_id=row["transaction_id"],
        paid_at=datetime.fromisoformat(row["paid_at"]) if row["paid_at"] else None,
        bank_ref=row["bank_ref"],
        receipt=receipt,
        created_at=datetime.fromisoformat(row["created_at"]),
        updated_at=datetime.fromisoformat(row["updated_at"]),
    )


def get(conn: sqlite3.Connection, payment_id: str) -> Payment | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM {_FROM} WHERE p.id = ?", (payment_id,)).fetchone()
    return _payment(row) if row is not None else None


def by_key(conn: sqlite3.Connection, client_id: str, key: str) -> Payment | None:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM {_FROM} WHERE p.client_id = ? AND p.idem_key = ?", (client_id, key)
    ).fetchone()
    return _payment(row) if row is not None else None


def begin(conn: sqlite3.Connection, new: NewPayment) -> tuple[Payment, bool]:
    now = _now()
    bills = orjson.dumps([b.model_dump() for b in new.bills]).decode()
    made = conn.execute(
        "INSERT INTO payments (id, client_id, idem_key, dossier_id, agency, state, amount_vnd, bills, created_at, "
        "created_epoch, updated_at) VALUES (?, ?, ?, ?, ?, 'created', ?, ?, ?, ?, ?) "
        "ON CONFLICT (client_id, idem_key) DO NOTHING RETURNING id",
        (
            str(uuid.uuid4()),
            new.client_id,
            new.key,
            new.dossier_id,
            new.agency,
            new.amount,
            bills,
            now,
            time.time(),
            now,
        ),
    ).fetchone()
    if made is not None:
        found = get(conn, made["id"])
        assert found is not None
        return found, True
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM {_FROM} WHERE p.client_id = ? AND p.idem_key = ?", (new.client_id, new.key)
    ).fetchone()
    if row["dossier_id"] != new.dossier_id:
        raise IdempotencyConflict("this Idempotency-Key was used for another dossier's payment")
    return _payment(row), False


def created(conn: sqlite3.Connection, payment_id: str, transaction_id: str, pay_url: str, qr_data: str) -> Payment:
    conn.execute(
        "UPDATE payments SET state = 'pending', transaction_id = ?, pay_url = ?, qr_data = ?, updated_at = ? "
        "WHERE id = ? AND state = 'created'",
        (transaction_id, pay_url, qr_data, _now(), payment_id),
    )
    found = get(conn, payment_id)
    assert found is not None
    return found


def forget(conn: sqlite3.Connection, payment_id: str) -> None:
    """The platform refused to create it: nothing to pay there, and the key may be used again."""
    conn.execute("DELETE FROM payments WHERE id = ? AND state = 'created'", (payment_id,))


def failed(conn: sqlite3.Connection, payment_id: str) -> None:
    conn.execute(
        "UPDATE payments SET state = 'failed', updated_at = ? WHERE id = ? AND state IN ('created', 'pending')",
        (_now(), payment_id),
    )


def paid(conn: sqlite3.Connection, payment_id: str, notice: PaidNotice, how: str) -> tuple[Payment, bool]:
    """Record the payment (once: False when it was already), its receipt and the dossier's event."""
    row = conn.execute(
        "SELECT p.state, d.status FROM payments p JOIN dossiers d ON d.id = p.dossier_id WHERE p.id = ?", (payment_id,)
    ).fetchone()
    if row is None:
        raise LookupError(f"no payment {payment_id}")
    if row["state"] == "paid":
        found = get(conn, payment_id)
        assert found is not None
        return found, False
    conn.execute(
        "UPDATE payments SET state = 'paid', transaction_id = ?, paid_at = ?, bank_ref = ?, receipt_number = ?, "
        "receipt_media_type = ?, receipt_sha256 = ?, receipt = ?, updated_at = ? WHERE id = ?",
        (
            notice.transaction_id,
            notice.paid_at.isoformat(),
            notice.bank_ref,
            notice.receipt_number,
            notice.receipt_media_type,
            hashlib.sha256(notice.receipt).hexdigest(),
            notice.receipt,
            _now(),
            payment_id,
        ),
    )
    p = get(conn, payment_id)
    assert p is not None and p.receipt is not None
    amount = f"{p.amount_vnd:,}".replace(",", ".")
    insert_event(
        conn,
        p.dossier_id,
        int(row["status"]),
        ACTOR,
        f"Đã thanh toán trực tuyến {amount} đồng qua Nền tảng thanh toán (giao dịch {notice.transaction_id})",
        {
            "payment": {
                "id": p.id,
                "paid_online": True,
                "portal": "national",
                "amount_vnd": p.amount_vnd,
                "bills": [b.model_dump() for b in p.bills],
                "transaction_id": notice.transaction_id,
                "bank_ref": notice.bank_ref,
                "receipt": p.receipt.model_dump(),
                "learnt_by": how,
            }
        },
        f"payment-{p.id}",
        notice.paid_at.isoformat(),
    )
    return p, True


def receipt(conn: sqlite3.Connection, payment_id: str) -> bytes | None:
    row = conn.execute("SELECT receipt FROM payments WHERE id = ?", (payment_id,)).fetchone()
    return bytes(row["receipt"]) if row is not None and row["receipt"] is not None else None


def listed(conn: sqlite3.Connection, client_id: str | None, dossier_id: str | None, limit: int) -> list[Payment]:
    where, args = [], list[object]()
    for column, value in (("p.client_id", client_id), ("p.dossier_id", dossier_id)):
        if value is not None:
            where.append(f"{column} = ?")
            args.append(value)
    sql = f"SELECT {_COLUMNS} FROM {_FROM}" + (f" WHERE {' AND '.join(where)}" if where else "")
    return [_payment(r) for r in conn.execute(sql + " ORDER BY p.created_epoch LIMIT ?", (*args, limit)).fetchall()]


def unsettled(conn: sqlite3.Connection, before: float, limit: int) -> list[Payment]:
    """Payments the platform has not called back about since `before` (epoch seconds): to ask it."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM {_FROM} WHERE p.state IN ('created', 'pending') AND p.created_epoch <= ? "
        "ORDER BY p.created_epoch LIMIT ?",
        (before, limit),
    ).fetchall()
    return [_payment(r) for r in rows]
