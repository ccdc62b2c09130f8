"""Export the JSON Schema of the public contract models to `contracts/schemas/v1/<Name>.json`.

    python -m contracts.schema           # write the files
    python -m contracts.schema --check   # exit 1, listing the stale files, when they differ

The files are committed so that centres and agencies can read the contract without Python; a test keeps
them in step with the models.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from contracts import CONTRACT_VERSION
from contracts.dossier import (
    Attachment,
    Dossier,
    DossierSubmission,
    ResultDocument,
    StatusEvent,
    SupplementRequest,
)
from contracts.portal import PortalDossier, PortalProgress
from contracts.procedure import ProcedureSpec

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
DEFAULT_DEST = Path(__file__).parent / "schemas" / CONTRACT_VERSION

Mode = Literal["validation", "serialization"]

# name -> (model, mode). ProcedureSpec is exported as it serialises: without form_model (a Python class,
# excluded from dumps); its form is published separately through ProcedureSpec.form_schema().
MODELS: dict[str, tuple[type[BaseModel], Mode]] = {
    "Attachment": (Attachment, "validation"),
    "Dossier": (Dossier, "validation"),
    "PortalDossier": (PortalDossier, "serialization"),
    "PortalProgress": (PortalProgress, "serialization"),
    "DossierSubmission": (DossierSubmission, "validation"),
    "ProcedureSpec": (ProcedureSpec, "serialization"),
    "ResultDocument": (ResultDocument, "validation"),
    "StatusEvent": (StatusEvent, "validation"),
    "SupplementRequest": (SupplementRequest, "validation"),
}


def schema_of(name: str) -> dict[str, Any]:
    """The JSON Schema of one exported model, with the dialect it follows."""
    model, mode = MODELS[name]
    return {"$schema": JSON_SCHEMA_DIALECT, **model.model_json_schema(mode=mode)}


def render() -> dict[str, str]:
    """File name -> file text for every exported model: sorted keys, indent 2, trailing newline."""
    return {
        f"{name}.json": json.dumps(schema_of(name), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        for name in MODELS
    }


def export(dest: Path) -> list[Path]:
    """Write every schema file into `dest` (created if needed); the paths written, sorted."""
    dest.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for filename, text in sorted(render().items()):
        path = dest / filename
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def stale(dest: Path) -> list[Path]:
    """Files in `dest` that are missing, differ from the models, or belong to no exported model."""
    expected = render()
    out = [
        dest / filename
        for filename, text in sorted(expected.items())
        if not (dest / filename).is_file() or (dest / filename).read_text(encoding="utf-8") != text
    ]
    if dest.is_dir():
        out += sorted(p for p in dest.glob("*.json") if p.name not in expected)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m contracts.schema", description="Export the contract JSON Schemas.")
    parser.add_argument("--check", action="store_true", help="do not write; exit 1 when files are stale")
    parser.add_argument("--dest", type=Path, default=DEFAULT_DEST, help="output folder (%(default)s)")
    args = parser.parse_args(argv)
    dest: Path = args.dest
    if args.check:
        paths = stale(dest)
        for path in paths:
            print(f"stale: {path}", file=sys.stderr)
        if paths:
            print("run `python -m contracts.schema` to regenerate", file=sys.stderr)
            return 1
        return 0
    for path in export(dest):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
