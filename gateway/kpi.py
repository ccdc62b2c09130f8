"""Centre performance: KPIs over a period from the store's counters, the league table of centres, CSV.

The figures follow the national portal's way of counting: a dossier is on time when it finished no later
than its due date (NgayKetThucXuLy <= NgayHenTra); received and finished are counted on the (local) day
they happened; in progress and already late are counted now. Working days to finish go from the day
received to the day finished, by the working-day calendar (make-up Saturdays count, holidays do not).
"""

from __future__ import annotations

import csv
import io
import math
import tomllib
from collections import Counter
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.store.kpis import KpiRows

LEAGUE_FILE = "league.toml"


def percentile(hist: Counter[int], q: float) -> int | None:
    """The nearest-rank percentile of a histogram of whole numbers (None when it is empty)."""
    n = sum(hist.values())
    if n == 0:
        return None
    rank = max(1, math.ceil(q * n))
    seen = 0
    for value in sorted(hist):
        seen += hist[value]
        if seen >= rank:
            return value
    return max(hist)  # pragma: no cover - the loop always reaches rank


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def report(rows: KpiRows) -> list[dict[str, Any]]:
    """One line per item (centre, agency, ...) with every figure, sorted by item."""
    items = sorted(set(rows.totals) | set(rows.open))
    out = []
    for item in items:
        t = rows.totals.get(item, {})
        hist = rows.days.get(item, Counter())
        finished, on_time = t.get("finished", 0), t.get("on_time", 0)
        in_progress, overdue = rows.open.get(item, (0, 0))
        out.append(
            {
                "item": item,
                "received": t.get("received", 0),
                "finished": finished,
                "on_time": on_time,
                "late": t.get("late", 0),
                "on_time_rate": _rate(on_time, finished),
                "in_progress": in_progress,
                "in_progress_late": overdue,
                "avg_working_days": round(t.get("days_sum", 0) / finished, 2) if finished else None,
                "p90_working_days": percentile(hist, 0.9),
                "supplements": t.get("supplements", 0),
                "returned": t.get("returned", 0),
                "returned_elsewhere": t.get("returned_elsewhere", 0),
                "returned_elsewhere_share": _rate(t.get("returned_elsewhere", 0), t.get("returned", 0)),
                "with_fees": t.get("with_fees", 0),
                "paid_online": t.get("paid_online", 0),
                "paid_online_share": _rate(t.get("paid_online", 0), t.get("with_fees", 0)),
            }
        )
    return out


CSV_COLUMNS = (
    "item",
    "received",
    "finished",
    "on_time",
    "late",
    "on_time_rate",
    "in_progress",
    "in_progress_late",
    "avg_working_days",
    "p90_working_days",
    "supplements",
    "returned",
    "returned_elsewhere",
    "returned_elsewhere_share",
    "with_fees",
    "paid_online",
    "paid_online_share",
)


def to_csv(by: str, lines: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow([by, *CSV_COLUMNS[1:]])
    for line in lines:
        writer.writerow(["" if line[c] is None else line[c] for c in CSV_COLUMNS])
    return buf.getvalue()


def previous_period(start: date, end: date) -> tuple[date, date]:
    """The period of the same length just before [start, end]."""
    length = (end - start).days + 1
    return start - timedelta(days=length), start - timedelta(days=1)


class LeagueSettings(BaseModel):
    """How centres are ranked (conf/league.toml, [league]): score = on_time_weight * on-time rate +
    volume_weight * volume / the largest volume of the period."""

    model_config = ConfigDict(extra="forbid")
    on_time_weight: float = Field(0.7, ge=0)
    volume_weight: float = Field(0.3, ge=0)
    volume: Literal["finished", "received"] = Field("finished", description="what counts as a centre's volume")
    min_finished: int = Field(1, ge=0, description="centres that finished fewer are listed unranked")


class LeagueFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    league: LeagueSettings = Field(default_factory=LeagueSettings)


def load_league(conf_dir: Path) -> LeagueSettings:
    """The weights from conf/league.toml (defaults when the file is absent). ValueError names the problem."""
    path = conf_dir / LEAGUE_FILE
    if not path.exists():
        return LeagueSettings()
    try:
        return LeagueFile.model_validate(tomllib.loads(path.read_text("utf-8"))).league
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{LEAGUE_FILE}: {exc}") from None
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ValueError(f"{LEAGUE_FILE}: {problems}") from None


@dataclass(frozen=True, slots=True)
class Standing:
    centre: str
    score: float | None
    rank: int | None  # None: too few finished to be ranked
    previous_rank: int | None
    line: dict[str, Any]

    @property
    def movement(self) -> int | None:
        """Places gained since the previous period (negative: lost); None when unranked then or now."""
        if self.rank is None or self.previous_rank is None:
            return None
        return self.previous_rank - self.rank


def _scores(lines: list[dict[str, Any]], s: LeagueSettings) -> dict[str, float]:
    eligible = [ln for ln in lines if ln["finished"] >= max(1, s.min_finished)]
    top = max((ln[s.volume] for ln in eligible), default=0)
    scores = {}
    for ln in eligible:
        volume = ln[s.volume] / top if top else 0.0
        scores[ln["item"]] = round(s.on_time_weight * (ln["on_time_rate"] or 0.0) + s.volume_weight * volume, 6)
    return scores


def _ranks(scores: dict[str, float]) -> dict[str, int]:
    """Competition ranking (1, 2, 2, 4), ties broken by nothing: equal scores share a place."""
    ordered = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
    ranks: dict[str, int] = {}
    for i, (centre, score) in enumerate(ordered):
        ranks[centre] = ranks[ordered[i - 1][0]] if i and ordered[i - 1][1] == score else i + 1
    return ranks


def league(current: list[dict[str, Any]], previous: list[dict[str, Any]], s: LeagueSettings) -> list[Standing]:
    """Centres ranked by their score this period, with their rank the period before."""
    scores, before = _scores(current, s), _ranks(_scores(previous, s))
    ranks = _ranks(scores)
    standings = [
        Standing(ln["item"], scores.get(ln["item"]), ranks.get(ln["item"]), before.get(ln["item"]), ln)
        for ln in current
    ]
    return sorted(standings, key=lambda st: (st.rank is None, st.rank or 0, st.centre))
