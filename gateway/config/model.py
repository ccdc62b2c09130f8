"""The shape of each file in a configuration folder. Validated by pydantic, never by assert."""

from __future__ import annotations

from datetime import datetime, time
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from contracts.base import AgencyEid, ProcedureCode, ProvinceCode

Scope = Literal["submit", "read", "lookup", "callback", "admin"]


class _Conf(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ServerSettings(_Conf):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    public_url: str | None = Field(None, description="how agencies reach this gateway for callbacks")
    backlog: int = Field(1024, ge=16, le=65535, description="pending connections the kernel queues (listen backlog)")


class StoreSettings(_Conf):
    backend: Literal["sqlite"] = "sqlite"
    path: str = "var/lienthong.db"
    batch_max: int = Field(256, ge=1, le=10_000, description="most submissions grouped in one commit")


class LimitsSettings(_Conf):
    max_body_bytes: int = Field(12 * 1024 * 1024, ge=1024)
    max_inline_attachment_bytes: int = Field(8 * 1024 * 1024, ge=0)
    applicant_proof_failures: int = Field(
        5, ge=1, description="wrong applicant ids a centre may send within the window before it must wait"
    )
    applicant_proof_window: float = Field(600.0, gt=0, description="seconds; see applicant_proof_failures")


class BreakerSettings(_Conf):
    """When an agency endpoint is taken for down, and how often it is tried again (gateway/breaker.py)."""

    failures: int = Field(
        5, ge=0, le=1000, description="consecutive transient failures that open an endpoint's breaker; 0: never"
    )
    probe_after: float = Field(5.0, gt=0, description="seconds from the opening to the first probe")
    probe_max: float = Field(30.0, gt=0, description="longest wait between two probes (it doubles after each)")
    probe_jitter: float = Field(0.2, ge=0, le=1, description="each wait is lengthened by up to this share, at random")
    retry_after_max: float = Field(3600.0, gt=0, description="longest Retry-After of an agency that is obeyed")

    @model_validator(mode="after")
    def _probes(self) -> BreakerSettings:
        if self.probe_after > self.probe_max:
            raise ValueError("probe_after must not exceed probe_max")
        return self


class DispatcherSettings(_Conf):
    give_up_after: float = Field(
        72 * 3600.0,
        gt=0,
        description="seconds a delivery is retried after its first transient failure before it is dead-lettered; "
        "time held by an open breaker, a maintenance window or a pause does not count (per agency: agencies.toml)",
    )
    base_delay: float = Field(1.0, gt=0)
    max_delay: float = Field(300.0, gt=0, description="longest wait between two attempts of a delivery or a poll")
    jitter: float = Field(1.0, ge=0)
    lease_seconds: float = Field(60.0, gt=0)
    batch: int = Field(64, ge=1, le=1000)
    poll_interval: float = Field(0.5, gt=0)
    agency_poll_interval: float = Field(2.0, gt=0)
    deadline_sweep_interval: float = Field(
        60.0, gt=0, description="how often dossiers whose supplement deadline has passed are refused"
    )
    hold_refresh_interval: float = Field(
        2.0, gt=0, description="how often pauses are read from the store (taken by another process or the CLI)"
    )
    breaker: BreakerSettings = BreakerSettings()

    @model_validator(mode="before")
    @classmethod
    def _replaced(cls, data: Any) -> Any:
        if isinstance(data, dict) and "max_attempts" in data:
            raise ValueError("max_attempts was replaced by give_up_after (seconds of retrying; default 72 hours)")
        return data


class PortalSettings(_Conf):
    """Pushing the status feed to the national portal; no push_url (or an empty one): no pushing."""

    push_url: str | None = Field(None, description="where each batch of the feed is POSTed; empty: no pushing")
    api_key: str = Field("", description="sent as X-Api-Key")
    batch: int = Field(200, ge=1, le=1000, description="feed items per push")
    interval: float = Field(1.0, gt=0, description="seconds between looks at the feed when nothing woke the pusher")
    timeout: float = Field(10.0, gt=0, description="seconds a push may take")
    base_delay: float = Field(0.5, gt=0, description="first retry delay after a failed push (doubles each time)")
    max_delay: float = Field(60.0, gt=0, description="longest wait between two attempts")
    jitter: float = Field(0.5, ge=0)

    @field_validator("push_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("push_url must be an http:// or https:// URL")
        return value

    @model_validator(mode="after")
    def _delays(self) -> PortalSettings:
        if self.base_delay > self.max_delay:
            raise ValueError("base_delay must not exceed max_delay")
        return self


class GatewaySettings(_Conf):
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    server: ServerSettings = ServerSettings()
    store: StoreSettings = StoreSettings()
    limits: LimitsSettings = LimitsSettings()
    dispatcher: DispatcherSettings = DispatcherSettings()
    portal: PortalSettings = PortalSettings()


class ClientConf(_Conf):
    name: str
    kind: Literal["centre", "portal", "agency", "operator"]
    unit: AgencyEid | None = Field(None, description="the centre's agency electronic id (dossier codes)")
    province: ProvinceCode | None = None
    scopes: frozenset[Scope]
    api_key_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    agency: str | None = Field(None, description="for agency clients: whose callbacks they post")

    @model_validator(mode="after")
    def _kind_fields(self) -> ClientConf:
        if "submit" in self.scopes and self.unit is None:
            raise ValueError("a client with the submit scope needs its receiving unit (unit)")
        if "callback" in self.scopes and self.agency is None:
            raise ValueError("a client with the callback scope needs the agency it speaks for (agency)")
        return self


class ClientsFile(_Conf):
    client: dict[str, ClientConf] = Field(default_factory=dict)


class AgencyConf(_Conf):
    kind: str
    title: str = ""
    concurrency: int = Field(8, ge=1, le=1000, description="deliveries in flight at once")
    give_up_after: float | None = Field(None, gt=0, description="this agency's [dispatcher] give_up_after")
    replay_dead_on_recovery: bool = Field(
        False, description="when an endpoint's breaker closes, replay its deliveries dead-lettered since it failed"
    )
    endpoints: dict[str, dict[str, Any]] = Field(min_length=1)


class AgenciesFile(_Conf):
    agency: dict[str, AgencyConf] = Field(default_factory=dict)


class RouteConf(_Conf):
    procedure: str = Field(description="a procedure code, or a pattern such as 1.00* or *")
    agency: str
    endpoint: str | None = None
    by_province: dict[ProvinceCode, str] | None = Field(
        None, description="jurisdiction-bound: the dossier's province picks the endpoint"
    )

    @model_validator(mode="after")
    def _one_target(self) -> RouteConf:
        if (self.endpoint is None) == (self.by_province is None):
            raise ValueError("a route names either one endpoint or by_province, not both")
        return self


class RoutesFile(_Conf):
    route: list[RouteConf] = Field(default_factory=list)


class ProcedureConf(_Conf):
    code: ProcedureCode
    name: str | None = None
    processing_days: int | None = Field(None, ge=0, le=365)
    fees_vnd: int | None = Field(None, ge=0)
    enabled: bool = True


class ProceduresFile(_Conf):
    procedure: list[ProcedureConf] = Field(default_factory=list)


class BundlesFile(_Conf):
    bundle: dict[str, dict[str, Any]] = Field(default_factory=dict)


Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class WindowConf(_Conf):
    """A maintenance window: nothing is sent to the agency (or one endpoint) while it lasts.

    One-off: `start` and `end` are dates with times. Weekly: `days` names the days it starts on, and
    `start` and `end` are times of day; an end at or before the start falls on the next day.
    """

    agency: str
    endpoint: str | None = Field(None, description="one endpoint of the agency; absent: all of them")
    reason: str = Field("", max_length=500)
    days: list[Weekday] | None = Field(None, min_length=1, description="weekly: the days it starts on")
    start: datetime | time
    end: datetime | time
    timezone: str = Field("Asia/Ho_Chi_Minh", description="of times of day, and of dates given without an offset")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @model_validator(mode="after")
    def _shape(self) -> WindowConf:
        if self.days is not None:
            if not (isinstance(self.start, time) and isinstance(self.end, time)):
                raise ValueError("a weekly window (days) has times of day as start and end, such as 22:00")
            if self.start.tzinfo is not None or self.end.tzinfo is not None:
                raise ValueError("times of day take the window's timezone, not an offset of their own")
        else:
            if not (isinstance(self.start, datetime) and isinstance(self.end, datetime)):
                raise ValueError("a one-off window has a date and time as start and end; a weekly one names its days")
            zone = ZoneInfo(self.timezone)
            start, end = (t if t.tzinfo else t.replace(tzinfo=zone) for t in (self.start, self.end))
            if end <= start:
                raise ValueError("end must come after start")
        return self


class MaintenanceFile(_Conf):
    window: list[WindowConf] = Field(default_factory=list)


class Config(_Conf):
    """A whole configuration folder, validated and cross-checked."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    base_dir: Path
    gateway: GatewaySettings
    clients: dict[str, ClientConf]
    agencies: dict[str, AgencyConf]
    routes: list[RouteConf]
    procedures: list[ProcedureConf]
    bundles: dict[str, Any] = Field(default_factory=dict)  # id -> gateway.bundles.BundleSpec
    windows: list[WindowConf] = Field(default_factory=list)  # maintenance.toml: reloadable
    endpoint_settings: dict[tuple[str, str], Any] = Field(default_factory=dict)
