"""What an applicant needs to know about a procedure (hướng dẫn thủ tục): the documents to bring, the fees
by case, where it is handled, its legal basis and channels. Operators write it in conf/guides.toml."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from contracts.base import Model

Copy = Literal["original", "certified_copy", "copy", "original_or_certified_copy", "electronic"]
GuideChannel = Literal["in_person", "online", "post"]


class GuideDocument(Model):
    """One document the applicant brings (thành phần hồ sơ), as the procedure's published list names it."""

    name: str = Field(min_length=1, max_length=300, description="as the published procedure names it")
    component_code: str | None = Field(None, max_length=50, description="MaThanhPhanHoSo, when submitted online")
    copies: int = Field(1, ge=1, le=20, description="how many")
    kind: Copy = Field("original", description="original (bản chính), certified copy (bản sao chứng thực), ...")
    required: bool = True
    note: str = Field("", max_length=500, description="when it is needed, or what may replace it")


class GuideFee(Model):
    """A fee, charge or tax by case, from the agency's tariff (lệ phí, phí)."""

    case: str = Field(min_length=1, max_length=300, description="who or what pays this amount")
    amount_vnd: int | None = Field(None, ge=0, description="the amount; None when it is computed (a rate)")
    rate: str = Field("", max_length=200, description="how it is computed when there is no fixed amount")
    note: str = Field("", max_length=300)


class ProcedureGuide(Model):
    """The applicant's guide to one procedure; the counter prints it and the QR code opens it online."""

    summary: str = Field("", max_length=1000, description="what the procedure is for, in a sentence or two")
    applicants: str = Field("", max_length=500, description="who may apply (đối tượng thực hiện)")
    agency: str = Field(min_length=1, max_length=300, description="who decides (cơ quan giải quyết)")
    where: str = Field(
        min_length=1, max_length=500, description="where it is bound: e.g. the province where the parcel lies"
    )
    documents: tuple[GuideDocument, ...] = Field(min_length=1)
    fees: tuple[GuideFee, ...] = Field((), description="empty: free of charge")
    processing: str = Field("", max_length=300, description="processing time in words, beside the working days")
    result: str = Field("", max_length=300, description="what the applicant receives")
    legal_basis: tuple[str, ...] = Field(min_length=1, description="laws, decrees and circulars (căn cứ pháp lý)")
    channels: tuple[GuideChannel, ...] = Field(("in_person",), min_length=1)
    notes: tuple[str, ...] = ()
