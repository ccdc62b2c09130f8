"""SOAP 1.1/1.2 transport: zeep builds and reads envelopes, aiohttp carries them, lxml checks answers first.

zeep only ever sees local files (OfflineTransport) and answers that already passed the hardened
parser and the WSDL's schema. Answers may be multipart/related (MTOM/XOP, SOAP with Attachments):
`exchange()` returns their attachments. The blocking WSDL load runs in a thread (`load()`), and so does
reading any large answer. Whatever goes wrong, `send()` raises AgencyErrors only.
"""

from __future__ import annotations

import asyncio
import functools
import os
import ssl
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import structlog
import zeep
from lxml import etree
from yarl import URL
from zeep.wsdl.bindings.soap import Soap12Binding, SoapBinding

from adapters.base import CheckResult, Transport, mask_config
from adapters.errors import map_http_errors, retry_after_of
from adapters.rest import read_limited
from adapters.soap import answer_schema
from adapters.soap.answers import AnswerRules, SoapAnswer, read_answer
from adapters.soap.fault_classes import FaultClass, FaultTable
from adapters.soap.headers import SoapHeaders, Wsse, describe_wsse, soapheaders
from adapters.soap.offline import OfflineTransport, load_client, mime_operations
from adapters.xml import UrlMap
from gateway.errors import AgencyError, AgencyRejected, ConfigError

log = structlog.get_logger("lienthong.outbound")

SECRET_QUERY = ("password", "secret", "token", "key", "sig")
OFFLOAD_BYTES = 256 * 1024  # answers larger than this are read in a worker thread


@dataclass(frozen=True, slots=True)
class SoapCall:
    operation: str
    params: Mapping[str, Any] = field(default_factory=dict)
    headers: SoapHeaders | None = None


@dataclass(frozen=True, slots=True)
class _Port:
    client: zeep.Client
    binding: SoapBinding
    options: dict[str, Any]
    address: str
    version: str
    service: str
    port: str
    rules: AnswerRules
    warnings: tuple[str, ...]  # zeep's, and why answers are not schema-checked if they are not


def _mask_url(url: str) -> str:
    u = URL(url)
    if u.password:
        u = u.with_password("***")
    if u.query:
        u = u.with_query({k: ("***" if any(s in k.lower() for s in SECRET_QUERY) else v) for k, v in u.query.items()})
    return str(u)


