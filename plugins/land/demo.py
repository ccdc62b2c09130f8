"""Realistic land dossiers for the demo and the benchmark: first certificates, and land-transfer bundles.

Parcels lie in Hà Nội (01), TP Hồ Chí Minh (79) or Đà Nẵng (48): the provinces the demo has offices for.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

import asyncssh

from contracts.admin_units import communes
from contracts.samples import pdf_attachment
from gateway.sandbox.launcher import SimSpec, free_port
from gateway.sdk import RunningSimulator, SimulatorBinding
from plugins.land.procedures import FIRST_CERTIFICATE
from plugins.land.simulator import DEFAULT_OFFICES, seeded_host_key
from plugins.tax.demo import declarations

PROVINCES = ["01", "79", "48"]
STREETS = ["Lê Lợi", "Trần Hưng Đạo", "Nguyễn Huệ", "Hai Bà Trưng", "Lý Thường Kiệt", "Phan Chu Trinh"]
SURNAMES = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Phan", "Vũ", "Đặng", "Bùi", "Đỗ"]
GIVEN = {"male": ["Văn An", "Đức Bình", "Minh Khoa", "Quốc Việt"], "female": ["Thị Lan", "Ngọc Mai", "Thu Hà"]}
BIRTH_CODES = ["001", "079", "048", "031", "046"]
DEMO_SFTP_PASSWORD = "demo-land-sftp-password-2025"


def demo_sim(workdir: Path, password: str = DEMO_SFTP_PASSWORD, **settings: Any) -> tuple[SimSpec, dict[str, str]]:
    """The land simulator of a launcher Stack, and the environment a conf reads to reach and pin it
    (LAND_SFTP_PORT, LAND_SFTP_PASSWORD, LAND_HOST_KEY). Writes a fresh host key: call off the event loop."""
    key = asyncssh.generate_private_key("ssh-ed25519")
    key_path = workdir / "land-keys" / "host_ed25519"
    key_path.parent.mkdir(parents=True, exist_ok=True)
    key.write_private_key(key_path)
    port = free_port()
    spec = SimSpec(
        kind="land",
        agency="land",
        url_env="LAND_SIM_URL",
        secret=password,
        settings={"root": str(workdir / "land-sftp"), "sftp_port": port, "host_key_path": str(key_path)} | settings,
    )
    env = {
        "LAND_SFTP_PORT": str(port),
        "LAND_SFTP_PASSWORD": password,
        "LAND_HOST_KEY": key.export_public_key().decode().strip(),
    }
    return spec, env


def person(rng: random.Random) -> dict[str, Any]:
    """A citizen whose 12-digit personal id agrees with the date of birth and gender."""
    gender = rng.choice(["male", "female"])
    dob = date(rng.randint(1955, 2004), rng.randint(1, 12), rng.randint(1, 28))
    digit4 = (0 if dob.year < 2000 else 2) + (1 if gender == "female" else 0)
    pid = f"{rng.choice(BIRTH_CODES)}{digit4}{dob.year % 100:02d}{rng.randint(0, 999_999):06d}"
    return {
        "kind": "person",
        "full_name": f"{rng.choice(SURNAMES)} {rng.choice(GIVEN[gender])}",
        "personal_id": pid,
        "date_of_birth": dob.isoformat(),
        "gender": gender,
        "phone": f"09{rng.randint(10_000_000, 99_999_999)}",
        "vneid_level": 2,
    }


def parcel(rng: random.Random, province: str) -> dict[str, Any]:
    commune = rng.choice([c.code for c in communes().values() if c.province_code == province])
    return {
        "map_sheet": str(rng.randint(1, 60)),
        "parcel_no": str(rng.randint(1, 900)),
        "area_m2": f"{rng.randint(3_000, 25_000) / 100:.2f}",
        "address": {
            "province": province,
            "commune": commune,
            "line": f"Số {rng.randint(1, 300)} {rng.choice(STREETS)}",
        },
        "land_use": rng.choice(["ODT", "ONT"]),
    }


def _party(p: dict[str, Any]) -> dict[str, Any]:
    return {"full_name": p["full_name"], "personal_id": p["personal_id"]}


def demo_dossiers(seed: int, count: int) -> list[dict[str, Any]]:
    """First-certificate dossiers (POST /v1/dossiers), whatever centre receives them."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        province = rng.choice(PROVINCES)
        applicant, land = person(rng), parcel(rng, province)
        out.append(
            {
                "procedure_code": FIRST_CERTIFICATE,
                "channel": rng.choice([1, 2]),
                "applicant": applicant,
                "jurisdiction": {"province": province, "commune": land["address"]["commune"]},
                "summary": f"Cấp GCN lần đầu, thửa {land['parcel_no']} tờ bản đồ {land['map_sheet']}",
                "form": {"parcels": [land], "origin": "recognised", "in_use_since": rng.randint(1980, 2010)},
                "attachments": [
                    pdf_attachment("DON_DK", "Đơn đăng ký đất đai (Mẫu 04/ĐK)", applicant["full_name"]),
                    # Papers proving how the land came to the applicant, scanned at the counter.
                    pdf_attachment(
                        "GT_SDD",
                        "Giấy tờ về quyền sử dụng đất",
                        f"Thua {land['parcel_no']}, to ban do {land['map_sheet']}",
                        scan=(420, 560),
                    ),
                ],
            }
        )
    return out


