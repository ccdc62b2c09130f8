"""Behavioural conformance: how a kind's connector behaves against its own simulator, checked the same
way for every plugin. The static kit (`gateway.sdk.conformance`) checks what a plugin declares; these
checks run it, over loopback, as the dispatcher would:

- submit is idempotent: the same idempotency key twice, and the agency holds the dossier once;
- the agency down, a 5xx or a timeout is a transient error (retried); a refusal is permanent;
- the status updates it reports only make moves the status machine allows, from 4 (processing: what
  the gateway records once a submit returns);
- polled agencies: an update the store did not settle comes back on the next poll, also from a new
  connector on the same connector state (a restart); a settled one does not, once the connector has
  polled again after the acknowledgement;
- agencies that call back: a genuine callback is taken, an altered or unsigned one refused (401/403);
- look-ups: the example query answers with the look-up's output model, a query of another model and a
  garbled answer are errors, never a result.

A check that does not apply to a kind (callbacks for a polled agency) is not listed for it. In a
plugin's tests (the pytest plugin's `lienthong_behaviour` helper does the same):

    @pytest.mark.parametrize("check", behaviour_checks(kinds=["permits"]), ids=str)
    async def test_behaviour(check: Check) -> None:
        await check.run()
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from contracts import Dossier, DossierStatus
from contracts.status import can_move
from gateway.connector import AgencyKind, AgencyUpdate, Connector, PollOutcome
from gateway.errors import AgencyError, ProblemError, is_retryable
from gateway.plugin_manager import Registry, load_registry
from gateway.sdk.conformance import Check, expect
from gateway.sdk.testing import Callback as CaughtCallback
from gateway.sdk.testing import Simulator, bound_connector, delivery, dossier_from_demo, running_simulator

NEWS_TIMEOUT = 30.0  # seconds a simulator may take to report on a dossier (it may ask for a payment first)
FAULT_TIMEOUT = 1.0  # the endpoint's timeout while the simulator is made to hang
FAULT_SETTLE = 0.2  # a simulator may apply a fault on its own clock (an SFTP server looks every 50 ms)
SETTLED = {DossierStatus.FINISHED, DossierStatus.SUPPLEMENT_REQUESTED} | {
    s for s in DossierStatus if s.terminal
}  # where a simulator's dossier stops moving on its own


def behaviour_checks(kinds: Iterable[str] | None = None, registry: Registry | None = None) -> list[Check]:
    """The behavioural checks for `kinds` (every registered kind when None), in a stable order."""
    reg = registry or load_registry()
    chosen = sorted(reg.agency_kinds) if kinds is None else list(kinds)
    unknown = [k for k in chosen if k not in reg.agency_kinds]
    if unknown:
        raise LookupError(f"no plugin registers the agency kinds {unknown}; registered: {sorted(reg.agency_kinds)}")
    out: list[Check] = []
    for name in chosen:
        kind = reg.agency_kinds[name]

        def check(title: str, fn: Callable[[Registry, AgencyKind], Coroutine[Any, Any, None]]) -> None:
            out.append(Check(name, title, functools.partial(fn, reg, kind)))  # noqa: B023 - bound now

        check("submit is idempotent for the same key", check_idempotent_submit)
        check("down, 5xx and timeouts are transient", check_transient_errors)
        if kind.protocol != "file":  # a file exchange has no synchronous answer to refuse with
            check("a refusal is permanent", check_refusal_is_permanent)
        check("status updates make only legal moves", check_legal_transitions)
        if kind.polls:
            check("poll and acknowledge never drop an update", check_poll_keeps_unsettled)
        else:
            check("callbacks are verified", check_callbacks_verified)
        if kind.lookups:
            check("look-ups answer their output model", check_lookups)
    return out


# -- running a kind ----------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def _workdir() -> AsyncIterator[Path]:
    path = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="lienthong-behaviour-"))
    try:
        yield path
    finally:
        await asyncio.to_thread(shutil.rmtree, path, True)


@contextlib.asynccontextmanager
async def _running(kind: AgencyKind, **overrides: Any) -> AsyncIterator[tuple[Simulator, Connector]]:
    async with (
        _workdir() as work,
        running_simulator(kind, work) as sim,
        bound_connector(kind, sim, **overrides) as connector,
    ):
        yield sim, connector


def _dossiers(registry: Registry, kind: AgencyKind, count: int) -> list[Dossier]:
    return [dossier_from_demo(registry, kind.name, i) for i in range(count)]


def _mine(update: AgencyUpdate, dossier: Dossier) -> bool:
    return update.dossier_id == dossier.id or update.dossier_code == dossier.code


async def _news(
    kind: AgencyKind, sim: Simulator, connector: Connector, *, settle: bool = True
) -> AsyncIterator[list[AgencyUpdate]]:
    """Updates as the gateway would get them: polled (each poll acknowledged as fully applied when
    `settle`), or called back (each callback handed to the connector)."""
    while True:
        if kind.polls:
            got = await connector.poll()
            if settle:
                await connector.acknowledge(PollOutcome(frozenset(u.event_id for u in got)))
            yield got
            await asyncio.sleep(0.05)
        else:
            callback = await sim.callbacks.next(NEWS_TIMEOUT)
            yield await connector.handle_callback(callback.body, callback.headers)


# -- the checks --------------------------------------------------------------------------------------


async def check_idempotent_submit(registry: Registry, kind: AgencyKind) -> None:
    where = f"{kind.name} connector"
    async with _running(kind) as (sim, connector):
        twice, sentinel = _dossiers(registry, kind, 2)
        before = (await sim.stats()).get("accepted", 0)
        key = f"{twice.id}:submit"
        first = await connector.submit(twice, delivery(key, 1))
        again = await connector.submit(twice, delivery(key, 2))
        expect(
            first.agency_ref == again.agency_ref,
            f"{where}: the same key gave two agency references ({first.agency_ref!r}, {again.agency_ref!r})",
        )
        await connector.submit(sentinel, delivery(f"{sentinel.id}:submit", 1))
        # The sentinel, sent last, is taken last: once it is counted, the repeat has been seen too.
        async with asyncio.timeout(NEWS_TIMEOUT):
            while (await sim.stats()).get("accepted", 0) < before + 2:  # noqa: ASYNC110 - another process's count
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # a repeat taken as new would be counted by now
        stats = await sim.stats()
        expect(
            stats.get("accepted", 0) == before + 2,
            f"{where}: two submissions with one idempotency key created {stats.get('accepted', 0) - before - 1} "
            "dossiers at the agency (its /_sim/stats 'accepted')",
        )


async def _expect_error(
    connector: Connector, dossier: Dossier, *, transient: bool, what: str, where: str
) -> AgencyError:
    try:
        await connector.submit(dossier, delivery())
    except AgencyError as exc:
        expect(
            is_retryable(exc) == transient,
            f"{where}: {what} raised {type(exc).__name__} ({exc}), which is "
            + ("permanent: it must be retried" if transient else "retried: it must be permanent"),
        )
        return exc
    except Exception as exc:
        raise AssertionError(f"{where}: {what} raised {type(exc).__name__}, not an AgencyError: {exc}") from exc
    raise AssertionError(f"{where}: {what}, yet submit returned as if the agency had the dossier")


async def check_transient_errors(registry: Registry, kind: AgencyKind) -> None:
    where = f"{kind.name} connector"
    async with _running(kind, timeout=FAULT_TIMEOUT) as (sim, connector):
        dossier = _dossiers(registry, kind, 1)[0]
        await sim.set_faults(down=True)
        await asyncio.sleep(FAULT_SETTLE)
        await _expect_error(connector, dossier, transient=True, what="the agency down", where=where)
        if kind.protocol != "file":  # an SFTP exchange has no HTTP status and no answer to wait for
            await sim.set_faults(down=False, error_rate=1.0)
            await _expect_error(connector, dossier, transient=True, what="a 5xx answer", where=where)
            await sim.set_faults(error_rate=0.0, timeout_rate=1.0, timeout_s=FAULT_TIMEOUT * 5)
            await _expect_error(connector, dossier, transient=True, what="an agency that does not answer", where=where)
        await sim.clear_faults()
        # Once the agency is back, the same delivery goes through (retried as the dispatcher would: a
        # simulator may take a moment to notice it is up again).
        async with asyncio.timeout(NEWS_TIMEOUT):
            while True:
                try:
                    await connector.submit(dossier, delivery())
                    break
                except AgencyError as exc:
                    expect(is_retryable(exc), f"{where}: the agency back up, submit failed for good: {exc}")
                    await asyncio.sleep(0.2)


async def check_refusal_is_permanent(registry: Registry, kind: AgencyKind) -> None:
    where = f"{kind.name} connector"
    async with _running(kind) as (sim, connector):
        dossier = _dossiers(registry, kind, 1)[0]
        await sim.set_faults(refuse_rate=1.0)
        await _expect_error(connector, dossier, transient=False, what="the agency's refusal", where=where)


async def check_legal_transitions(registry: Registry, kind: AgencyKind) -> None:
    where = f"{kind.name} connector"
    async with _running(kind) as (sim, connector):
        dossiers = _dossiers(registry, kind, 3)
        current: dict[str, DossierStatus] = {}
        trail: dict[str, list[int]] = {}

        def follow(dossier: Dossier, updates: Iterable[AgencyUpdate]) -> None:
            for update in updates:
                if not _mine(update, dossier):
                    continue
                now, new = current[dossier.code], update.status
                trail[dossier.code].append(int(new))
                expect(
                    new == now or can_move(now, new),
                    f"{where}: dossier {dossier.code} moved {now.value} -> {new.value} "
                    f"(statuses reported: {trail[dossier.code]}); the status machine refuses it",
                )
                current[dossier.code] = new

        for dossier in dossiers:
            receipt = await connector.submit(dossier, delivery(f"{dossier.id}:submit"))
            current[dossier.code], trail[dossier.code] = DossierStatus.PROCESSING, [4]
            follow(dossier, receipt.updates)
        try:
            async with asyncio.timeout(NEWS_TIMEOUT):
                news = _news(kind, sim, connector)
                while any(s not in SETTLED for s in current.values()):
                    updates = await anext(news)
                    for dossier in dossiers:
                        follow(dossier, updates)
        except TimeoutError:
            stuck = {c: trail[c] for c, s in current.items() if s not in SETTLED}
            raise AssertionError(f"{where}: no final news in {NEWS_TIMEOUT:.0f} s of {stuck}") from None


async def check_poll_keeps_unsettled(registry: Registry, kind: AgencyKind) -> None:
    where = f"{kind.name} connector"
    async with _workdir() as work, running_simulator(kind, work) as sim:
        from gateway.connector_state import MemoryConnectorState

        state = MemoryConnectorState()  # what the store keeps for the endpoint across restarts
        dossier = _dossiers(registry, kind, 1)[0]
        async with bound_connector(kind, sim, state=state) as connector:
            receipt = await connector.submit(dossier, delivery(f"{dossier.id}:submit"))
            seen: set[str] = set()
            async with asyncio.timeout(NEWS_TIMEOUT):
                while not seen:
                    got = await connector.poll()
                    await connector.acknowledge(PollOutcome())  # the store took none of them
                    seen = {u.event_id for u in got if _mine(u, dossier)}
                    await asyncio.sleep(0.05)
            again = {u.event_id for u in await connector.poll() if _mine(u, dossier)}
            expect(
                seen <= again,
                f"{where}: updates {sorted(seen - again)} were not settled by the store, yet the next poll "
                "dropped them",
            )
            await connector.acknowledge(PollOutcome())
        async with bound_connector(kind, sim, state=state) as restarted:
            got = await restarted.poll()
            after = {u.event_id for u in got if _mine(u, dossier)}
            expect(
                seen <= after,
                f"{where}: after a restart, unsettled updates {sorted(seen - after)} were lost",
            )
            await restarted.acknowledge(PollOutcome(frozenset(u.event_id for u in got)))
            # A connector may clear what the store settled on its next poll (answer files leave the inbox).
            got = await restarted.poll()
            await restarted.acknowledge(PollOutcome(frozenset(u.event_id for u in got)))
        async with bound_connector(kind, sim, state=state) as later:
            back = {u.event_id for u in await later.poll() if _mine(u, dossier)} & seen
            expect(
                not back,
                f"{where}: updates {sorted(back)} the store settled came back after a restart: the cursor "
                "(ctx.state) did not move",
            )
        del receipt


def _altered(callback: CaughtCallback) -> list[tuple[str, bytes, dict[str, str]]]:
    headers = dict(callback.headers)
    unsigned = {k: v for k, v in headers.items() if k.lower() in ("content-type", "x-api-key", "content-length")}
    body = callback.body
    flipped = body[:-1] + bytes([body[-1] ^ 0x01]) if body else b"x"
    return [
        ("a body changed after signing", flipped, headers),
        ("a body with a byte added", body + b" ", headers),
        ("no signature headers", body, unsigned),
    ]


async def check_callbacks_verified(registry: Registry, kind: AgencyKind) -> None:
    where = f"{kind.name} connector"
    async with _running(kind) as (sim, connector):
        dossier = _dossiers(registry, kind, 1)[0]
        await connector.submit(dossier, delivery(f"{dossier.id}:submit"))
        try:
            callback = await sim.callbacks.next(NEWS_TIMEOUT)
        except TimeoutError:
            raise AssertionError(f"{where}: the simulator sent no callback in {NEWS_TIMEOUT:.0f} s") from None
        for what, body, headers in _altered(callback):
            try:
                await connector.handle_callback(body, headers)
            except ProblemError as exc:
                expect(exc.status in (401, 403), f"{where}: a callback with {what} answered {exc.status}, not 401/403")
            except Exception as exc:
                raise AssertionError(f"{where}: a callback with {what} raised {type(exc).__name__}: {exc}") from exc
            else:
                raise AssertionError(f"{where}: a callback with {what} was taken: signatures are not checked")
        updates = await connector.handle_callback(callback.body, callback.headers)
        expect(any(_mine(u, dossier) for u in updates), f"{where}: the genuine callback gave no update of its dossier")


class _Stranger(BaseModel):
    model_config = ConfigDict(frozen=True)
    anything: str = "x"


async def check_lookups(registry: Registry, kind: AgencyKind) -> None:
    where = f"{kind.name} connector"
    async with _running(kind, timeout=FAULT_TIMEOUT * 5) as (sim, connector):
        for spec in kind.lookups:
            if spec.example is None:
                raise AssertionError(f"{where}: look-up {spec.name!r} has no example (LookupSpec.example)")
            try:
                query = spec.input_model.model_validate(spec.example())
            except ValidationError as exc:
                raise AssertionError(
                    f"{where}: the example of look-up {spec.name!r} breaks its input model: {exc}"
                ) from None
            answer = await connector.lookup(spec.name, query)
            expect(
                isinstance(answer, spec.output_model),
                f"{where}: look-up {spec.name!r} answered {type(answer).__name__}, not {spec.output_model.__name__}",
            )
            spec.output_model.model_validate(answer.model_dump())  # a model built without validation
            try:
                await connector.lookup(spec.name, _Stranger())
            except (AgencyError, ProblemError):
                pass
            else:
                raise AssertionError(f"{where}: look-up {spec.name!r} answered a query of the wrong model")
            await sim.set_faults(malformed_rate=1.0)
            try:
                got = await connector.lookup(spec.name, query)
            except AgencyError:
                pass
            else:
                raise AssertionError(f"{where}: look-up {spec.name!r} turned a garbled answer into {got!r}")
            finally:
                await sim.clear_faults()
