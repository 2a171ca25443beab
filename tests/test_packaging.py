"""The built wheel installs `invsolve` and nothing else at top level."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAPPED = {"invsolve": "invsolve", "operators": "invsolve/operators", "priors": "invsolve/priors", "datasets": "invsolve/datasets"}


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-q", "-w", str(out)],
        check=True,
        capture_output=True,
    )
    (wheel,) = out.glob("invsolve-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return archive.namelist()


def test_only_invsolve_at_top_level(wheel_names):
    top_level = {name.split("/")[0] for name in wheel_names}
    dist_info = {name for name in top_level if name.endswith(".dist-info")}
    assert top_level - dist_info == {"invsolve"}


def test_every_source_module_is_in_the_wheel(wheel_names):
    expected = set()
    for folder, installed in MAPPED.items():
        for path in (ROOT / folder).rglob("*.py"):
            if "__pycache__" not in path.parts:
                expected.add(f"{installed}/{path.relative_to(ROOT / folder).as_posix()}")
    missing = expected - set(wheel_names)
    assert not missing, f"listed in the source tree but missing from the wheel (add the subpackage to pyproject.toml): {sorted(missing)}"


def test_console_script_entry_point(wheel_names):
    assert any(name.endswith("entry_points.txt") for name in wheel_names)
