"""The procedure the tax plugin serves, and the documents it takes (the simulator checks what arrives against
the same rules). Documents travel as xs:base64Binary elements of the SOAP request (tax.xsd,
AttachedDocument): each is kept under the XML parsers' 10 MB text limit."""

from __future__ import annotations

from contracts import DocumentRule, ProcedureSpec
from plugins.tax.forms import LandTransferTaxForm

KIND = "tax"
# (uncertain) A real-shaped code of the national procedure database; operators may rename it in
# conf/procedures.toml. Likewise the component codes of the two declarations and the contract.
LAND_TRANSFER_TAX = "1.010912"
COMPONENTS = ("TK01LPTB", "TK03TNCN", "HDCN")
DECLARATIONS = ("application/xml", "application/pdf")  # e-tax XML (HSoThueDTu), or the printed form
SCANS = ("application/pdf", "image/jpeg", "image/png")


def procedures() -> list[ProcedureSpec]:
    return [
        ProcedureSpec(
            code=LAND_TRANSFER_TAX,
            name="Khai nghĩa vụ tài chính khi chuyển nhượng quyền sử dụng đất (lệ phí trước bạ, thuế TNCN)",
            sector="Thuế",
            agency_kind=KIND,
            processing_days=5,  # (uncertain) days for the tax office to issue the notices
            form_model=LandTransferTaxForm,
            required_components=COMPONENTS,
            documents=(
                DocumentRule(
                    component_code="TK01LPTB",
                    name="Tờ khai lệ phí trước bạ nhà, đất (01/LPTB)",
                    max_bytes=5 * 2**20,
                    media_types=DECLARATIONS,
                ),
                DocumentRule(
                    component_code="TK03TNCN",
                    name="Tờ khai thuế thu nhập cá nhân (03/BĐS-TNCN)",
                    max_bytes=5 * 2**20,
                    media_types=DECLARATIONS,
                ),
                DocumentRule(
                    component_code="HDCN",
                    name="Hợp đồng chuyển nhượng quyền sử dụng đất",
                    max_bytes=7 * 2**20,
                    media_types=SCANS,
                ),
            ),
            jurisdiction_field="parcel",  # the declaration names the parcel: the dossier lies where it does
            # Exemptions and valuations are argued with the tax office's officer: the centre books a slot.
            referral=True,
        )
    ]


def by_code() -> dict[str, ProcedureSpec]:
    return {p.code: p for p in procedures()}
