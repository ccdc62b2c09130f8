"""The shape of each file in a configuration folder. Validated by pydantic, never by assert."""

from __future__ import annotations

import re
from datetime import date, datetime, time
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from contracts.base import AgencyEid, MediaType, ProcedureCode, ProvinceCode
from contracts.guide import ProcedureGuide
from gateway.rights import Rights
from gateway.tls import OutboundTLS, ServerTLS, normalise_fingerprint, parse_subject

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
    tls: ServerTLS | None = Field(None, description="listen with TLS (and, optionally, client certificates)")
    max_connections: int = Field(
        1000, ge=1, le=1_000_000, description="open connections at once; past it a new one gets 503 and is closed"
    )
    header_timeout: float = Field(10.0, gt=0, le=600, description="seconds a request's headers may take to arrive")
    keepalive_timeout: float = Field(75.0, gt=0, le=3600, description="seconds an idle connection is kept open")
    shutdown_timeout: float = Field(5.0, ge=0, le=600, description="seconds requests in flight get at shutdown")
    loop: Literal["asyncio", "uvloop"] = Field(
        "asyncio", description="the event loop: uvloop (libuv) spends less CPU per request on the same work"
    )

    def base_url(self, port: int | None = None) -> str:
        """The gateway's address for others: public_url, else host and port."""
        if self.public_url:
            return self.public_url.rstrip("/")
        return f"http://{self.host}:{port or self.port}"


class StoreSettings(_Conf):
    backend: Literal["sqlite"] = "sqlite"
    path: str = "var/lienthong.db"
    url: str = Field(
        "",
        pattern=r"^$|^sqlite:///.+|^postgres(ql)?://.+",
        description="sqlite:///path or postgresql://user@host:port/db (several processes: docs/store.md); "
        "LIENTHONG_STORE_URL overrides it; empty: the SQLite file at `path`",
    )
    # 64 and not more: with a batch cap below the submissions in progress, the writer commits one group
    # while the event loop takes in the next; one batch of everyone makes them take turns (128 clients:
    # 3,004-3,042 submissions/s with 64, 2,697-2,888 with 256, 2,714-2,825 with 128, back to back).
    batch_max: int = Field(
        64,
        ge=1,
        le=10_000,
        description="most writes grouped in one commit; below limits.submissions_in_progress, so the event loop "
        "takes in the next submissions while a batch commits",
    )
    group_commit_wait: float = Field(
        0.001,
        ge=0,
        le=0.05,
        description="seconds the writer waits for more writes when several came together, so that one commit "
        "serves more of them under load; a lone write never waits",
    )
    lookup_record_wait: float = Field(
        0.01,
        ge=0,
        le=0.1,
        description="under load, the longest a look-up's audit record waits for others to share its commit "
        "while agencies answer (it still commits before its answer leaves; it stops waiting as soon as a "
        "look-up has its agency's answer)",
    )


class LimitsSettings(_Conf):
    max_body_bytes: int = Field(12 * 1024 * 1024, ge=1024)
    max_inline_attachment_bytes: int = Field(8 * 1024 * 1024, ge=0)
    applicant_proof_failures: int = Field(
        5, ge=1, description="wrong applicant ids a centre may send within the window before it must wait"
    )
    applicant_proof_window: float = Field(600.0, gt=0, description="seconds; see applicant_proof_failures")
    body_timeout: float = Field(
        30.0, gt=0, le=3600, description="seconds a request body may take to arrive; a slower one gets 408"
    )
    submissions_in_progress: int = Field(
        256,
        ge=1,
        le=100_000,
        description="submissions parsed, checked and waiting for their commit at once; the others wait with "
        "their body unparsed (it bounds the memory of a burst)",
    )
    uploads_in_progress: int = Field(
        32,
        ge=1,
        le=100_000,
        description="uploads (POST /v1/documents) streamed to the document store at once; the others wait "
        "with their body unread (it bounds the memory of many uploads together)",
    )


