"""Maintenance windows and pauses: when an endpoint is held, and that nothing reaches an agency meanwhile.

The schedule on its own (weekly windows across midnight in Asia/Ho_Chi_Minh, one-off windows, pauses),
then against the police simulator: a window declared in the configuration, one added by a reload, a
pause through the admin API; and with real processes, a pause that outlives a restart of
`lienthong serve` and is ended from the command line.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from contracts.calendar import VN_TZ
from gateway.config import load_config
from gateway.config.model import WindowConf
from gateway.errors import ConfigError
from gateway.maintenance import Holds, Schedule, parse_when
from gateway.plugin_manager import Registry
from gateway.sandbox.demo import DEMO_KEYS, police_sim
from gateway.sandbox.launcher import Stack
from gateway.store.base import Pause
from plugins.police.demo import demo_dossiers
from tests.gateway.conftest import CONF, GatewayHarness
from tests.gateway.test_smoke import wait_status


def vn(*args: int) -> float:
    return datetime(*args, tzinfo=VN_TZ).timestamp()  # type: ignore[misc]


SUNDAY_NIGHT = WindowConf.model_validate(
    {"agency": "police", "days": ["sun"], "start": "22:00", "end": "02:00", "reason": "bảo trì hằng tuần"}
)


# -- the schedule ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "held_until"),
    [
        (vn(2026, 12, 6, 21, 59), None),  # Sunday, before
        (vn(2026, 12, 6, 22, 0), vn(2026, 12, 7, 2, 0)),
        (vn(2026, 12, 6, 23, 30), vn(2026, 12, 7, 2, 0)),
        (vn(2026, 12, 7, 1, 59), vn(2026, 12, 7, 2, 0)),  # Monday, the same window
        (vn(2026, 12, 7, 2, 0), None),
        (vn(2026, 12, 5, 23, 0), None),  # Saturday night
    ],
)
def test_a_weekly_window_across_midnight(at: float, held_until: float | None) -> None:
    hold = Schedule.build([SUNDAY_NIGHT]).hold("police", "national", at)
    assert (hold.until if hold else None) == held_until
    if hold is not None:
        assert (hold.kind, hold.reason) == ("window", "bảo trì hằng tuần")


def test_the_next_change_and_the_next_window() -> None:
    schedule = Schedule.build([SUNDAY_NIGHT])
    friday = vn(2026, 12, 4, 9, 0)
    assert schedule.next_change(friday) == vn(2026, 12, 6, 22, 0)
    assert schedule.next_change(vn(2026, 12, 6, 23, 0)) == vn(2026, 12, 7, 2, 0)
    assert schedule.upcoming("police", "national", friday) == (
        vn(2026, 12, 6, 22),
        vn(2026, 12, 7, 2),
        "bảo trì hằng tuần",
    )
    assert schedule.upcoming("tax", "national", friday) is None


def test_a_one_off_window_of_one_endpoint() -> None:
    conf = WindowConf.model_validate(
        {"agency": "land", "endpoint": "hanoi", "start": "2026-12-06T06:00:00", "end": "2026-12-06T18:00:00+07:00"}
    )
    schedule = Schedule.build([conf])
    assert schedule.hold("land", "hanoi", vn(2026, 12, 6, 6, 0)) is not None  # no offset: Vietnam's time
    assert schedule.hold("land", "hcm", vn(2026, 12, 6, 12, 0)) is None
    assert schedule.hold("land", "hanoi", vn(2026, 12, 6, 18, 0)) is None


def test_a_pause_comes_before_a_window_and_ends_on_time() -> None:
    holds = Holds(lambda: Schedule.build([SUNDAY_NIGHT]))
    night = vn(2026, 12, 6, 23, 0)
    holds.set_pauses([Pause("police", None, vn(2026, 12, 7, 6, 0), "nâng cấp", "operator", night)])
    hold = holds.hold("police", "national", night)
    assert hold is not None and (hold.kind, hold.until, hold.by) == ("pause", vn(2026, 12, 7, 6, 0), "operator")
    assert holds.next_change(night) == vn(2026, 12, 7, 2, 0)  # the window's end comes first
    after = holds.hold("police", "national", vn(2026, 12, 7, 6, 0))
    assert after is None
    holds.resumed("police", None)
    hold = holds.hold("police", "national", night)
    assert hold is not None and hold.kind == "window"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-06T06:00+07:00", datetime(2026, 12, 6, 6, tzinfo=VN_TZ)),
        ("2026-12-06T06:00", datetime(2026, 12, 6, 6, tzinfo=VN_TZ)),
        ("2026-12-05T23:00Z", datetime(2026, 12, 6, 6, tzinfo=VN_TZ)),
        ("90m", datetime(2026, 12, 6, 7, 30, tzinfo=VN_TZ)),
        ("2h", datetime(2026, 12, 6, 8, tzinfo=VN_TZ)),
    ],
)
def test_when_an_operator_says(text: str, expected: datetime) -> None:
    assert parse_when(text, datetime(2026, 12, 6, 6, tzinfo=VN_TZ)) == expected


def test_since_an_operator_says() -> None:
    assert parse_when("1d", datetime(2026, 12, 6, 6, tzinfo=VN_TZ), ago=True) == datetime(2026, 12, 5, 6, tzinfo=VN_TZ)
    with pytest.raises(ValueError, match="neither a date"):
        parse_when("next sunday", datetime.now(UTC))


def test_every_mistake_in_maintenance_toml_is_named(tmp_path: Path, registry: Registry) -> None:
    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf)
    windows = """
