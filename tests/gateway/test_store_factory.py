"""Which store a configuration names: [store] url, LIENTHONG_STORE_URL over it, the SQLite path by default."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.store import PostgresStore, SqliteStore
from gateway.store.factory import make_store, redacted, store_url


def test_the_sqlite_path_by_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("LIENTHONG_STORE_URL", raising=False)
    url = store_url("", tmp_path / "g.db")
    assert url == f"sqlite:///{tmp_path / 'g.db'}"
    assert isinstance(make_store(url), SqliteStore) and not isinstance(make_store(url), PostgresStore)


def test_the_environment_over_the_configuration(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LIENTHONG_STORE_URL", "postgresql://postgres@127.0.0.1:5432/x")
    url = store_url("sqlite:///elsewhere.db", tmp_path / "g.db")
    assert url == "postgresql://postgres@127.0.0.1:5432/x"
    assert isinstance(make_store(url), PostgresStore)


def test_an_unknown_scheme_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LIENTHONG_STORE_URL", "mysql://x")
    with pytest.raises(ValueError, match="sqlite:///path or postgresql://"):
        store_url("", tmp_path / "g.db")


def test_a_password_stays_out_of_messages() -> None:
    assert redacted("postgresql://gw:s3cret@db.local:5432/lienthong") == "postgresql://gw@db.local:5432/lienthong"
