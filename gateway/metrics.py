"""Counters kept in memory and exposed in Prometheus text format at /metrics."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Metrics:
    requests: Counter[tuple[str, int]] = field(default_factory=Counter)  # (route, status)
    request_seconds: dict[str, float] = field(default_factory=dict)

    def observe(self, route: str, status: int, seconds: float) -> None:
        self.requests[(route, status)] += 1
        self.request_seconds[route] = self.request_seconds.get(route, 0.0) + seconds

    def render(self, extra: dict[str, float]) -> str:
        lines = ["# TYPE lienthong_http_requests_total counter"]
        for (route, status), n in sorted(self.requests.items()):
            lines.append(f'lienthong_http_requests_total{{route="{route}",status="{status}"}} {n}')
        lines.append("# TYPE lienthong_http_request_seconds_total counter")
        for route, s in sorted(self.request_seconds.items()):
            lines.append(f'lienthong_http_request_seconds_total{{route="{route}"}} {s:.6f}')
        for name, value in sorted(extra.items()):
            lines.append(f"{name} {value}")
        return "\n".join(lines) + "\n"