class RateLimitSettings(_Conf):
    """Token buckets: `burst` requests at once, refilled at the sustained rate. A client's own limits
    ([client.<id>.rate_limit] in clients.toml) override the per-client ones here."""

    enabled: bool = True
    requests_per_second: float = Field(50.0, gt=0, description="each client's sustained request rate")
    burst: int = Field(100, ge=1, description="requests a client may send at once above its sustained rate")
    lookups_per_minute: float = Field(120.0, gt=0, description="each client's sustained rate of look-ups")
    lookup_burst: int = Field(30, ge=1)
    auth_failures_per_minute: float = Field(
        10.0,
        gt=0,
        description="failed authentications a source address may make, sustained; past its burst, "
        "every request from it waits (429) until it may try again",
    )
    auth_failure_burst: int = Field(20, ge=1)
    public_per_minute: float = Field(
        300.0, gt=0, description="keyless requests (guides, the public catalog, verify, public status) per address"
    )
    public_burst: int = Field(60, ge=1, description="keyless requests an address may send at once")


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
    claim_wait: float = Field(
        0.003,
        ge=0,
        le=0.1,
        description="seconds the dispatcher waits, while deliveries are in flight, before claiming the slots they "
        "free, so that one claim (one commit) takes several jobs; with none in flight it claims at once",
    )
    claim_ahead: int = Field(
        2,
        ge=0,
        le=4,
        description="jobs each agency keeps claimed ahead, as a multiple of its concurrency: a delivery that "
        "ends starts the next one at once, without waiting for a claim (0: claim only for free slots)",
    )
    poll_interval: float = Field(0.5, gt=0)
    agency_poll_interval: float = Field(2.0, gt=0)
    deadline_sweep_interval: float = Field(
        60.0, gt=0, description="how often dossiers whose supplement deadline has passed are refused"
    )
    hold_refresh_interval: float = Field(
        2.0, gt=0, description="how often pauses are read from the store (taken by another process or the CLI)"
    )
    breaker: BreakerSettings = BreakerSettings()
    capture_bodies: bool = Field(
        False,
        description="keep what each delivery attempt sent (the dossier as the connector got it) and what came "
        "back (the receipt or the error), personal data masked, for the transaction browser",
    )
    body_retention: float = Field(
        7 * 86400.0, gt=0, description="seconds captured bodies are kept; the attempts themselves stay"
    )

    @model_validator(mode="before")
    @classmethod
    def _replaced(cls, data: Any) -> Any:
        if isinstance(data, dict) and "max_attempts" in data:
            raise ValueError("max_attempts was replaced by give_up_after (seconds of retrying; default 72 hours)")
        return data


