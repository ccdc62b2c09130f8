"""The shape of each file in a configuration folder. Validated by pydantic, never by assert."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from contracts.base import AgencyEid, ProcedureCode, ProvinceCode

Scope = Literal["submit", "read", "lookup", "callback", "admin"]


class _Conf(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ServerSettings(_Conf):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    public_url: str | None = Field(
        None, description="how agencies and the national portal reach this gateway (callbacks, result documents)"
    )
    backlog: int = Field(1024, ge=16, le=65535, description="pending connections the kernel queues (listen backlog)")

    def base_url(self, port: int | None = None) -> str:
        """The gateway's address for others: public_url, else host and port."""
        if self.public_url:
            return self.public_url.rstrip("/")
        return f"http://{self.host}:{port or self.port}"


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


class DispatcherSettings(_Conf):
    max_attempts: int = Field(8, ge=1, le=100)
    base_delay: float = Field(1.0, gt=0)
    max_delay: float = Field(300.0, gt=0)
    jitter: float = Field(1.0, ge=0)
    lease_seconds: float = Field(60.0, gt=0)
    batch: int = Field(64, ge=1, le=1000)
    poll_interval: float = Field(0.5, gt=0)
    agency_poll_interval: float = Field(2.0, gt=0)
    deadline_sweep_interval: float = Field(
        60.0, gt=0, description="how often dossiers whose supplement deadline has passed are refused"
    )


class PortalSettings(_Conf):
    """Pushing the status feed to the national portal in its protocol (gateway/portal.py); no push_url (or an
    empty one): no pushing. The names are OpenCPS's: auth_endpoint, integration_endpoint, madonvi, dstcode."""

    push_url: str | None = Field(None, description="the portal's integration endpoint; empty: no pushing")
    auth_url: str | None = Field(None, description="its login endpoint, which gives the session")
    username: str = ""
    password: str = ""
    madonvi: str = Field("", description="the unit's code at the portal, sent with every call")
    dstcode: str = Field("", description="sent as the dstcode header, for the relay in front of the portal")
    session_ttl: float = Field(600.0, gt=0, description="seconds a session is used before logging in again")
    batch: int = Field(200, ge=1, le=1000, description="feed items per push")
    interval: float = Field(1.0, gt=0, description="seconds between looks at the feed when nothing woke the pusher")
    timeout: float = Field(10.0, gt=0, description="seconds a call may take")
    base_delay: float = Field(0.5, gt=0, description="first retry delay after a failed push (doubles each time)")
    max_delay: float = Field(60.0, gt=0, description="longest wait between two attempts")
    jitter: float = Field(0.5, ge=0)

    @field_validator("push_url", "auth_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @model_validator(mode="after")
    def _complete(self) -> PortalSettings:
        if self.base_delay > self.max_delay:
            raise ValueError("base_delay must not exceed max_delay")
        if self.push_url:
            missing = [k for k in ("auth_url", "username", "madonvi") if not getattr(self, k)]
            if missing:
                raise ValueError(f"pushing to the portal needs {', '.join(missing)} as well")
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
    sector_code: str | None = Field(None, max_length=50, description="MaLinhVuc, from the national procedure database")
    portal_databases: list[str] | None = Field(None, description="DSKetNoiCSDL codes reported to the national portal")
    enabled: bool = True


class ProceduresFile(_Conf):
    procedure: list[ProcedureConf] = Field(default_factory=list)


class BundlesFile(_Conf):
    bundle: dict[str, dict[str, Any]] = Field(default_factory=dict)


class CalendarDay(_Conf):
    date: date
    reason: str = Field(min_length=1, max_length=300, description="the decision that says so, e.g. a VPCP notice")


class CalendarFile(_Conf):
    """calendar.toml: days off and working days decided after the `holidays` release the gateway ships with
    (a government notice moving a day off, a provincial decision). Reloadable; each date once (loader.py)."""

    day_off: list[CalendarDay] = Field(default_factory=list)
    working_day: list[CalendarDay] = Field(default_factory=list)


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
    endpoint_settings: dict[tuple[str, str], Any] = Field(default_factory=dict)
    calendar: CalendarFile = CalendarFile()
