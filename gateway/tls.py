"""TLS in and out: settings, SSL contexts, certificate pinning, and who the peer's certificate names.

Inbound, the gateway listens with a certificate and key (reloaded on SIGHUP: an `ssl.SSLContext` loads
the new chain and every new connection gets it) and may ask clients for a certificate from configured
CAs; a client certificate then identifies a client (`gateway.auth`). Outbound, each agency endpoint and
the portal push may trust their own CAs, present a client certificate and pin the peer's certificate.

File paths are relative to the configuration folder. Building a context reads files: call these
functions off the event loop (`asyncio.to_thread`).
"""

from __future__ import annotations

import hashlib
import re
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

from cryptography import x509
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_HEX = re.compile(r"^[0-9a-f]{64}$")
TLSVersion = Literal["TLSv1.2", "TLSv1.3"]
_VERSIONS = {"TLSv1.2": ssl.TLSVersion.TLSv1_2, "TLSv1.3": ssl.TLSVersion.TLSv1_3}


def fingerprint(der: bytes) -> str:
    """SHA-256 of a certificate's DER bytes, lower-case hex without colons (as pins are kept)."""
    return hashlib.sha256(der).hexdigest()


def normalise_fingerprint(value: str) -> str:
    """Accept "AB:CD:...", "ab cd ...", "sha256:abcd..." and plain hex; return plain lower-case hex."""
    text = value.strip().lower().removeprefix("sha256:").replace(":", "").replace(" ", "")
    if not _HEX.match(text):
        raise ValueError(f"{value!r} is not a SHA-256 fingerprint (64 hex digits, colons allowed)")
    return text


class _Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class OutboundTLS(_Settings):
    """How the gateway speaks TLS to one peer (an agency endpoint, the portal): `[...tls]` tables."""

    ca_file: str | None = Field(None, description="PEM bundle of the CAs trusted for this peer; default: the system's")
    cert_file: str | None = Field(None, description="the gateway's client certificate chain (PEM) for mutual TLS")
    key_file: str | None = Field(None, description="its private key (PEM); default: in cert_file")
    key_password: str | None = Field(None, description="the key's passphrase (use ${ENV})")
    pin_sha256: tuple[str, ...] = Field(
        (), description="SHA-256 fingerprints of the peer's certificate; when set, any other is refused"
    )
    check_hostname: bool = Field(True, description="the certificate must name the host of the URL")
    min_version: TLSVersion = "TLSv1.2"

    @field_validator("pin_sha256")
    @classmethod
    def _pins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(normalise_fingerprint(v) for v in value)

    @model_validator(mode="after")
    def _key_needs_cert(self) -> OutboundTLS:
        if (self.key_file or self.key_password) and not self.cert_file:
            raise ValueError("key_file and key_password need cert_file")
        return self


ClientCertificates = Literal["none", "optional", "required"]


class ServerTLS(_Settings):
    """`[server.tls]` in gateway.toml: the listener speaks TLS."""

    cert_file: str = Field(description="the gateway's certificate chain (PEM), leaf first; reloaded on SIGHUP")
    key_file: str | None = Field(None, description="its private key (PEM); default: in cert_file")
    key_password: str | None = None
    client_ca_file: str | None = Field(None, description="PEM bundle of the CAs whose client certificates count")
    client_certificates: ClientCertificates = Field(
        "none",
        description="none: not asked; optional: asked, checked when sent; required: a connection without one "
        "from client_ca_file is refused at the handshake",
    )
    min_version: TLSVersion = "TLSv1.2"
    handshake_timeout: float = Field(10.0, gt=0, le=300, description="seconds a TLS handshake may take")

    @model_validator(mode="after")
    def _ca_for_clients(self) -> ServerTLS:
        if self.client_certificates != "none" and not self.client_ca_file:
            raise ValueError(f"client_certificates = {self.client_certificates!r} needs client_ca_file")
        return self


def _path(base: Path, name: str) -> str:
    p = Path(name)
    return str(p if p.is_absolute() else base / p)


# -- outbound -----------------------------------------------------------------------------------------


