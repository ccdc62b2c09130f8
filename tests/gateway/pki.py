"""Certificates the tests make for themselves (trustme), and configuration folders edited for a test."""

from __future__ import annotations

import shutil
import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from gateway.tls import fingerprint
from tests.gateway.conftest import CONF


@dataclass
class Issued:
    """One certificate and its key in a PEM file (leaf first), with what clients.toml names it by."""

    path: Path
    cert: trustme.LeafCert

    @property
    def sha256(self) -> str:
        der = x509.load_pem_x509_certificate(self.cert.cert_chain_pems[0].bytes()).public_bytes(Encoding.DER)
        return fingerprint(der)

    @property
    def subject(self) -> str:
        return x509.load_pem_x509_certificate(self.cert.cert_chain_pems[0].bytes()).subject.rfc4514_string()


class Pki:
    """A CA in a folder: its certificate as ca.pem, and what it issues as <name>.pem."""

    def __init__(self, folder: Path, name: str = "ca") -> None:
        self.folder = folder
        self.ca = trustme.CA(organization_name=f"Lienthong test {name}")
        self.ca_path = folder / f"{name}.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_path))
        self.certs: dict[str, Issued] = {}

    def issue(self, name: str, *identities: str, common_name: str | None = None, org: str | None = None) -> Issued:
        cert = self.ca.issue_cert(*(identities or (name,)), common_name=common_name, organization_name=org)
        path = self.folder / f"{name}.pem"
        cert.private_key_and_cert_chain_pem.write_to_path(str(path))
        self.certs[name] = Issued(path, cert)
        return self.certs[name]

    def client_context(self, client: Issued | None = None, *, tls12: bool = False) -> ssl.SSLContext:
        """What a client of the gateway uses: this CA trusted, and its certificate if it has one."""
        ctx = ssl.create_default_context(cafile=str(self.ca_path))
        if client is not None:
            ctx.load_cert_chain(str(client.path))
        if tls12:
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        return ctx

    def server_context(self, server: Issued, *, client_ca: Path | None = None) -> ssl.SSLContext:
        """What an agency's (or the portal's) server uses; with `client_ca`, client certificates required."""
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(str(server.path))
        if client_ca is not None:
            ctx.load_verify_locations(cafile=str(client_ca))
            ctx.verify_mode = ssl.CERT_REQUIRED
        return ctx


def conf_copy(target: Path, *, gateway: str = "", clients: str = "", add: dict[str, str] | None = None) -> Path:
    """The core tests' configuration folder copied to `target`, with TOML appended to gateway.toml and
    clients.toml, and lines added to existing client tables (`add`: client id -> lines)."""
    shutil.copytree(CONF, target)
    if gateway:
        with (target / "gateway.toml").open("a", encoding="utf-8") as fh:
            fh.write("\n" + gateway + "\n")
    text = (target / "clients.toml").read_text(encoding="utf-8")
    for client, lines in (add or {}).items():
        header = f"[client.{client}]\n"
        assert header in text, client
        text = text.replace(header, header + lines.strip() + "\n", 1)
    (target / "clients.toml").write_text(text + "\n" + clients + "\n", encoding="utf-8")
    return target
