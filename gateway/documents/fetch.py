"""Fetching a document a centre named by URL, without letting a URL reach what it must not (SSRF).

Only hosts the operator listed (`[documents.fetch] allowed_hosts`) are fetched from. The host is resolved
once, every address it resolves to is checked (loopback, private, link-local, multicast and reserved
addresses are refused unless in `allowed_networks`), and the request is sent to that checked address,
with the host name in `Host` and in TLS (SNI and certificate): a second resolution that answers
differently (DNS rebinding) is never made. The address the connection actually reached is checked
again. No redirect is followed. The body is streamed into the document store, capped at the declared
size, and kept only if its sha256 is the declared one.
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_address

import aiohttp
import structlog
from yarl import URL

from gateway.config.model import FetchSettings
from gateway.documents.base import CHUNK, DigestMismatch, DocumentStore, DocumentTooLarge, StoredDocument
from gateway.documents.rules import NotOfType, sniffed

log = structlog.get_logger("lienthong.documents")
IpAddress = IPv4Address | IPv6Address


class FetchFailed(Exception):
    """A document could not be fetched. `permanent`: trying again will not help (the centre must act)."""

    def __init__(self, code: str, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.code, self.message, self.permanent = code, message, permanent


@dataclass(frozen=True, slots=True)
class Wanted:
    """The document a URL should give: what the centre declared, and the component's size limit."""

    url: str
    sha256: str
    size: int
    media_type: str
    max_bytes: int


def _plain(ip: IpAddress) -> IpAddress:
    if isinstance(ip, IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


class UrlFetcher:
    def __init__(self, session: aiohttp.ClientSession, settings: FetchSettings, store: DocumentStore) -> None:
        self.session = session
        self.settings = settings
        self.store = store
        self.hosts = frozenset(h.strip("[]") for h in settings.allowed_hosts)

    def host_allowed(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        return host in self.hosts or any(h.startswith("*.") and host.endswith(h[1:]) for h in self.hosts)

    def address_allowed(self, ip: IpAddress) -> bool:
        ip = _plain(ip)
        if any(ip in net for net in self.settings.allowed_networks):
            return True
        return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_unspecified)

    async def fetch(self, wanted: Wanted) -> StoredDocument:
        """Fetch into the document store; FetchFailed, with nothing stored, when it cannot be had as declared."""
        url = URL(wanted.url)
        host = url.host
        if url.scheme not in ("http", "https") or not host:
            raise FetchFailed("invalid_url", f"{wanted.url} is not an http(s) URL", permanent=True)
        if not self.host_allowed(host):
            raise FetchFailed(
                "host_not_allowed",
                f"documents are not fetched from {host}: ask the operator to allow it, or upload the document",
                permanent=True,
            )
        ip = await self._resolve(host, url.port or (443 if url.scheme == "https" else 80))
        if wanted.size > wanted.max_bytes:
            raise FetchFailed("too_large", f"{wanted.size} bytes is more than {wanted.max_bytes}", permanent=True)
        try:
            async with self.session.get(
                url.with_host(str(ip)),
                headers={"Host": host if url.is_default_port() else f"{url.raw_host}:{url.port}"},
                server_hostname=host if url.scheme == "https" else None,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=self.settings.timeout, sock_connect=self.settings.connect_timeout),
            ) as resp:
                self._check_peer(resp, ip)
                if resp.status != 200:
                    transient = resp.status >= 500 or resp.status in (408, 429)
                    raise FetchFailed(
                        "http_status", f"{host} answered HTTP {resp.status} for {url.path}", permanent=not transient
                    )
                if resp.content_length is not None and resp.content_length != wanted.size:
                    raise FetchFailed(
                        "size_mismatch",
                        f"{host} sends {resp.content_length} bytes; the attachment declares {wanted.size}",
                        permanent=True,
                    )
                stored = await self.store.put(
                    sniffed(resp.content.iter_chunked(CHUNK), wanted.media_type),
                    max_bytes=wanted.size,
                    expected={"sha256": wanted.sha256},
                )
        except DocumentTooLarge:
            raise FetchFailed(
                "size_mismatch", f"{host} sends more than the {wanted.size} bytes declared", permanent=True
            ) from None
        except DigestMismatch as exc:
            raise FetchFailed(
                "digest_mismatch",
                f"the document at {wanted.url} has sha256 {exc.actual}, not {exc.expected}",
                permanent=True,
            ) from None
        except NotOfType as exc:
            raise FetchFailed("not_of_type", f"the document at {wanted.url}: {exc}", permanent=True) from None
        except TimeoutError:
            raise FetchFailed("unreachable", f"{host} did not send the document in time", permanent=False) from None
        except aiohttp.ClientError as exc:
            raise FetchFailed("unreachable", f"cannot fetch from {host}: {exc}", permanent=False) from None
        if stored.size != wanted.size:  # shorter than declared, yet the declared sha256: a wrong size
            await self.store.discard(stored)
            raise FetchFailed(
                "size_mismatch",
                f"{host} sent {stored.size} bytes; the attachment declares {wanted.size}",
                permanent=True,
            )
        log.info("document_fetched", host=host, size=stored.size, sha256=stored.sha256)
        return stored

    async def _resolve(self, host: str, port: int) -> IpAddress:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
            )
        except OSError as exc:
            raise FetchFailed("unreachable", f"{host} does not resolve: {exc}", permanent=False) from None
        addresses = [ip_address(info[4][0]) for info in infos]
        refused = [a for a in addresses if not self.address_allowed(a)]
        if refused or not addresses:
            # One refused address refuses the host: an answer mixing public and internal addresses is how a
            # rebinding attack starts.
            raise FetchFailed(
                "address_not_allowed",
                f"{host} resolves to {', '.join(map(str, refused))}, an address documents are not fetched from",
                permanent=True,
            )
        return addresses[0]

    def _check_peer(self, resp: aiohttp.ClientResponse, ip: IpAddress) -> None:
        transport = resp.connection.transport if resp.connection is not None else None
        peer = transport.get_extra_info("peername") if transport is not None else None
        if peer is None:
            return  # the body came whole with the head and the connection is already back in the pool
        reached = ip_address(peer[0])
        if _plain(reached) != _plain(ip) or not self.address_allowed(reached):
            raise FetchFailed(
                "address_not_allowed", f"the connection reached {reached}, not the checked {ip}", permanent=True
            )
