"""`lienthong serve --workers N`: N gateway processes on one machine, sharing the listening port.

Each worker is a whole `lienthong serve` (its own event loop, store connections, dispatcher) whose
listener sets SO_REUSEPORT, so the kernel spreads new connections over them. They share the store, which
must therefore be PostgreSQL (docs/store.md): an SQLite file belongs to one process. This supervisor only
starts them, starts again one that died (after a short pause, longer if it keeps dying at once) and, on
SIGTERM or SIGINT, passes SIGTERM on and waits while each drains (finishes its requests and deliveries).
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from pathlib import Path

import structlog

log = structlog.get_logger("lienthong.workers")
RESTART_PAUSE = 1.0  # seconds before a dead worker is started again; doubled while it dies young, up to:
RESTART_PAUSE_MAX = 30.0
YOUNG = 10.0  # a worker that dies within this many seconds of its start died young


class Supervisor:
    def __init__(self, conf: Path, port: int, workers: int, *, demo_secrets: bool = False) -> None:
        self.conf, self.port, self.count = conf, port, workers
        self.demo_secrets = demo_secrets  # the workers are told what the operator accepted
        self.procs: dict[int, asyncio.subprocess.Process] = {}
        self.stopping = False
        self.restarts = 0

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "gateway.cli",
            "serve",
            "--conf",
            str(self.conf),
            "--port",
            str(self.port),
            "--reuse-port",
            *(["--demo-secrets"] if self.demo_secrets else []),
        ]

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            slots = [asyncio.create_task(self._keep(i, stop), name=f"worker-{i}") for i in range(self.count)]
            await stop.wait()
            self.stopping = True
            log.info("workers_stopping", workers=len(self.procs))
            for proc in self.procs.values():
                if proc.returncode is None:
                    proc.send_signal(signal.SIGTERM)
            await asyncio.gather(*slots)
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
        return 0

    async def _keep(self, slot: int, stop: asyncio.Event) -> None:
        """Keep one worker running until the supervisor stops."""
        pause = RESTART_PAUSE
        while True:
            started = time.monotonic()
            proc = await asyncio.create_subprocess_exec(*self.command())
            self.procs[slot] = proc
            log.info("worker_started", slot=slot, pid=proc.pid)
            if self.stopping:  # the stop came while it was starting: it drains like the others
                proc.send_signal(signal.SIGTERM)
            code = await proc.wait()
            if self.stopping:
                log.info("worker_stopped", slot=slot, pid=proc.pid, code=code)
                return
            lived = time.monotonic() - started
            wait = pause if lived < YOUNG else RESTART_PAUSE
            pause = min(wait * 2, RESTART_PAUSE_MAX)  # the next wait, should it die young again
            self.restarts += 1
            log.error("worker_died", slot=slot, pid=proc.pid, code=code, seconds=round(lived, 1), restart_in=wait)
            try:
                async with asyncio.timeout(wait):
                    await stop.wait()
                return  # stopping: not restarted
            except TimeoutError:
                pass