class SoapTransport(Transport[SoapCall, Any]):
    def __init__(
        self,
        session: aiohttp.ClientSession,
        wsdl_path: str | os.PathLike[str],
        *,
        agency: str,
        url_map: UrlMap | Mapping[str, str | os.PathLike[str]] | None = None,
        timeout: float = 10.0,
        max_answer_bytes: int = 4 * 1024 * 1024,
        service_name: str | None = None,
        port_name: str | None = None,
        address: str | None = None,
        wsse: Wsse | None = None,
        operations: Collection[str] | None = None,
        fault_codes: Mapping[str, FaultClass] | None = None,
        retry_invalid_answers: Collection[str] = (),
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """`operations`: the ones this transport will call (all by default); load refuses a WSDL that
        lacks one, or where one cannot be sent (SOAP with Attachments). `fault_codes`: the agency's own
        fault codes (or code prefixes) and whether they are "transient" or "permanent", over the
        built-in table. `retry_invalid_answers`: operations whose answers that break the WSDL's schema
        are retried (a MalformedAnswer); for the others such an answer is permanent."""
        self.session = session
        self.wsdl_path = Path(wsdl_path)
        self.agency = agency
        self.url_map = url_map if isinstance(url_map, UrlMap) else UrlMap(url_map)
        self.timeout = timeout
        self.max_answer_bytes = max_answer_bytes
        self.service_name = service_name
        self.port_name = port_name
        self.address = address
        self.wsse = wsse
        self.operations = None if operations is None else tuple(operations)
        self.faults = FaultTable(fault_codes)  # ValueError at once for a class that is neither
        self.retry_invalid_answers = frozenset(retry_invalid_answers)
        self.ssl: ssl.SSLContext | bool = ssl_context if ssl_context is not None else True  # see gateway.tls
        self._port: _Port | None = None
        self._lock = asyncio.Lock()

    # --- start-up ---------------------------------------------------------------

    async def load(self) -> None:
        """Load the WSDL and its imports offline, in a thread. Idempotent; ConfigError if unusable.
        Call it at start-up: a first call() would otherwise load lazily and raise ConfigError there."""
        async with self._lock:
            if self._port is None:
                self._port = await asyncio.to_thread(self._load_sync)

    def _load_sync(self) -> _Port:
        client = load_client(self.wsdl_path, self.url_map, wsse=self.wsse)
        offline = client.transport
        assert isinstance(offline, OfflineTransport)
        notes = list(offline.warnings)
        where = str(self.wsdl_path)
        zeep_said = f"; zeep warned: {'; '.join(notes)}" if notes else ""
        services = client.wsdl.services
        if not services:
            raise ConfigError([(where, "", f"the WSDL has no wsdl:service{zeep_said}")])
        name = self.service_name or next(iter(services))
        if name not in services:
            raise ConfigError([(where, "service_name", f"no service {name!r}; have {sorted(services)}")])
        ports = services[name].ports
        soap_ports = [p for p in ports if isinstance(ports[p].binding, SoapBinding)]
        port_name = self.port_name or next(iter(soap_ports), None)
        if port_name is None or port_name not in soap_ports:
            wanted = f"SOAP port {port_name!r}" if port_name else "SOAP 1.1/1.2 port"
            have = ", ".join(f"{p} ({type(ports[p].binding).__name__})" for p in ports)
            raise ConfigError([(where, "port_name", f"no {wanted} in service {name!r}; ports: {have}{zeep_said}")])
        port = ports[port_name]
        binding = port.binding
        usable = set(binding._operations)
        if not usable:
            raise ConfigError([(where, "port_name", f"port {port_name!r} has no operation zeep can use{zeep_said}")])
        wanted_ops = set(self.operations) if self.operations is not None else usable
        missing = sorted(wanted_ops - usable)
        if missing:
            raise ConfigError(
                [(where, "operations", f"port {port_name!r} has no operation {', '.join(missing)}{zeep_said}")]
            )
        mime = {op: dirs for op, dirs in mime_operations(offline, binding.name).items() if op in wanted_ops}
        if mime:
            said = "; ".join(f"{op} ({' and '.join(dirs)})" for op, dirs in sorted(mime.items()))
            raise ConfigError(
                [
                    (
                        where,
                        "operations",
                        f"SOAP with Attachments (mime:multipartRelated) is not supported: {said}; "
                        "leave these operations out (operations=...) to use the others",
                    )
                ]
            )
        address = self.address or port.binding_options.get("address")
        if not address:
            raise ConfigError([(where, "address", f"port {port_name!r} has no soap:address; set one")])
        version = "1.2" if isinstance(binding, Soap12Binding) else "1.1"
        schema = None
        try:
            schema = answer_schema.build(offline.documents.items(), offline.url_map)
        except (etree.LxmlError, ConfigError) as exc:  # zeep reads the WSDL, libxml2 does not: answers unchecked
            notes.append(f"answers are not checked against the schema, which libxml2 cannot compile: {exc}")
        for note in notes:
            log.warning("wsdl_warning", agency=self.agency, wsdl=where, warning=note)
        rules = AnswerRules(
            binding,
            version,
            self.agency,
            self.max_answer_bytes,
            wsse=self.wsse,
            faults=self.faults,
            schema=schema,
            retry_invalid=self.retry_invalid_answers,
        )
        options = dict(port.binding_options)
        return _Port(client, binding, options, address, version, name, port_name, rules, tuple(notes))

    async def _loaded(self) -> _Port:
        if self._port is None:
            await self.load()
        assert self._port is not None
        return self._port

    @property
    def binding(self) -> SoapBinding:
        """The zeep binding in use (after `load()`): for test stubs and introspection."""
        if self._port is None:
            raise RuntimeError("SoapTransport.load() has not run")
        return self._port.binding

    # --- calls ------------------------------------------------------------------

    async def call(self, operation: str, *, headers: SoapHeaders | None = None, **params: Any) -> Any:
        """Call one operation; returns zeep's result object (None for one-way operations)."""
        return await self.send(SoapCall(operation, params, headers))

    async def send(self, request: SoapCall) -> Any:
        return (await self.exchange(request)).value

    async def exchange(self, request: SoapCall) -> SoapAnswer:
        """Call one operation; the whole answer: zeep's value, the HTTP status and any attachments."""
        port = await self._loaded()
        started = time.perf_counter()
        status: int | None = None
        retry_after: float | None = None
        try:
            body, http_headers = self._envelope(port, request)
            with map_http_errors(self.agency):
                async with self.session.post(
                    port.address,
                    data=body,
                    headers=http_headers,
                    timeout=aiohttp.ClientTimeout(total=self.timeout),
                    ssl=self.ssl,
                ) as resp:
                    status = resp.status
                    retry_after = retry_after_of(resp.headers)
                    data = await read_limited(resp, self.max_answer_bytes, self.agency)
                    content_type = resp.headers.get("Content-Type", "")
            read = functools.partial(read_answer, port.rules, request.operation, status, content_type, data)
            # Parsing megabytes and walking them with zeep takes a while: keep that off the event loop.
            answer = await asyncio.to_thread(read) if len(data) > OFFLOAD_BYTES else read()
        except AgencyError as exc:
            if exc.retryable and exc.retry_after is None:
                exc.retry_after = retry_after  # the answer's Retry-After, whatever part of it failed
            log.warning(
                "outbound",
                agency=self.agency,
                operation=request.operation,
                status=status,
                ms=round((time.perf_counter() - started) * 1000, 1),
                error=type(exc).__name__,
                code=exc.code,
            )
            raise
        log.info(
            "outbound",
            agency=self.agency,
            operation=request.operation,
            status=status,
            ms=round((time.perf_counter() - started) * 1000, 1),
        )
        return answer

    def _envelope(self, port: _Port, request: SoapCall) -> tuple[bytes, dict[str, str]]:
        """The request's bytes and HTTP headers. Every failure here is our request's: AgencyRejected,
        before anything is sent (an unknown operation, a wrong parameter, a header value no XML or no
        security server takes)."""
        try:
            kwargs = dict(request.params)
            if request.headers is not None:
                kwargs["_soapheaders"] = soapheaders(request.headers)
            # _create applies the client's WS-Security and returns the HTTP headers zeep would send.
            envelope, http_headers = port.binding._create(  # type: ignore[no-untyped-call]
                request.operation, (), kwargs, client=port.client, options=port.options
            )
            body = etree.tostring(envelope, xml_declaration=True, encoding="utf-8")
            headers = {str(k): str(v) for k, v in http_headers.items()}
        except Exception as exc:  # the request, not the agency, is wrong: never retried
            raise AgencyRejected(
                f"{self.agency}: cannot build SOAP request {request.operation!r}: {type(exc).__name__}: {exc}",
                agency=self.agency,
                code="request-not-built",
            ) from exc
        # What read_answer reads: SOAP XML, or multipart/related around it (MTOM/XOP, attachments).
        if port.version == "1.2":
            headers.pop("SOAPAction", None)  # 1.2 carries the action in the Content-Type
            headers["Accept"] = "application/soap+xml, multipart/related"
        else:
            headers["Accept"] = "text/xml, multipart/related"
        return body, headers

    # --- health and description --------------------------------------------------

    async def check(self) -> CheckResult:
        """Loads the WSDL, then asks whether the endpoint answers HTTP at all (GET on the address)."""
        started = time.perf_counter()
        try:
            port = await self._loaded()
        except ConfigError as exc:
            return CheckResult(ok=False, detail=str(exc))
        try:
            with map_http_errors(self.agency):
                timeout = aiohttp.ClientTimeout(total=min(self.timeout, 3.0))
                async with self.session.get(port.address, timeout=timeout, ssl=self.ssl) as resp:
                    status = resp.status
        except AgencyError as exc:
            return CheckResult(ok=False, detail=str(exc), latency_ms=(time.perf_counter() - started) * 1000)
        # Many SOAP endpoints answer GET with 405 or 500; only gateway errors mean "down".
        return CheckResult(
            ok=status not in (502, 503, 504),
            detail=f"HTTP {status}",
            latency_ms=(time.perf_counter() - started) * 1000,
            extra={"soap_version": port.version},
        )

    def describe(self) -> dict[str, Any]:
        port = self._port
        address = port.address if port else self.address
        return mask_config(
            {
                "kind": "soap",
                "wsdl": str(self.wsdl_path),
                "address": _mask_url(address) if address else None,
                "service": port.service if port else self.service_name,
                "port": port.port if port else self.port_name,
                "soap_version": port.version if port else None,
                "timeout": self.timeout,
                "max_answer_bytes": self.max_answer_bytes,
                "url_map": self.url_map.as_dict(),
                "wsse": describe_wsse(self.wsse),
                "operations": list(self.operations) if self.operations is not None else None,
                "answers_schema_checked": (port.rules.schema is not None) if port else None,
                "load_warnings": list(port.warnings) if port else [],
            }
        )
