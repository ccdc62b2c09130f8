"""The public catalog and guide pages: no key, searchable with or without diacritics, cacheable (their
rate limit per source address is tested in test_ratelimit.py)."""

from __future__ import annotations

from tests.gateway.conftest import GatewayHarness


async def test_search_needs_no_key_and_finds_with_or_without_diacritics(harness: GatewayHarness) -> None:
    for q in ("thường trú", "thuong tru", "THUONG TRU"):
        resp = await harness.client.get("/v1/public/procedures", params={"q": q})
        assert resp.status == 200, q
        assert [p["code"] for p in (await resp.json())["items"]] == ["1.004194"], q
    # The guide's text is searched too: the deciding agency, the documents.
    resp = await harness.client.get("/v1/public/procedures", params={"q": "cho o hop phap"})
    assert [p["code"] for p in (await resp.json())["items"]] == ["1.004194"]


async def test_search_by_agency_kind_or_name(harness: GatewayHarness) -> None:
    resp = await harness.client.get("/v1/public/procedures", params={"agency": "police"})
    assert [p["code"] for p in (await resp.json())["items"]] == ["1.004194", "1.004203"]
    resp = await harness.client.get("/v1/public/procedures", params={"agency": "Công an xã"})
    assert [p["code"] for p in (await resp.json())["items"]] == ["1.004194"]  # the one with a guide naming it
    resp = await harness.client.get("/v1/public/procedures", params={"agency": "land"})
    assert (await resp.json())["items"] == []


async def test_one_procedure_carries_its_guide_and_page_address(harness: GatewayHarness) -> None:
    resp = await harness.client.get("/v1/public/procedures/1.004194")
    assert resp.status == 200
    body = await resp.json()
    guide = body["guide"]
    assert body["guide_url"] == f"http://127.0.0.1:{harness.client.port}/guide/1.004194"
    assert body["processing_days"] == 7
    assert [d["component_code"] for d in guide["documents"]] == ["TK01", "HD01"]
    assert [(f["case"], f["amount_vnd"]) for f in guide["fees"]] == [
        ("Nộp hồ sơ trực tiếp", 20000),
        ("Nộp hồ sơ trực tuyến", 10000),
    ]
    assert guide["legal_basis"][0] == "Luật Cư trú số 68/2020/QH14"
    assert "portal_databases" not in body and "form_schema" not in body


async def test_answers_are_cacheable_and_revalidated(harness: GatewayHarness) -> None:
    for path in ("/v1/public/procedures?q=tru", "/v1/public/procedures/1.004194", "/guide/1.004194"):
        first = await harness.client.get(path)
        assert first.status == 200
        etag = first.headers["ETag"]
        assert first.headers["Cache-Control"] == "public, max-age=300"
        again = await harness.client.get(path, headers={"If-None-Match": etag})
        assert again.status == 304, path
        assert again.headers["ETag"] == etag and await again.read() == b""
        other = await harness.client.get(path, headers={"If-None-Match": '"something-else"'})
        assert other.status == 200 and await other.read() == await first.read()


async def test_unknown_procedure_is_a_problem(harness: GatewayHarness) -> None:
    for path in ("/v1/public/procedures/1.999999", "/guide/1.999999"):
        resp = await harness.client.get(path)
        assert resp.status == 404
        assert resp.content_type == "application/problem+json"
        assert (await resp.json())["type"] == "urn:lienthong:problem:not-found"


async def test_guide_page_is_vietnamese_printable_and_has_its_qr(harness: GatewayHarness) -> None:
    resp = await harness.client.get("/guide/1.004194")
    page = await resp.text()
    assert resp.content_type == "text/html"
    assert "default-src 'none'" in resp.headers["Content-Security-Policy"]
    assert '<html lang="vi">' in page and "size: A4" in page
    assert "Tờ khai thay đổi thông tin cư trú (Mẫu CT01)" in page and "20.000 đồng" in page
    assert "7 ngày làm việc" in page and "Luật Cư trú số 68/2020/QH14" in page
    assert "<svg" in page and f"http://127.0.0.1:{harness.client.port}/guide/1.004194" in page
    # A procedure without a guide still gets a page, from the catalog alone.
    bare = await (await harness.client.get("/guide/1.004203")).text()
    assert "Tờ khai thay đổi thông tin cư trú (CT01)" in bare and "Không thu phí, lệ phí." in bare


async def test_the_search_page_lists_guides_by_keyword_and_agency(harness: GatewayHarness) -> None:
    resp = await harness.client.get("/guide", params={"q": "thuong tru"})
    page = await resp.text()
    assert resp.status == 200 and resp.headers["Cache-Control"] == "public, max-age=300"
    assert '<a href="/guide/1.004194">Đăng ký thường trú' in page and "1.004203" not in page
    assert '<p id="count">1 thủ tục</p>' in page and 'value="thuong tru"' in page
    every = await (await harness.client.get("/guide", params={"agency": "police"})).text()
    assert '<p id="count">2 thủ tục</p>' in every
    assert '<option value="police" selected>Bộ Công an: Cơ sở dữ liệu quốc gia về dân cư</option>' in every
    # What the applicant typed comes back escaped, never as markup.
    odd = await (await harness.client.get("/guide", params={"q": '"><script>x</script>'})).text()
    assert "<script>" not in odd and "&lt;script&gt;" in odd
