"""Hook implementations of the tax plugin."""

from __future__ import annotations

from contracts import ProcedureSpec
from gateway.sdk import AgencyKind, LookupSpec, hookimpl
from plugins.tax.connector import TaxConnector, TaxSettings
from plugins.tax.demo import BINDING, demo_dossiers, notice_example, taxpayer_example
from plugins.tax.forms import NoticeAnswer, NoticeQuery, TaxpayerAnswer, TaxpayerQuery
from plugins.tax.procedures import KIND, procedures
from plugins.tax.simulator import create_simulator


@hookimpl
def register_agency_kinds() -> list[AgencyKind]:
    return [
        AgencyKind(
            name=KIND,
            title="Tax authority: financial obligations of land transfers (SOAP, polled)",
            protocol="soap",
            settings_model=TaxSettings,
            connector=TaxConnector,
            lookups=(
                LookupSpec(
                    "taxpayer",
                    "A taxpayer by tax code or personal id",
                    TaxpayerQuery,
                    TaxpayerAnswer,
                    example=taxpayer_example,
                ),
                LookupSpec(
                    "tax-notice",
                    "Whether a tax notice is paid, unpaid or overdue, with its receipt",
                    NoticeQuery,
                    NoticeAnswer,
                    example=notice_example,
                ),
            ),
            simulator=create_simulator,
            polls=True,
            demo_dossiers=demo_dossiers,
            binding=BINDING,
        )
    ]


@hookimpl
def register_procedures() -> list[ProcedureSpec]:
    return procedures()
