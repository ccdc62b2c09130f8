"""Who a request is: API keys with expiry, client certificates by fingerprint or subject, and both together;
credentials that would name two clients are refused by the configuration."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from gateway.auth import Authenticator, Credentials, hash_key
from gateway.config import load_config
from gateway.config.model import ApiKeyConf, CertificateConf, ClientConf
from gateway.errors import ConfigError, Unauthenticated
from gateway.plugin_manager import Registry
from gateway.tls import PeerCertificate, normalise_fingerprint
from tests.gateway.conftest import CONF

NOW = datetime(2026, 6, 1, tzinfo=UTC)
SUBJECT = "CN=mot-cua-hoan-kiem,O=UBND Ha Noi,C=VN"


def peer(fp: str = "ab" * 32, subject: str = SUBJECT) -> PeerCertificate:
    return PeerCertificate(fp, x509.Name.from_rfc4514_string(subject))


def client(**kw: object) -> ClientConf:
    base: dict[str, object] = {"name": "x", "kind": "portal", "scopes": ["read"]}
    return ClientConf.model_validate(base | kw)


def test_keys_work_until_they_expire_each_on_its_own() -> None:
    conf = client(
        api_keys=[
            ApiKeyConf(sha256=hash_key("old"), expires=NOW),
            ApiKeyConf(sha256=hash_key("new"), expires=NOW + timedelta(days=90)),
        ]
    )
    auth = Authenticator({"portal": conf})
    before = NOW - timedelta(seconds=1)
    assert auth.authenticate(Credentials(api_key="old", at=before)).client_id == "portal"
    assert auth.authenticate(Credentials(api_key="new", at=before)).client_id == "portal"
    with pytest.raises(Unauthenticated, match="expired at 2026-06-01T00:00:00"):
        auth.authenticate(Credentials(api_key="old", at=NOW))
    assert auth.authenticate(Credentials(api_key="new", at=NOW)).via == "api-key"


def test_a_certificate_names_its_client_by_fingerprint_or_subject() -> None:
    auth = Authenticator(
        {
            "by-fp": client(certificate=CertificateConf(sha256=("AB:" * 31 + "AB",))),
            "by-subject": client(certificate=CertificateConf(subject="CN=hai-chau,O=UBND Da Nang,C=VN")),
            "keyed": client(api_key_sha256=hash_key("k")),
        }
    )
    assert auth.authenticate(Credentials(peer=peer())).client_id == "by-fp"
    named = auth.authenticate(Credentials(peer=peer("cd" * 32, "CN=hai-chau,O=UBND Da Nang,C=VN")))
    assert (named.client_id, named.via) == ("by-subject", "certificate")
    # A certificate the CA issued but that names no client adds nothing: the key decides.
    assert auth.authenticate(Credentials(api_key="k", peer=peer("ef" * 32, "CN=other"))).client_id == "keyed"
    with pytest.raises(Unauthenticated, match="the credential names client 'keyed' but the certificate client 'by-fp'"):
        auth.authenticate(Credentials(api_key="k", peer=peer()))
    with pytest.raises(Unauthenticated, match=r"or a client certificate$"):
        auth.authenticate(Credentials(peer=peer("ef" * 32, "CN=other")))


def test_fingerprints_and_subjects_are_checked_when_configured() -> None:
    assert normalise_fingerprint("sha256:" + "AB:" * 31 + "AB") == "ab" * 32
    with pytest.raises(ValueError, match="not a SHA-256 fingerprint"):
        CertificateConf(sha256=("abc",))
    with pytest.raises(ValueError, match="not an RFC 4514"):
        CertificateConf(subject="not a = name = at all,,")
    with pytest.raises(ValueError, match="needs a credential"):
        client()
    with pytest.raises(ValueError, match="time zone"):
        ApiKeyConf(sha256="0" * 64, expires=datetime(2026, 1, 1))


def test_a_credential_naming_two_clients_is_a_configuration_error(tmp_path: Path, registry: Registry) -> None:
    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf)
    text = (conf / "clients.toml").read_text(encoding="utf-8")
    hanoi = text.split("[client.centre-hanoi]")[1].split("api_key_sha256 = ")[1].split("\n")[0]
    text = text.replace(
        "[client.portal]\n",
        f'[client.portal]\napi_keys = [{{ sha256 = {hanoi} }}]\ncertificate = {{ subject = "{SUBJECT}" }}\n',
        1,
    )
    text = text.replace("[client.operator]\n", f'[client.operator]\ncertificate = {{ subject = "{SUBJECT}" }}\n', 1)
    text = text.replace("[client.centre-hcm]\n", '[client.centre-hcm]\ntoken_issuers = ["nobody"]\n', 1)
    (conf / "clients.toml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(conf, registry)
    assert sorted(caught.value.problems) == [
        ("clients.toml", "client.centre-hcm.token_issuers[0]", "no issuer named 'nobody'"),
        ("clients.toml", "client.operator.certificate.subject", "the same certificate subject as client 'portal'"),
        ("clients.toml", "client.portal.api_keys", "the same API key as client 'centre-hanoi'"),
    ]


def test_subject_names_compare_as_names_not_strings() -> None:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "UBND Ha Noi"),
            x509.NameAttribute(NameOID.COMMON_NAME, "mot-cua-hoan-kiem"),
        ]
    )
    auth = Authenticator({"hanoi": client(certificate=CertificateConf(subject=SUBJECT))})
    assert auth.by_certificate(PeerCertificate("00" * 32, name)) == "hanoi"
