"""Ports for servers started a moment later, in this process or another."""

from __future__ import annotations

import socket

import pytest

from gateway.sandbox import launcher


def test_free_ports_lie_below_the_ephemeral_range_and_are_never_handed_out_twice() -> None:
    ports = [launcher.free_port() for _ in range(200)]
    assert len(set(ports)) == len(ports)
    assert all(launcher._LOWEST_PORT <= p < launcher._EPHEMERAL_LOW for p in ports)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", ports[-1]))  # free indeed


def test_without_room_below_the_ephemeral_range_the_kernel_picks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(launcher, "_EPHEMERAL_LOW", launcher._LOWEST_PORT + 10)
    assert launcher.free_port() >= launcher._LOWEST_PORT + 10