class CallbackSettings(_Conf):
    replay_window: float = Field(
        900.0,
        ge=60,
        description="seconds a signed callback's nonce is kept: the same request within it is refused, even "
        "after a restart; keep it above the clock skew the agencies' signatures may have (300 s)",
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
    tls: OutboundTLS | None = Field(None, description="CAs, client certificate and pins for an https:// push_url")

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
        if self.tls is not None and not (self.push_url or "").startswith("https://"):
            raise ValueError("tls settings need an https:// push_url")
        if self.push_url:
            missing = [k for k in ("auth_url", "username", "madonvi") if not getattr(self, k)]
            if missing:
                raise ValueError(f"pushing to the portal needs {', '.join(missing)} as well")
        return self


class AuditSettings(_Conf):
    """`[audit]`: the key that seals the audit log and signs its checkpoints, and the key that hashes
    personal data in its records. Without a signing key the log is hash-chained only (a cut tail or an
    appended record then goes unseen)."""

    signing_key_file: str | None = Field(
        None, description="Ed25519 private key (PEM), relative to the configuration folder (lienthong audit keygen)"
    )
    signing_key: str | None = Field(None, description="the same key inline (PEM or base64 seed), from ${ENV}")
    public_key_file: str | None = Field(None, description="its public key, for `lienthong audit verify`")
    earlier_public_keys: tuple[str, ...] = Field(
        (), description="public keys (files or base64) of audit keys used before a rotation"
    )
    checkpoint_dir: str = Field(
        "var/audit-checkpoints", description="where signed checkpoints are exported, for shipping elsewhere"
    )
    checkpoint_interval: float = Field(60.0, gt=0, le=86400, description="seconds between checkpoints")
    pseudonym_key: str = Field(
        "",
        repr=False,
        description="secret key of the HMAC-SHA256 that stands for personal data (the fields of a look-up) in "
        "audit records; empty: a plain SHA-256, which a 12-digit personal id does not survive a search of, so "
        "set one (use ${ENV})",
    )

    @field_validator("signing_key_file", "signing_key", "public_key_file")
    @classmethod
    def _empty_is_none(cls, value: str | None) -> str | None:
        return value if value and value.strip() else None

    @model_validator(mode="after")
    def _one_key(self) -> AuditSettings:
        if self.signing_key_file and self.signing_key:
            raise ValueError("give the audit key as signing_key_file or signing_key, not both")
        return self


class SigningSettings(_Conf):
    """`[signing]`: the Ed25519 key that signs intake receipts and result documents (detached JWS,
    docs/citizens.md). No key: receipts and signatures are not offered (404) and no status links are made."""

    key_file: str | None = Field(
        None, description="Ed25519 private key (PEM, or base64 of its seed), relative to the configuration folder"
    )
    key: str | None = Field(None, repr=False, description="the same key inline, from ${ENV}")
    public_key_file: str | None = Field(None, description="its public key, for `lienthong verify` without the key")
    earlier_public_keys: tuple[str, ...] = Field(
        (), description="public keys (files or base64) of signing keys used before a rotation: still verified"
    )

    @field_validator("key_file", "key", "public_key_file")
    @classmethod
    def _empty_is_none(cls, value: str | None) -> str | None:
        return value if value and value.strip() else None

    @model_validator(mode="after")
    def _one_key(self) -> SigningSettings:
        if self.key_file and self.key:
            raise ValueError("give the signing key as key_file or key, not both")
        return self


_HOST_PATTERN = r"^(\*\.)?[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$|^\[?[0-9a-f:.]+\]?$"
DEFAULT_MEDIA_TYPES = (
    "application/pdf",
    "image/jpeg",
    "image/png",
    "image/tiff",
    "application/xml",
    "application/msword",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
)


class FetchSettings(_Conf):
    """Documents a centre names by URL, fetched by the gateway: only from the hosts listed here."""

    when: Literal["intake", "delivery"] = Field(
        "intake",
        description="intake: fetched before the 202, failures refused at once; delivery: fetched before the "
        "dossier goes to its agency, a failure asks the centre for the document (status 5)",
    )
    allowed_hosts: tuple[str, ...] = Field(
        (), description="host names (or *.suffix) documents may be fetched from; empty: no URL attachments"
    )
    allowed_networks: tuple[IPv4Network | IPv6Network, ...] = Field(
        (), description="loopback, private or link-local networks a listed host may resolve to; none by default"
    )
    timeout: float = Field(30.0, gt=0, le=600, description="seconds a fetch may take, whole")
    connect_timeout: float = Field(5.0, gt=0, le=60)

    @field_validator("allowed_hosts")
    @classmethod
    def _hosts(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        out = tuple(h.strip().lower() for h in v)
        bad = [h for h in out if not re.match(_HOST_PATTERN, h)]
        if bad:
            raise ValueError(f"not host names: {bad}; write example.gov.vn or *.example.gov.vn")
        return out


class DocumentsSettings(_Conf):
    """The document store: where submitted documents live, what is accepted, how long uploads wait."""

    backend: Literal["filesystem"] = "filesystem"
    path: str = Field("", description="the store's folder; empty: 'documents' beside the database")
    max_bytes: int = Field(64 * 1024 * 1024, ge=1024, description="largest document when its procedure names no limit")
    database_max_bytes: int = Field(
        256 * 1024,
        ge=0,
        le=8 * 1024 * 1024,
        description="documents sent inline up to this size are kept in the database, committed with their "
        "dossier (a burst of submissions shares one fsync); larger ones, and uploads, go to the folder",
    )
    media_types: tuple[MediaType, ...] = Field(
        DEFAULT_MEDIA_TYPES, min_length=1, description="accepted media types when the procedure names none"
    )
    upload_ttl: float = Field(24 * 3600.0, gt=0, description="seconds an upload may wait for a dossier to name it")
    upload_timeout: float = Field(
        900.0,
        gt=0,
        le=24 * 3600,
        description="seconds an upload's body may take to arrive, whole (it is streamed, not bound by [limits] "
        "body_timeout, which still bounds any pause in it); a slower one gets 408",
    )
    sweep_interval: float = Field(300.0, gt=0, description="seconds between sweeps of expired uploads")
    orphan_grace: float = Field(
        3600.0, ge=60, description="a stored document no dossier or upload names is deleted once this old"
    )
    fetch: FetchSettings = FetchSettings()


class AppointmentSettings(_Conf):
    """`[appointments]`: bookings with agencies' officers for referred dossiers."""

    remind_before: float = Field(
        86400.0, ge=0, description="seconds before a slot that the applicant's reminder event is written"
    )
    sweep_interval: float = Field(30.0, gt=0, description="seconds between looks for reminders that are due")
    max_days: int = Field(31, ge=1, le=90, description="furthest ahead, in days, slots may be asked for at once")


class WalletSettings(_Conf):
    """`[wallet]`: the VNeID wallet service that results go to when the applicant chose it (return_method 2)."""

    url: str = Field(pattern=r"^https?://", description="the wallet service's base URL")
    key_id: str = Field("lienthong-gateway", min_length=1)
    secret: str = Field(min_length=16, repr=False, description="the HMAC key every request is signed with; ${ENV}")
    timeout: float = Field(10.0, gt=0, le=120)
    concurrency: int = Field(4, ge=1, le=256, description="pushes in flight at once")
    give_up_after: float | None = Field(None, gt=0, description="retry budget in seconds; the dispatcher's otherwise")
    tls: OutboundTLS | None = Field(None, description="CAs, client certificate and pins for an https:// url")


class PaymentSettings(_Conf):
    """`[payments]`: the national payment platform that takes online payments of fees and tax notices."""

    url: str = Field(pattern=r"^https?://", description="the platform's API base URL")
    merchant_code: str = Field(min_length=1, max_length=50, description="the gateway's merchant code there")
    key_id: str = Field("lienthong-gateway", min_length=1)
    secret: str = Field(min_length=16, repr=False, description="HMAC key of requests and callbacks, both ways; ${ENV}")
    timeout: float = Field(10.0, gt=0, le=120)
    callback_url: str | None = Field(
        None, pattern=r"^https?://", description="where the platform posts; the server's public URL by default"
    )
    reconcile_after: float = Field(
        60.0, gt=0, description="seconds an unpaid payment waits for its callback before the platform is asked"
    )
    reconcile_interval: float = Field(30.0, gt=0, description="seconds between reconciliation rounds")
    tls: OutboundTLS | None = Field(None, description="CAs, client certificate and pins for an https:// url")


class RetentionSettings(_Conf):
    """Operational rows pruned by age (gateway/store/retention.py); dossiers, their events and the audit
    log are kept: their retention is the agencies' legal matter."""

    done_jobs_days: float = Field(
        30.0, gt=0, description="days a done delivery is kept (a dossier's latest one stays, without its inputs)"
    )
    idempotency_keys_days: float = Field(
        7.0, gt=0, description="days an Idempotency-Key is remembered: a request repeated later is a new one"
    )
    interval: float = Field(3600.0, gt=0, le=86400, description="seconds between two prunings")
    batch: int = Field(5000, ge=1, le=100_000, description="rows per transaction (the writer is never held long)")


class MetricsSettings(_Conf):
    """Who may read /metrics: by default a client with the admin right (its key or token, as Prometheus'
    `authorization` or `http_headers` setting sends it); public for a scraper on a private network."""

    public: bool = Field(False, description="serve /metrics without authentication")


class GatewaySettings(_Conf):
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    server: ServerSettings = ServerSettings()
    store: StoreSettings = StoreSettings()
    limits: LimitsSettings = LimitsSettings()
    rate_limits: RateLimitSettings = RateLimitSettings()
    dispatcher: DispatcherSettings = DispatcherSettings()
    callbacks: CallbackSettings = CallbackSettings()
    audit: AuditSettings = AuditSettings()
    portal: PortalSettings = PortalSettings()
    documents: DocumentsSettings = DocumentsSettings()
    appointments: AppointmentSettings = AppointmentSettings()
    wallet: WalletSettings | None = None
    payments: PaymentSettings | None = None
    signing: SigningSettings = SigningSettings()
    metrics: MetricsSettings = MetricsSettings()
    retention: RetentionSettings = RetentionSettings()


class ApiKeyConf(_Conf):
    """One of a client's API keys: several may be active at once, so a key is rotated with an overlap."""

    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the key (lienthong keys new)")
    expires: datetime | None = Field(None, description="from this instant the key is refused (with a time zone)")
    label: str = Field("", description="for operators: which key this is")

    @field_validator("expires")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("give the expiry with its time zone, e.g. 2026-07-01T00:00:00+07:00")
        return value


class CertificateConf(_Conf):
    """How a client's certificate is recognised: its fingerprints, or its subject (any certificate the
    configured CAs issued with this exact subject: renewals need no configuration change)."""

    sha256: tuple[str, ...] = Field((), description="SHA-256 fingerprints of the client's certificates")
    subject: str | None = Field(None, description="RFC 4514 subject, e.g. 'CN=mot-cua-hoan-kiem,O=UBND Ha Noi,C=VN'")

    @field_validator("sha256")
    @classmethod
    def _fingerprints(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(normalise_fingerprint(v) for v in value)

    @field_validator("subject")
    @classmethod
    def _subject(cls, value: str | None) -> str | None:
        if value is not None:
            parse_subject(value)
        return value

    @model_validator(mode="after")
    def _something(self) -> CertificateConf:
        if not self.sha256 and self.subject is None:
            raise ValueError("name the certificate by sha256 fingerprints or by subject")
        return self


class ClientRateLimit(_Conf):
    """One client's own limits; what it leaves out comes from gateway.toml's [rate_limits]."""

    requests_per_second: float | None = Field(None, gt=0)
    burst: int | None = Field(None, ge=1)
    lookups_per_minute: float | None = Field(None, gt=0)
    lookup_burst: int | None = Field(None, ge=1)


class ClientConf(_Conf):
    name: str
    kind: Literal["centre", "portal", "agency", "operator"]
    unit: AgencyEid | None = Field(None, description="the centre's agency electronic id (dossier codes)")
    province: ProvinceCode | None = None
    scopes: frozenset[Scope]
    api_key_sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$", description="one API key, never expiring")
    api_keys: tuple[ApiKeyConf, ...] = Field((), description="API keys with expiry, for rotation with overlap")
    certificate: CertificateConf | None = Field(None, description="the client's TLS client certificate")
    require_certificate: bool = Field(
        False, description="an API key or token alone is refused: the request must come with this certificate"
    )
    token_issuers: tuple[str, ...] = Field((), description="issuers ([issuer.<name>]) whose tokens may name it")
    token_subject: str | None = Field(None, description="the token claim value naming it; default: the client id")
    rights: Rights = Field(default_factory=Rights, description="procedures, agencies and look-ups it may use")
    agency: str | None = Field(None, description="for agency clients: whose callbacks they post")
    rate_limit: ClientRateLimit = ClientRateLimit()

    @model_validator(mode="after")
    def _kind_fields(self) -> ClientConf:
        if "submit" in self.scopes and self.unit is None:
            raise ValueError("a client with the submit scope needs its receiving unit (unit)")
        if "callback" in self.scopes and self.agency is None:
            raise ValueError("a client with the callback scope needs the agency it speaks for (agency)")
        if self.api_key_sha256 is None and not self.api_keys and self.certificate is None and not self.token_issuers:
            raise ValueError("a client needs a credential: api_key_sha256, api_keys, certificate or token_issuers")
        if self.require_certificate and self.certificate is None:
            raise ValueError("require_certificate needs a certificate")
        if self.rights.own_province_only and self.province is None:
            raise ValueError("rights.own_province_only needs the client's province")
        return self

    def key_hashes(self) -> list[ApiKeyConf]:
        """Every API key of the client, the single `api_key_sha256` as one that never expires."""
        single = [ApiKeyConf(sha256=self.api_key_sha256)] if self.api_key_sha256 else []
        return single + list(self.api_keys)


Algorithm = Literal["EdDSA", "ES256", "RS256"]


class IssuerConf(_Conf):
    """`[issuer.<name>]` in clients.toml: who signs tokens the gateway accepts, and how to read them."""

    issuer: str = Field(min_length=1, description="the iss claim of its tokens")
    audience: tuple[str, ...] = Field(min_length=1, description="aud values meaning this gateway")
    jwks_file: str | None = Field(None, description="its public keys (JWKS), relative to the configuration folder")
    jwks_url: str | None = Field(None, description="where the gateway fetches its JWKS (https)")
    algorithms: tuple[Algorithm, ...] = Field(("EdDSA", "ES256", "RS256"), min_length=1)
    leeway: float = Field(30.0, ge=0, le=300, description="seconds of clock skew allowed on exp and nbf")
    max_lifetime: float = Field(86400.0, gt=0, description="tokens valid for longer than this (exp - iat) are refused")
    client_claim: str = Field("sub", min_length=1, description="the claim naming the client (its token_subject)")
    scope_claim: str = Field(
        "scope", description="claim with the token's scopes (space-separated or a list); empty: the client's own"
    )
    jwks_refresh: float = Field(3600.0, ge=10, description="seconds before fetched keys are fetched again")
    jwks_min_interval: float = Field(30.0, ge=0, description="at most one fetch this often for an unknown key id")

    @field_validator("audience", mode="before")
    @classmethod
    def _one_or_more(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value

    @field_validator("jwks_url")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("https://", "http://")):
            raise ValueError("jwks_url must be an https:// URL")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> IssuerConf:
        if (self.jwks_file is None) == (self.jwks_url is None):
            raise ValueError("give the issuer's keys as jwks_file or jwks_url (one of them)")
        return self


class ClientsFile(_Conf):
    client: dict[str, ClientConf] = Field(default_factory=dict)
    issuer: dict[str, IssuerConf] = Field(default_factory=dict)


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


class DocumentLimitsConf(_Conf):
    """The operator's limits for one document component of a procedure (`[procedure.documents.<code>]`)."""

    max_bytes: int | None = Field(None, gt=0)
    media_types: tuple[MediaType, ...] | None = None


class ProcedureConf(_Conf):
    code: ProcedureCode
    name: str | None = None
    processing_days: int | None = Field(None, ge=0, le=365)
    fees_vnd: int | None = Field(None, ge=0)
    sector_code: str | None = Field(None, max_length=50, description="MaLinhVuc, from the national procedure database")
    portal_databases: list[str] | None = Field(None, description="DSKetNoiCSDL codes reported to the national portal")
    referral: bool | None = Field(None, description="the applicant needs an appointment with the agency's officer")
    enabled: bool = True
    documents: dict[str, DocumentLimitsConf] = Field(
        default_factory=dict, description="component code -> limits replacing the plugin's"
    )


class ProceduresFile(_Conf):
    procedure: list[ProcedureConf] = Field(default_factory=list)


class GuidesFile(_Conf):
    """guides.toml: the applicant's guide to each procedure (`[guide."1.004194"]`), printed at the counters
    and served by the public API (reloadable)."""

    guide: dict[ProcedureCode, ProcedureGuide] = Field(default_factory=dict)


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
    issuers: dict[str, IssuerConf] = Field(default_factory=dict)
    jwks: dict[str, Any] = Field(default_factory=dict)  # issuer name -> its JWKS file, read and checked
    agencies: dict[str, AgencyConf]
    routes: list[RouteConf]
    procedures: list[ProcedureConf]
    guides: dict[str, ProcedureGuide] = Field(default_factory=dict)  # procedure code -> guides.toml's guide
    bundles: dict[str, Any] = Field(default_factory=dict)  # id -> gateway.bundles.BundleSpec
    windows: list[WindowConf] = Field(default_factory=list)  # maintenance.toml: reloadable
    endpoint_settings: dict[tuple[str, str], Any] = Field(default_factory=dict)
    calendar: CalendarFile = CalendarFile()
