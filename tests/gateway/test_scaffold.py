"""`lienthong plugin new`: what it writes, and (slow) each protocol's plugin as a plugin author takes
it: installed with `pip install -e` into an environment of its own, its tests and both conformance kits
run there, the gateway's own tests still passing beside it, and `lienthong demo --conf` delivering its
dossiers exactly once."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.sdk.scaffold import PROTOCOLS, ScaffoldError, new_plugin, procedure_code

ROOT = Path(__file__).resolve().parents[2]
DEMO_CONF = ROOT / "conf" / "demo"


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_plugin_is_written_whole(tmp_path: Path, protocol: str) -> None:
    made = new_plugin("permits", protocol, tmp_path)
    pkg = made.folder / "lienthong_permits"
    written = {p.relative_to(made.folder).as_posix() for p in made.folder.rglob("*") if p.is_file()}
    assert {
        "pyproject.toml",
        "README.md",
        "tests/test_conformance.py",
        "tests/test_connector.py",
        "tests/test_gateway.py",
        *(
            f"lienthong_permits/{m}"
            for m in ("__init__.py", "plugin.py", "connector.py", "forms.py", "simulator.py", "demo.py", "py.typed")
        ),
    } <= written
    pyproject = (made.folder / "pyproject.toml").read_text()
    assert '[project.entry-points."lienthong.plugins"]\npermits = "lienthong_permits.plugin"' in pyproject
    assert 'lienthong_kind = "permits"' in pyproject
    for path in made.folder.rglob("*.py"):
        compile(path.read_text(), str(path), "exec")  # every template filled in as Python
    assert made.procedure == procedure_code("permits") and re.fullmatch(r"2\.\d{6}", made.procedure)
    assert made.procedure in (pkg / "forms.py").read_text()
    readme = (made.folder / "README.md").read_text()
    assert made.agency_toml in readme and made.route_toml in readme


def test_a_bad_name_or_a_folder_in_the_way_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ScaffoldError, match="lower_snake_case"):
        new_plugin("Permits-HN", "rest", tmp_path)
    with pytest.raises(ScaffoldError, match="protocol 'grpc'"):
        new_plugin("permits", "grpc", tmp_path)
    new_plugin("permits", "rest", tmp_path)
    with pytest.raises(ScaffoldError, match="not empty"):
        new_plugin("permits", "soap", tmp_path)


def test_the_command_writes_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugin", "new", "shops", "--protocol", "file", "--dir", str(tmp_path)]) == 0
    assert "pip install --no-deps --no-build-isolation -e ." in capsys.readouterr().out
    assert (tmp_path / "lienthong-shops" / "lienthong_shops" / "simulator.py").exists()
    assert main(["plugin", "new", "Shops", "--protocol", "file", "--dir", str(tmp_path)]) == 2


# -- as a plugin author takes it ---------------------------------------------------------------------


def run(args: list[str], cwd: Path, timeout: float = 300) -> str:
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    out = done.stdout + done.stderr
    assert done.returncode == 0, f"{' '.join(args)} failed ({done.returncode}):\n{out[-6000:]}"
    return out


def environment(folder: Path) -> Path:
    """A virtualenv of its own that also sees this one's packages (the gateway, pytest, setuptools):
    what a plugin author installs into, without downloading anything or touching this environment."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True, timeout=120)
    python = folder / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    ours = sysconfig.get_paths()["purelib"]
    Path(purelib, "lienthong-under-test.pth").write_text(f"import site; site.addsitedir({ours!r})\n")
    return python


@pytest.mark.slow
def test_each_protocols_plugin_installs_passes_and_runs_in_the_demo(tmp_path: Path) -> None:
    python = environment(tmp_path / "venv")
    made = [new_plugin(f"trade_{p}", p, tmp_path / "plugins", title=f"Sở Công Thương ({p})") for p in PROTOCOLS]
    for plugin in made:
        run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "-q",
                "--no-deps",
                "--no-build-isolation",
                "--no-index",
                "-e",
                str(plugin.folder),
            ],
            tmp_path,
        )
    for plugin in made:  # its own tests, the static and the behavioural conformance kits among them
        out = run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider"], plugin.folder)
        assert re.search(r"\b1[0-9] passed\b", out), out
        assert "behavioural_conformance" not in out  # no failure line names a check
    kinds = [p.name for p in made]
    out = run([str(python), "-m", "gateway.cli", "plugin", "check", *kinds], tmp_path)
    assert out.rstrip().endswith("0 failed"), out
    # The gateway's own tests that know the built-in plugins, with three more installed beside them.
    out = run(
        [
            str(python),
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/gateway/test_plugin_manager.py",
            "tests/gateway/test_conformance.py",
            "tests/gateway/test_api_procedures.py",
        ],
        ROOT,
    )
    assert " passed" in out and "failed" not in out, out

    conf = tmp_path / "conf"
    shutil.copytree(DEMO_CONF, conf)
    for file, part in (
        ("agencies.toml", "agency_toml"),
        ("routes.toml", "route_toml"),
        ("procedures.toml", "procedure_toml"),
    ):
        with (conf / file).open("a", encoding="utf-8") as fh:
            for plugin in made:
                fh.write("\n" + getattr(plugin, part))
    out = run([str(python), "-m", "gateway.cli", "demo", "--conf", str(conf), "--dossiers", "24"], tmp_path, 400)
    assert "RESULT: all delivered with all their documents, none twice" in out, out
    for kind in kinds:  # the agency's row: routed, received once each by its simulator, every document whole
        row = re.search(rf"^  {kind} +(\d+) +(\d+) +(\d+) ", out, re.M)
        assert row is not None, out
        assert int(row.group(1)) > 0 and row.group(1) == row.group(2) == row.group(3), out
