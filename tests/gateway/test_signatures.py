"""Detached signatures: what verifies, what does not, keys from the configuration, and `lienthong signing
keygen` / `lienthong verify` at their edges."""

from __future__ import annotations

import base64
import json
import shutil
import stat
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from gateway.cli import main
from gateway.config import load_config
from gateway.config.model import SigningSettings
from gateway.errors import ConfigError
from gateway.plugin_manager import Registry
from gateway.signatures import Signer, Verifier, load_signer, load_verifier, thumbprint
from tests.gateway.conftest import CONF

DOC = b'{"dossier_code": "000.00.01.H26-261205-0001"}\n'
META = {"typ": "receipt", "dossier": "000.00.01.H26-261205-0001", "iss": "https://mot-cua.example.gov.vn"}


def signer(key: Ed25519PrivateKey | None = None) -> Signer:
    key = key or Ed25519PrivateKey.generate()
    return Signer(key, Verifier.of(key.public_key()))


def test_thumbprint_is_rfc_8037s() -> None:
    # RFC 8037, appendix A.3: the thumbprint of the example Ed25519 key.
    x = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
    key = Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(x + "="))
    assert thumbprint(key) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


def test_a_signature_is_a_deterministic_jws_over_hash_and_metadata() -> None:
    s = signer()
    jws = s.sign(DOC, META)
    assert jws == s.sign(DOC, META)
    header = jwt.get_unverified_header(jws)
    assert header == {"alg": "EdDSA", "kid": s.kid, "typ": "lienthong-signature+jwt"}
    verdict = s.verifier.check(jws, document=DOC)
    assert verdict.valid and verdict.kid == s.kid
    assert verdict.claims["size"] == len(DOC) and verdict.claims["dossier"] == META["dossier"]
    assert s.verifier.check(jws, sha256=verdict.claims["sha256"].upper()).valid
    assert s.verifier.check(jws).valid  # the signature alone: the reader compares the hash


@pytest.mark.parametrize("at", [0, 10, len(DOC) - 1])
def test_one_changed_byte_of_the_document_is_refused(at: int) -> None:
    s = signer()
    jws = s.sign(DOC, META)
    changed = DOC[:at] + bytes([DOC[at] ^ 0x20]) + DOC[at + 1 :]
    verdict = s.verifier.check(jws, document=changed)
    assert not verdict.valid and "SHA-256 differs" in verdict.reason


def test_altered_or_foreign_signatures_are_refused() -> None:
    s = signer()
    jws = s.sign(DOC, META)
    head, payload, sig = jws.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    forged_payload = base64.urlsafe_b64encode(json.dumps({**claims, "dossier": "other"}).encode()).rstrip(b"=")
    none_header = base64.urlsafe_b64encode(json.dumps({"alg": "none", "kid": s.kid}).encode()).rstrip(b"=").decode()
    cases = {
        "metadata": f"{head}.{forged_payload.decode()}.{sig}",
        "signature": f"{head}.{payload}.{sig[:-2]}{'AA' if not sig.endswith('AA') else 'BB'}",
        "other key": signer().sign(DOC, META),
        "garbage": "not a signature",
        "too long": "a." * 5000,
        # An HMAC JWS naming the right key (algorithm confusion), and an unsigned one.
        "hs256": jwt.api_jws.encode(b"{}", "s" * 32, algorithm="HS256", headers={"kid": s.kid}),
        "unsigned": f"{none_header}.{payload}.",
    }
    for name, bad in cases.items():
        assert not s.verifier.check(bad, document=DOC).valid, name


def test_status_tokens_are_per_code_and_per_key() -> None:
    key = Ed25519PrivateKey.generate()
    a, b = signer(key), signer(key)
    assert a.status_token("X-1") == b.status_token("X-1") and len(a.status_token("X-1")) == 22
    assert a.status_token("X-1") != a.status_token("X-2")
    assert signer().status_token("X-1") != a.status_token("X-1")


def _pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _b64_public(key: Ed25519PrivateKey) -> str:
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def test_keys_from_the_configuration_and_rotation(tmp_path: Path) -> None:
    old, new = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    (tmp_path / "signing.pem").write_bytes(_pem(new))
    (tmp_path / "old.pub").write_text(_b64_public(old))
    settings = SigningSettings(key_file="signing.pem", earlier_public_keys=("old.pub",))
    loaded = load_signer(settings, tmp_path)
    assert loaded is not None and loaded.kid == thumbprint(new.public_key())
    assert loaded.verifier.check(signer(old).sign(DOC, META), document=DOC).valid  # signed before the rotation
    inline = load_signer(SigningSettings(key=base64.b64encode(bytes(32)).decode()), tmp_path)
    assert inline is not None
    assert load_signer(SigningSettings(), tmp_path) is None
    # Without the private key: its public key file, or a JWKS such as GET /v1/verify/keys serves.
    (tmp_path / "new.pub").write_text(_b64_public(new))
    public_only = load_verifier(SigningSettings(public_key_file="new.pub"), tmp_path)
    assert public_only is not None and public_only.check(loaded.sign(DOC, META), document=DOC).valid
    (tmp_path / "keys.json").write_text(json.dumps(loaded.verifier.jwks()))
    from_jwks = load_verifier(SigningSettings(), tmp_path, [str(tmp_path / "keys.json")])
    assert from_jwks is not None and set(from_jwks.keys) == set(loaded.verifier.keys)


def test_an_unreadable_signing_key_is_a_configuration_error(registry: Registry, tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf)
    for value, message in (("missing.pem", "cannot read the signing key"), ("bad.pem", "not an Ed25519 private key")):
        (conf / "bad.pem").write_text("not a key")
        text = (
            (conf / "gateway.toml").read_text().replace('key = "${LIENTHONG_SIGNING_KEY:-}"', f'key_file = "{value}"')
        )
        (conf / "gateway.toml").write_text(text)
        with pytest.raises(ConfigError) as err:
            load_config(conf, registry)
        assert [(f, k) for f, k, _ in err.value.problems] == [("gateway.toml", "signing")]
        assert message in err.value.problems[0][2]
        shutil.copy(CONF / "gateway.toml", conf / "gateway.toml")


def test_keygen_then_verify_from_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "keys" / "signing.pem"
    assert main(["signing", "keygen", "--out", str(out)]) == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert main(["signing", "keygen", "--out", str(out)]) == 2  # never overwritten
    settings = SigningSettings(key_file=str(out))
    s = load_signer(settings, tmp_path)
    assert s is not None and s.kid in capsys.readouterr().out
    (tmp_path / "doc.json").write_bytes(DOC)
    (tmp_path / "doc.jws").write_text(s.sign(DOC, META))
    pub = str(out) + ".pub"
    assert main(["verify", str(tmp_path / "doc.json"), str(tmp_path / "doc.jws"), "--public-key", pub]) == 0
    assert "valid:" in capsys.readouterr().out
    assert main(["verify", str(tmp_path / "nothing.json"), str(tmp_path / "doc.jws"), "--public-key", pub]) == 2
    # No key anywhere: the demo configuration without LIENTHONG_SIGNING_KEY_FILE set.
    assert main(["verify", str(tmp_path / "doc.json"), str(tmp_path / "doc.jws")]) == 2
    assert "no key to verify with" in capsys.readouterr().err
