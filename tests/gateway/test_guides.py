"""The guides of conf/demo: every procedure offered has one, naming the documents its plugin takes; the
catalog searches them by agency and keyword, with or without diacritics."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.catalog import Catalog
from gateway.config import load_config
from gateway.errors import ConfigError
from gateway.guides import render_page, vnd
from gateway.plugin_manager import Registry
from tests.gateway.conftest import CONF

DEMO = Path(__file__).resolve().parents[2] / "conf" / "demo"


@pytest.fixture(scope="module")
def demo_catalog(registry: Registry) -> Catalog:
    return Catalog.build(load_config(DEMO, registry), registry)


def test_every_demo_procedure_has_a_full_guide(demo_catalog: Catalog) -> None:
    assert len(demo_catalog.procedures) == 10
    for spec in demo_catalog.procedures.values():
        guide = spec.guide
        assert guide is not None, spec.code
        assert guide.agency and guide.where and guide.legal_basis and guide.documents, spec.code
        # The guide's component codes are those the plugin takes, so the counter's list matches intake's.
        taken = {r.component_code for r in spec.documents}
        named = {d.component_code for d in guide.documents if d.component_code}
        assert named <= taken, (spec.code, named - taken)
        assert set(spec.required_components) <= named, spec.code


def test_fees_by_case(demo_catalog: Catalog) -> None:
    transfer = demo_catalog.get("1.004227")
    assert transfer is not None and transfer.guide is not None
    cases = {f.case: (f.amount_vnd, f.rate) for f in transfer.guide.fees}
    assert cases["Lệ phí trước bạ nhà, đất"][1].startswith("0,5%")
    assert cases["Thuế thu nhập cá nhân từ chuyển nhượng bất động sản"][1].startswith("2%")
    birth = demo_catalog.get("1.001193")
    assert birth is not None and birth.guide is not None and birth.guide.fees[0].amount_vnd == 0
    assert vnd(20000) == "20.000 đồng" and vnd(1250000) == "1.250.000 đồng"


@pytest.mark.parametrize(
    ("agency", "q", "codes"),
    [
        ("land", None, ["1.004227", "1.004269"]),
        ("Văn phòng đăng ký đất đai", None, ["1.004227", "1.004269"]),
        ("van phong dang ky dat dai", None, ["1.004227", "1.004269"]),
        ("ủy ban nhân dân", None, ["1.000656", "1.001193"]),
        (None, "khai sinh", ["1.001193", "1.003015"]),  # the health card is done with the birth registration
        (None, "KHAI SINH", ["1.001193", "1.003015"]),
        (None, "bảo hiểm y tế", ["1.003015"]),
        (None, "bao hiem y te", ["1.003015"]),
        (None, "trước bạ", ["1.010912"]),
        ("tax", "truoc ba", ["1.010912"]),
        # the removal ("xóa đăng ký thường trú") and the birth registration done with it (liên thông)
        (None, "dang ky thuong tru", ["1.001193", "1.004194", "1.004206"]),
        (None, "no such words", []),
    ],
)
def test_search(demo_catalog: Catalog, agency: str | None, q: str | None, codes: list[str]) -> None:
    assert [p.code for p in demo_catalog.search(agency_kind=agency, q=q)] == codes


def test_every_demo_guide_page_renders(demo_catalog: Catalog) -> None:
    for spec in demo_catalog.procedures.values():
        page = render_page(spec, f"https://mot-cua.example.gov.vn/guide/{spec.code}")
        assert spec.name in page.replace("&#x27;", "'") and "<svg" in page


def test_a_guide_for_a_procedure_no_plugin_serves_is_refused(registry: Registry, tmp_path: Path) -> None:
    import shutil

    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf)
    text = (conf / "guides.toml").read_text(encoding="utf-8").replace('"1.004194"', '"1.999999"')
    (conf / "guides.toml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(conf, registry)
    assert ("guides.toml", "guide.1.999999", "no plugin serves procedure 1.999999") in err.value.problems


def test_a_guide_without_documents_is_refused(registry: Registry, tmp_path: Path) -> None:
    import shutil

    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf)
    (conf / "guides.toml").write_text(
        '[guide."1.004194"]\nagency = "Công an xã"\nwhere = "nơi cư trú"\nlegal_basis = ["Luật Cư trú"]\n'
        "documents = []\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as err:
        load_config(conf, registry)
    assert [(f, k) for f, k, _ in err.value.problems] == [("guides.toml", "guide.1.004194.documents")]
