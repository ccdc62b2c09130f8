"""Signed client tokens (EdDSA, ES256, RS256) from configured issuers, and API keys rotated with overlap:
a real gateway, keys and tokens made here, JWKS from a file and from a URL the gateway fetches."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from gateway.api.keys import TOKEN_KEYS
from gateway.app import create_app
from gateway.auth import hash_key
from gateway.config import load_config
from gateway.plugin_manager import Registry
from gateway.sandbox.demo import DEMO_KEYS
from tests.gateway.conftest import CONF, GatewayHarness
from tests.gateway.test_api_errors import assert_problem

ISSUER = "https://sso.dichvucong.gov.vn"
AUDIENCE = "lienthong"
ALGORITHMS = {"EdDSA": ed25519.Ed25519PrivateKey.generate, "ES256": lambda: ec.generate_private_key(ec.SECP256R1())}
ALGORITHMS["RS256"] = lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
KEYS = {alg: make() for alg, make in ALGORITHMS.items()}
OLD_KEY = "lt_hanoi-old-key-for-the-rotation-test-0001"
NEW_KEY = "lt_hanoi-new-key-for-the-rotation-test-0002"


def jwk(alg: str, key: Any, kid: str) -> dict[str, Any]:
    data: dict[str, Any] = jwt.get_algorithm_by_name(alg).to_jwk(key.public_key(), as_dict=True)
    return {**data, "kid": kid, "alg": alg, "use": "sig"}


def token(alg: str = "EdDSA", *, kid: str | None = None, key: Any = None, **claims: Any) -> str:
    now = int(time.time())
    body = {"iss": ISSUER, "aud": AUDIENCE, "sub": "centre-hanoi", "iat": now, "exp": now + 300, "scope": "read submit"}
    body.update(claims)
    body = {k: v for k, v in body.items() if v is not None}
    return jwt.encode(body, key or KEYS[alg], algorithm=alg, headers={"kid": kid or alg.lower()})


def bearer(t: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {t}"}


@pytest.fixture
def gateway_conf(tmp_path: Path) -> Path:
    """The core configuration with a token issuer (JWKS file), and centre-hanoi's keys rotated."""
    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf)
    (conf / "idp-jwks.json").write_bytes(orjson.dumps({"keys": [jwk(a, k, a.lower()) for a, k in KEYS.items()]}))
    expires = (datetime.now(UTC) + timedelta(seconds=3)).isoformat()
    text = (conf / "clients.toml").read_text(encoding="utf-8")
    text = text.replace(
        "[client.centre-hanoi]\n",
        f'''[client.centre-hanoi]
token_issuers = ["sso"]
api_keys = [
    {{ sha256 = "{hash_key(OLD_KEY)}", expires = {expires}, label = "2025 key" }},
    {{ sha256 = "{hash_key(NEW_KEY)}", label = "2026 key" }},
]
''',
        1,
    )
    text += f'''
[issuer.sso]
issuer = "{ISSUER}"
audience = "{AUDIENCE}"
jwks_file = "idp-jwks.json"
leeway = 5
'''
    (conf / "clients.toml").write_text(text, encoding="utf-8")
    return conf


async def status(h: GatewayHarness, headers: dict[str, str]) -> int:
    return (await h.client.get("/v1/dossiers", headers=headers)).status


@pytest.mark.parametrize("alg", ["EdDSA", "ES256", "RS256"])
async def test_a_token_of_the_issuer_is_accepted(harness: GatewayHarness, alg: str) -> None:
    resp = await harness.client.get("/v1/dossiers", headers=bearer(token(alg)))
    assert resp.status == 200, await resp.text()


@pytest.mark.parametrize(
    ("make", "detail"),
    [
        (lambda: token(exp=int(time.time()) - 60), "the token has expired"),
        (lambda: token(nbf=int(time.time()) + 120), "the token is not valid yet (nbf)"),
        (
            lambda: token(aud="another-gateway"),
            "the token is not meant for this gateway (aud must be one of lienthong)",
        ),
        (
            lambda: token(key=ed25519.Ed25519PrivateKey.generate()),
            "the token's signature does not verify with issuer 'sso''s key",
        ),
        (lambda: token(iss="https://evil.example"), "the token's issuer 'https://evil.example' is not trusted here"),
        (lambda: token(kid="retired"), "issuer 'sso' has no key 'retired'"),
        (lambda: token(sub="centre-hcm"), "no client accepts tokens of issuer 'sso' for sub 'centre-hcm'"),
        (lambda: token(exp=None), "the token has no 'exp' claim"),
        (
            lambda: token(exp=int(time.time()) + 10 * 86400),
            "the token lives 864000 s; issuer 'sso' tokens may live 86400 s",
        ),
        (lambda: "not.a.token", None),
    ],
    ids=[
        "expired",
        "not-yet-valid",
        "wrong-audience",
        "wrong-key",
        "unknown-issuer",
        "unknown-kid",
        "unmapped",
        "no-exp",
        "too-long",
        "garbage",
    ],
)
async def test_a_bad_token_is_refused_with_a_problem(
    harness: GatewayHarness, make: Callable[[], str], detail: str | None
) -> None:
    resp = await harness.client.get("/v1/dossiers", headers=bearer(make()))
    problem = await assert_problem(resp, 401, "unauthenticated")
    if detail is not None:
        assert problem["detail"] == detail
    assert resp.headers["WWW-Authenticate"].startswith('Bearer realm="lienthong", error="invalid_token"')