def demo_bundles(seed: int, count: int, *, province: str | None = None) -> list[dict[str, Any]]:
    """Land transfers as `land-transfer` bundles (POST /v1/bundles): declaration, tax, registration."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        prov = province or rng.choice(PROVINCES)
        seller, buyer, land = person(rng), person(rng), parcel(rng, prov)
        land["certificate_serial"] = f"CS {rng.randint(100_000, 999_999)}"
        price = rng.randint(8, 120) * 100_000_000
        out.append(
            {
                "bundle": "land-transfer",
                "applicant": buyer,
                "jurisdiction": {"province": prov, "commune": land["address"]["commune"]},
                "summary": f"Chuyển nhượng quyền sử dụng đất thửa {land['parcel_no']} tờ {land['map_sheet']}",
                "forms": {
                    "declaration": {
                        "phase": "declaration",
                        "parcels": [land],
                        "transferors": [_party(seller)],
                        "transferees": [_party(buyer)],
                        "declared_price_vnd": price,
                        "contract_no": f"{rng.randint(1000, 9999)}/2025/HĐCN",
                    },
                    "tax": tax_form(seller, buyer, land, price),
                    "registration": {"phase": "registration"},
                },
                "attachments": {
                    "declaration": [
                        pdf_attachment("HD_CN", "Hợp đồng chuyển nhượng QSDĐ", seller["full_name"], scan=(480, 640)),
                        pdf_attachment("GCN", "Giấy chứng nhận đã cấp (bản gốc)", land["certificate_serial"]),
                    ],
                    "tax": tax_attachments(seller, buyer, land, price),
                },
            }
        )
    return out


def tax_attachments(
    seller: dict[str, Any], buyer: dict[str, Any], land: dict[str, Any], price: int = 0
) -> list[dict[str, Any]]:
    """The declarations the tax step requires (plugins/tax: TK01LPTB, TK03TNCN, HDCN)."""
    return declarations(
        (seller["full_name"], seller["personal_id"]),
        (buyer["full_name"], buyer["personal_id"]),
        land["map_sheet"],
        land["parcel_no"],
        price,
    )


def tax_form(seller: dict[str, Any], buyer: dict[str, Any], land: dict[str, Any], price: int) -> dict[str, Any]:
    """The tax step's form (plugins/tax LandTransferTaxForm): the same transfer in the tax plugin's terms."""
    a = land["address"]
    return {
        "transferor": _party(seller),
        "transferee": _party(buyer),
        "parcel": {
            "province": a["province"],
            "commune": a["commune"],
            "map_sheet_no": land["map_sheet"],
            "parcel_no": land["parcel_no"],
            "area_m2": land["area_m2"],
            "address": a["line"],
        },
        "declared_price_vnd": price,
    }


def sandbox_settings(workdir: Path) -> dict[str, Any]:
    """The offices' SFTP server on a free port, its files in the run's folder, a host key made for the run;
    notices paid a second after they are issued."""
    return {
        "root": str(workdir / "land-sftp"),
        "sftp_port": free_port(),
        "host_key_seed": secrets.token_hex(16),
        "scan_interval": 0.1,
        "auto_pay_after": 1.0,
        "appointments_secret": secrets.token_hex(16),
    }


def bind_endpoint(sim: RunningSimulator, endpoint: str, configured: Mapping[str, Any]) -> dict[str, Any]:
    """An office's SFTP account at the simulator, its host key pinned; the office folder is the endpoint's
    own (`root`), the office named after the endpoint, or else the first office (Hà Nội's)."""
    settings = sim.settings
    offices = list(settings.get("offices") or DEFAULT_OFFICES)
    folder = endpoint if endpoint in offices else offices[0]
    key = seeded_host_key(str(settings["host_key_seed"]))
    bound = {k: v for k, v in configured.items() if k != "url"}
    return bound | {
        "host": "127.0.0.1",
        "port": int(settings["sftp_port"]),
        "username": str(settings.get("username", "lienthong")),
        "password": sim.secret,
        "host_key": key.export_public_key().decode().strip(),
        "root": configured.get("root") or f"/{folder}",
        "appointments": {"url": sim.url, "secret": str(settings.get("appointments_secret") or sim.secret)},
    }


BINDING = SimulatorBinding(settings=sandbox_settings, endpoint=bind_endpoint)
