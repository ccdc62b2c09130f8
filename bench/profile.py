"""Sampling profiles of the gateway under benchmark load, with py-spy (optional: `pip install py-spy`).

    .venv/bin/python -m bench.run --profile            # writes bench/results/profile-<scenario>.txt
    .venv/bin/python -m bench.profile bench/results/profile-lookup.txt   # summarise one again
    LIENTHONG_BENCH_GIL=1 .venv/bin/python -m bench.run --profile   # only the thread holding the GIL

py-spy samples the gateway process from outside (it is not imported, and the plain benchmark does
not need it); the figures of a profiled run are lower than an unprofiled one. A profile is stored in
py-spy's collapsed ("raw") format, one stack per line with its sample count, and summarised here as
the functions that hold the most samples, by themselves ("self") and with what they call ("total").
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import sys
from collections import Counter
from pathlib import Path


class Profiler:
    """py-spy recording one process until stopped."""

    def __init__(self, pid: int, out: Path, rate: int = 250) -> None:
        self.pid, self.out, self.rate = pid, out, rate
        self.proc: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> Profiler:
        exe = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
        if exe is None:
            raise RuntimeError("--profile needs py-spy: .venv/bin/pip install py-spy")
        self.proc = await asyncio.create_subprocess_exec(
            exe,
            "record",
            "--pid",
            str(self.pid),
            "--rate",
            str(self.rate),
            "--format",
            "raw",
            "--threads",
            "--nonblocking",
            "--output",
            str(self.out),
            *(["--gil"] if os.environ.get("LIENTHONG_BENCH_GIL") else []),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        await asyncio.sleep(0.5)  # let it attach
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGINT)
            await asyncio.wait_for(self.proc.wait(), 30)


def _frame_name(frame: str) -> str:
    """'function (path/to/file.py:123)' -> 'function (file.py)': lines of one function merge."""
    name, _, where = frame.partition(" (")
    file = where.rsplit(":", 1)[0].rstrip(")")
    parts = Path(file).parts
    short = "/".join(parts[-2:]) if parts else file
    return f"{name} ({short})"


def summarise(path: Path, top: int = 30) -> str:
    total = 0
    self_: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        total += n
        threads[frames[0]] += n
        names = [_frame_name(f) for f in frames[1:]]
        if names:
            self_[names[-1]] += n
        for name in set(names):
            inclusive[name] += n
    if not total:
        return f"{path}: no samples"
    out = [f"{path.name}: {total} samples (busy time only)", "", "by thread:"]
    out += [f"  {n / total:6.1%}  {t}" for t, n in threads.most_common(6)]
    out += ["", "self time (the function itself):"]
    out += [f"  {n / total:6.1%}  {name}" for name, n in self_.most_common(top)]
    out += ["", "total time (with what it calls):"]
    out += [f"  {n / total:6.1%}  {name}" for name, n in inclusive.most_common(top)]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("profiles", type=Path, nargs="+")
    p.add_argument("--top", type=int, default=30)
    args = p.parse_args(argv)
    for path in args.profiles:
        print(summarise(path, args.top))
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