async def test_hmac_and_none_tokens_are_refused_whatever_the_header_says(harness: GatewayHarness) -> None:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "centre-hanoi", "exp": now + 60}
    for forged in (
        jwt.encode(claims, "a-secret-anyone-could-have-guessed-0001", algorithm="HS256"),
        jwt.encode(claims, None, algorithm="none"),
    ):
        problem = await assert_problem(
            await harness.client.get("/v1/dossiers", headers=bearer(forged)), 401, "unauthenticated"
        )
        assert "is not accepted for issuer 'sso'" in problem["detail"]


async def test_a_token_grants_no_more_than_its_scopes(harness: GatewayHarness, submission: Any) -> None:
    read_only = bearer(token(scope="read"))
    assert await status(harness, read_only) == 200
    resp = await harness.client.post("/v1/dossiers", json=submission(0), headers=read_only)
    problem = await assert_problem(resp, 403, "forbidden")
    assert problem["detail"] == "client 'centre-hanoi': this token does not grant the 'submit' scope"
    # Nor more than the client's own: admin is not centre-hanoi's to have.
    admin = bearer(token(scope="read admin"))
    await assert_problem(await harness.client.get("/v1/admin/deliveries", headers=admin), 403, "forbidden")
    resp = await harness.client.post("/v1/dossiers", json=submission(0), headers=bearer(token()))
    assert resp.status == 202


async def test_two_api_keys_of_one_client_both_work_until_one_expires(harness: GatewayHarness) -> None:
    assert await status(harness, {"X-Api-Key": OLD_KEY}) == 200
    assert await status(harness, {"X-Api-Key": NEW_KEY}) == 200
    assert await status(harness, {"X-Api-Key": DEMO_KEYS["centre-hanoi"]}) == 200  # api_key_sha256 too
    deadline = asyncio.get_running_loop().time() + 10
    while await status(harness, {"X-Api-Key": OLD_KEY}) == 200:
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.2)
    problem = await assert_problem(
        await harness.client.get("/v1/dossiers", headers={"X-Api-Key": OLD_KEY}), 401, "unauthenticated"
    )
    assert problem["detail"].startswith("this API key of client 'centre-hanoi' expired at ")
    assert await status(harness, {"X-Api-Key": NEW_KEY}) == 200


async def test_a_key_and_a_token_together_are_refused(harness: GatewayHarness) -> None:
    headers = {"X-Api-Key": NEW_KEY, **bearer(token())}
    problem = await assert_problem(await harness.client.get("/v1/dossiers", headers=headers), 401, "unauthenticated")
    assert problem["detail"] == "send either the X-Api-Key header or a bearer token, not both"


# -- keys fetched from a URL --------------------------------------------------------------------------


@pytest.fixture
async def jwks_server() -> AsyncIterator[tuple[TestServer, dict[str, Any]]]:
    """The issuer's JWKS endpoint; the test changes `published` to rotate keys."""
    published: dict[str, Any] = {"keys": [jwk("ES256", KEYS["ES256"], "es256")], "fetched": 0}

    async def keys(request: web.Request) -> web.Response:
        published["fetched"] += 1
        return web.json_response({"keys": published["keys"]})

    app = web.Application()
    app.router.add_get("/.well-known/jwks.json", keys)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield server, published
    await server.close()


async def test_keys_from_a_url_are_cached_and_fetched_again_for_a_new_key_id(
    tmp_path: Path,
    registry: Registry,
    monkeypatch: pytest.MonkeyPatch,
    jwks_server: tuple[TestServer, dict[str, Any]],
) -> None:
    server, published = jwks_server
    conf = tmp_path / "conf-url"
    await asyncio.to_thread(shutil.copytree, CONF, conf)
    url = str(server.make_url("/.well-known/jwks.json"))
    text = await asyncio.to_thread((conf / "clients.toml").read_text, encoding="utf-8")
    text = text.replace("[client.centre-hcm]\n", '[client.centre-hcm]\ntoken_issuers = ["sso"]\n', 1)
    text += (
        f'\n[issuer.sso]\nissuer = "{ISSUER}"\naudience = ["{AUDIENCE}"]\njwks_url = "{url}"\njwks_min_interval = 0.5\n'
    )
    await asyncio.to_thread((conf / "clients.toml").write_text, text, encoding="utf-8")
    monkeypatch.setenv("LIENTHONG_DB", str(tmp_path / "url.db"))
    config = await asyncio.to_thread(load_config, conf, registry)
    async with TestClient(TestServer(create_app(config, registry), host="127.0.0.1")) as client:
        keys = client.app[TOKEN_KEYS]

        async def status(headers: dict[str, str]) -> int:
            return (await client.get("/v1/dossiers", headers=headers)).status

        assert published["fetched"] == 1  # at start-up
        for _ in range(3):
            assert await status(bearer(token("ES256", sub="centre-hcm"))) == 200
        assert published["fetched"] == 1  # cached
        # The issuer rotates to a new key: the first token with its kid makes the gateway fetch again.
        published["keys"] = [jwk("EdDSA", KEYS["EdDSA"], "ed-2026")]
        await asyncio.sleep(0.6)  # past jwks_min_interval since the start-up fetch
        assert await status(bearer(token("EdDSA", kid="ed-2026", sub="centre-hcm"))) == 200
        assert published["fetched"] == 2
        # A flood of made-up key ids costs at most one fetch per jwks_min_interval (0.5 s), not one each.
        started = time.monotonic()
        for i in range(20):
            assert await status(bearer(token("EdDSA", kid=f"made-up-{i}", sub="centre-hcm"))) == 401
        assert published["fetched"] - 2 <= 1 + (time.monotonic() - started) / 0.5 < 20
        assert keys.fetches == published["fetched"]