class _PinnedObject(ssl.SSLObject):
    """Checks the peer's certificate against the pins as the handshake completes, before a byte of the
    request is sent. aiohttp's `Fingerprint` cannot do this here: it replaces the SSL context, so it can
    neither present a client certificate nor verify the chain as well."""

    pins: ClassVar[frozenset[str]] = frozenset()

    def do_handshake(self) -> None:
        super().do_handshake()
        der = self.getpeercert(binary_form=True)
        got = fingerprint(der) if der else "none"
        if got not in self.pins:
            # A CertificateError: asyncio and aiohttp report it as a certificate failure of the connection.
            raise ssl.SSLCertVerificationError(f"the peer's certificate (sha256 {got}) is not one of the pinned ones")


def client_context(tls: OutboundTLS, base: Path) -> ssl.SSLContext:
    """The context for calls to one peer: its CAs, our client certificate, its pins. Reads files."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=_path(base, tls.ca_file) if tls.ca_file else None)
    ctx.minimum_version = _VERSIONS[tls.min_version]
    ctx.check_hostname = tls.check_hostname
    if tls.cert_file:
        ctx.load_cert_chain(
            _path(base, tls.cert_file),
            _path(base, tls.key_file) if tls.key_file else None,
            password=tls.key_password,
        )
    if tls.pin_sha256:
        ctx.sslobject_class = type("PinnedObject", (_PinnedObject,), {"pins": frozenset(tls.pin_sha256)})
    return ctx


# -- inbound ------------------------------------------------------------------------------------------


def server_context(tls: ServerTLS, base: Path) -> ssl.SSLContext:
    """The listener's context. Reads files."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = _VERSIONS[tls.min_version]
    load_server_chain(ctx, tls, base)
    if tls.client_ca_file:
        ctx.load_verify_locations(cafile=_path(base, tls.client_ca_file))
    ctx.verify_mode = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}[
        tls.client_certificates
    ]
    return ctx


def load_server_chain(ctx: ssl.SSLContext, tls: ServerTLS, base: Path) -> None:
    """Load the certificate and key into a context. On a live context (SIGHUP) connections made after it
    get the new pair and open ones keep theirs; see `reload_server_chain`."""
    ctx.load_cert_chain(
        _path(base, tls.cert_file), _path(base, tls.key_file) if tls.key_file else None, password=tls.key_password
    )


def reload_server_chain(ctx: ssl.SSLContext, tls: ServerTLS, base: Path) -> x509.Certificate:
    """Load a renewed certificate and key into the live context; returns the new certificate.

    The pair is tried on a scratch context first: OpenSSL replaces the certificate before it checks the
    key, so a key that does not match would leave the live context with no usable key at all.
    """
    load_server_chain(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER), tls, base)
    load_server_chain(ctx, tls, base)
    return x509.load_pem_x509_certificate(Path(_path(base, tls.cert_file)).read_bytes())


def check_files(tls: ServerTLS | OutboundTLS, base: Path) -> str | None:
    """Build the context once to find unreadable files, wrong passphrases and mismatched keys; the error
    as a sentence, or None. For `conf check` and start-up."""
    try:
        if isinstance(tls, ServerTLS):
            server_context(tls, base)
        else:
            client_context(tls, base)
    except (OSError, ssl.SSLError, ValueError) as exc:
        return f"cannot load the TLS files: {exc}"
    return None


# -- the peer of an inbound connection ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PeerCertificate:
    """A client certificate the handshake verified against the configured CAs."""

    sha256: str
    subject: x509.Name

    @property
    def subject_text(self) -> str:
        return self.subject.rfc4514_string()


def peer_certificate(transport: Any) -> PeerCertificate | None:
    """The verified client certificate of a connection (None: plain HTTP, or no certificate sent)."""
    if transport is None:
        return None
    obj = transport.get_extra_info("ssl_object")
    if obj is None:
        return None
    der = obj.getpeercert(binary_form=True)
    if not der:
        return None
    cert = x509.load_der_x509_certificate(der)
    return PeerCertificate(fingerprint(der), cert.subject)


def parse_subject(text: str) -> x509.Name:
    """An RFC 4514 distinguished name ("CN=...,O=...,C=VN"), as clients.toml names a certificate's subject."""
    try:
        return x509.Name.from_rfc4514_string(text)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not an RFC 4514 distinguished name: {exc}") from None
