"""Every API notebook runs top to bottom (its check cells are tests), and the committed modules match the notebooks."""
import os, shutil, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted(p.name for p in (ROOT / "nbs").glob("[0-9]*.ipynb"))
BIN = Path(sys.executable).parent


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_notebook_runs(notebook, isolated_store):
    res = subprocess.run([str(BIN / "nbdev_test"), "--path", notebook], cwd=ROOT / "nbs", env=os.environ.copy(),
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, f"{notebook} failed:\n{res.stdout[-4000:]}\n{res.stderr[-4000:]}"


def test_export_leaves_no_diff(tmp_path):
    "nbdev_export on the committed notebooks reproduces the committed package exactly."
    for name in ("settings.ini", "pyproject.toml"): shutil.copy(ROOT / name, tmp_path / name)
    for name in ("nbs", "sportbench"): shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([str(BIN / "nbdev_export")], cwd=tmp_path, check=True, capture_output=True)
    res = subprocess.run(["diff", "-r", "-x", "__pycache__", str(ROOT / "sportbench"), str(tmp_path / "sportbench")],
                         capture_output=True, text=True)
    assert res.returncode == 0, f"modules differ from notebooks; run nbdev_export (or nbdev_update) and commit:\n{res.stdout[-3000:]}"