[[window]]
agency = "police"
days = ["sun"]
start = 2026-12-06T22:00:00+07:00
end = 02:00:00

[[window]]
agency = "customs"
start = 2026-12-06T22:00:00+07:00
end = 2026-12-07T02:00:00+07:00

[[window]]
agency = "police"
endpoint = "provincial"
start = 2026-12-07T02:00:00+07:00
end = 2026-12-06T22:00:00+07:00
timezone = "Asia/Saigon-Old"
"""
    (conf / "maintenance.toml").write_text(windows)
    with pytest.raises(ConfigError) as err:
        load_config(conf, registry)
    problems = {(file, key): message for file, key, message in err.value.problems}
    assert problems == {
        ("maintenance.toml", "window[0]"): "a weekly window (days) has times of day as start and end, such as 22:00",
        ("maintenance.toml", "window[2].timezone"): "unknown time zone 'Asia/Saigon-Old'",
    }
    fixed = windows.replace("start = 2026-12-06T22:00:00+07:00\nend = 02", "start = 22:00:00\nend = 02").replace(
        'timezone = "Asia/Saigon-Old"\n', ""
    )
    (conf / "maintenance.toml").write_text(fixed)
    with pytest.raises(ConfigError) as err:
        load_config(conf, registry)
    assert err.value.problems == [("maintenance.toml", "window[2]", "end must come after start")]
    swapped = fixed.replace(
        "start = 2026-12-07T02:00:00+07:00\nend = 2026-12-06T22",
        "start = 2026-12-06T22:00:00+07:00\nend = 2026-12-07T02",
    )
    (conf / "maintenance.toml").write_text(swapped)
    with pytest.raises(ConfigError) as err:  # the file reads well: now what it names is checked
        load_config(conf, registry)
    assert err.value.problems == [
        ("maintenance.toml", "window[1].agency", "no agency named 'customs'"),
        ("maintenance.toml", "window[2].endpoint", "agency 'police' has no endpoint 'provincial'"),
    ]


def test_max_attempts_names_its_replacement(tmp_path: Path, registry: Registry) -> None:
    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf)
    text = (conf / "gateway.toml").read_text()
    (conf / "gateway.toml").write_text(text.replace("[dispatcher]", "[dispatcher]\nmax_attempts = 8"))
    with pytest.raises(ConfigError) as err:
        load_config(conf, registry)
    [(file, key, message)] = err.value.problems
    assert (file, key) == ("gateway.toml", "dispatcher")
    assert message.startswith("max_attempts was replaced by give_up_after")


# -- against the police simulator ---------------------------------------------------------------------


def window_toml(start: float, end: float, reason: str = "nâng cấp cơ sở dữ liệu") -> str:
    def local(t: float) -> str:
        return datetime.fromtimestamp(t, VN_TZ).isoformat(timespec="milliseconds")

    return f'[[window]]\nagency = "police"\nreason = "{reason}"\nstart = {local(start)}\nend = {local(end)}\n'


@pytest.fixture
def declare_window() -> bool:
    """Whether the configuration declares a window of police from now to `window["end"]` (a test says True)."""
    return False


@pytest.fixture
def window() -> dict[str, float]:
    return {}


@pytest.fixture
def gateway_conf(tmp_path: Path, declare_window: bool, window: dict[str, float]) -> Path:
    copy = tmp_path / "conf"
    shutil.copytree(CONF, copy)
    if declare_window:
        window["end"] = time.time() + 8.0
        (copy / "maintenance.toml").write_text(window_toml(window["end"] - 3600, window["end"]))
    return copy


async def submit_some(h: GatewayHarness, make: Callable[[int], dict[str, Any]], n: int) -> list[str]:
    ids = []
    for i in range(n):
        resp = await h.client.post("/v1/dossiers", json=make(i), headers=h.headers())
        assert resp.status == 202, await resp.text()
        ids.append((await resp.json())["id"])
    return ids


async def sim_calls(h: GatewayHarness) -> list[dict[str, Any]]:
    async with h.client.session.get(str(h.police.make_url("/_sim/calls"))) as r:
        calls: list[dict[str, Any]] = await r.json()
        return calls


async def endpoint_state(h: GatewayHarness) -> dict[str, Any]:
    resp = await h.client.get("/v1/admin/agencies?check=false", headers=h.headers("operator"))
    [item] = (await resp.json())["items"]
    assert isinstance(item, dict)
    return item


async def held_until_then_delivered(
    h: GatewayHarness, make: Callable[[int], dict[str, Any]], end: float, reason: str, state: str
) -> None:
    ids = await submit_some(h, make, 4)
    assert time.time() < end, "the machine was too slow to submit within the window"
    item = await endpoint_state(h)
    assert (item["state"], item["reason"], item["pending"], item["held"]) == (state, reason, 4, 4)
    assert abs(datetime.fromisoformat(item["paused_until"]).timestamp() - end) < 0.01
    await asyncio.sleep(max(0.0, end - time.time()))
    for did in ids:
        assert (await wait_status(h, did, 9))["status"] == 9
    calls = await sim_calls(h)
    assert len(calls) == 4 and all(c["status"] == 202 for c in calls)
    assert min(c["at"] for c in calls) >= end  # nothing reached the agency before the end
    assert (await endpoint_state(h))["state"] == "closed"


@pytest.mark.parametrize("declare_window", [True])
async def test_a_window_declared_in_the_configuration(
    harness: GatewayHarness, window: dict[str, float], submission: Callable[[int], dict[str, Any]]
) -> None:
    await held_until_then_delivered(harness, submission, window["end"], "nâng cấp cơ sở dữ liệu", "maintenance")


async def test_a_window_added_by_a_reload(
    harness: GatewayHarness, gateway_conf: Path, submission: Callable[[int], dict[str, Any]]
) -> None:
    end = time.time() + 6.0
    await asyncio.to_thread((gateway_conf / "maintenance.toml").write_text, window_toml(end - 60, end, "đột xuất"))
    resp = await harness.client.post("/v1/admin/reload", headers=harness.headers("operator"))
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["changed"]["maintenance_windows"] == {"before": 0, "after": 1}
    await held_until_then_delivered(harness, submission, end, "đột xuất", "maintenance")


async def test_a_pause_through_the_api(harness: GatewayHarness, submission: Callable[[int], dict[str, Any]]) -> None:
    end = time.time() + 6.0
    body = {"until": datetime.fromtimestamp(end, UTC).isoformat(), "reason": "Bộ Công an báo bảo trì đột xuất"}
    resp = await harness.client.post("/v1/admin/agencies/police/pause", json=body, headers=harness.headers("operator"))
    assert resp.status == 200, await resp.text()
    [item] = (await resp.json())["endpoints"]
    assert (item["state"], item["paused_by"]) == ("paused", "operator")
    await held_until_then_delivered(harness, submission, end, "Bộ Công an báo bảo trì đột xuất", "paused")
    audit = await (await harness.client.get("/v1/admin/audit", headers=harness.headers("operator"))).json()
    [record] = [r for r in audit["items"] if r["action"] == "pause"]
    assert (record["client"], record["basis"], record["detail"]) == (
        "operator",
        "admin",
        {"agency": "police", "until": body["until"], "reason": body["reason"]},
    )


# -- a pause outlives a restart --------------------------------------------------------------------------


async def cli(stack: Stack, *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway.cli",
        *args,
        "--conf",
        str(CONF),
        env={**os.environ, **stack.env()},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0, out.decode()
    return out.decode()


@pytest.mark.slow
async def test_a_pause_survives_a_restart_and_is_ended_from_the_command_line(tmp_path: Path) -> None:
    stack = Stack(CONF, tmp_path, [police_sim()], extra_env={"LIENTHONG_HOLD_REFRESH": "0.2"})
    op = {"X-Api-Key": DEMO_KEYS["operator"]}
    centre = {"X-Api-Key": DEMO_KEYS["centre-hanoi"]}
    bodies = demo_dossiers(3, 5)
    try:
        await stack.start_simulators()
        gateway = await stack.start_gateway()
        async with aiohttp.ClientSession() as session:
            url = stack.gateway_url
            pause = {"until": "2h", "reason": "chuyển đổi trung tâm dữ liệu"}
            async with session.post(f"{url}/v1/admin/agencies/police/pause", json=pause, headers=op) as r:
                assert r.status == 200, await r.text()
            ids = []
            for body in bodies:
                async with session.post(f"{url}/v1/dossiers", json=body, headers=centre) as r:
                    assert r.status == 202, await r.text()
                    ids.append((await r.json())["id"])
            await gateway.stop()  # SIGTERM: the pause is in the store, not in the process
            await stack.start_gateway()
            async with session.get(f"{url}/v1/admin/agencies?check=false", headers=op) as r:
                [item] = (await r.json())["items"]
            assert (item["state"], item["reason"], item["held"]) == ("paused", pause["reason"], len(bodies))
            await asyncio.sleep(1.0)  # a restarted gateway claims at once: it must claim none of these
            sim = stack.sim("police").url
            async with session.get(f"{sim}/_sim/calls") as r:
                assert await r.json() == []
            out = await cli(stack, "agencies", "list")
            assert "police/national: paused until" in out and pause["reason"] in out
            resumed_at = time.time()
            assert "resumed 1 pause(s) of police" in await cli(stack, "agencies", "resume", "police")
            for did in ids:
                for _ in range(200):
                    async with session.get(f"{url}/v1/dossiers/{did}", headers=centre) as r:
                        if (await r.json())["status"] == 9:
                            break
                    await asyncio.sleep(0.1)
                else:
                    raise AssertionError(f"{did} was not delivered after the resume")
            async with session.get(f"{sim}/_sim/calls") as r:
                calls = await r.json()
            assert len(calls) == len(bodies) and min(c["at"] for c in calls) >= resumed_at
            async with session.get(f"{url}/v1/admin/audit", headers=op) as r:
                actions = [(i["action"], i["client"]) for i in (await r.json())["items"] if i["action"] != "read"]
            assert [a for a, _ in actions] == ["pause", "resume"]
            assert actions[0][1] == "operator" and actions[1][1].startswith("cli")
    finally:
        await stack.stop()
