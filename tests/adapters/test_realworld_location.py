"""The real-world artefacts are found beside the checkout, and their absence fails instead of skipping."""

from __future__ import annotations

from pathlib import Path

import pytest

import tests.adapters as here


def test_realworld_is_the_shared_folder_beside_the_repository() -> None:
    repo = Path(__file__).resolve().parents[2]
    assert (repo.parent / "shared" / "realworld").resolve() == here.REALWORLD
    assert here.realworld("vies-checkvat", "checkVatService.wsdl").is_file()


def test_a_missing_shared_folder_fails_loudly(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(here, "REALWORLD", tmp_path / "nowhere")
    with pytest.raises(pytest.fail.Exception, match="real-world artefact missing"):
        here.realworld("vies-checkvat", "checkVatService.wsdl")
