"""The `sportbench` command as a user types it."""
import os, re, subprocess, sys
from collections import Counter
from pathlib import Path
import pytest
from conftest import shared_or_skip
from sportbench.core import bundled_data

SPORTBENCH = str(Path(sys.executable).parent / "sportbench")


def _run(*args, check=True):
    res = subprocess.run([SPORTBENCH, *args], capture_output=True, text=True, env=os.environ.copy(), timeout=600)
    if check: assert res.returncode == 0, res.stderr[-3000:]
    return res


def _yolo_counts(root):
    names = ["ball", "goalkeeper", "player", "referee"]
    return Counter(names[int(l.split()[0])] for p in Path(root).glob("*/labels/*.txt") for l in p.read_text().splitlines() if l.split())


def _printed_counts(out):
    return {m[1]: int(m[2]) for m in re.finditer(r"^  (\w+)\s+(\d+)$", out, re.M)}


def test_ingest_yolo_real_set(dataset_name):
    root = shared_or_skip("football_players_1080p_yolo")
    out = _run("ingest", "yolo", str(root), "--name", dataset_name).stdout
    assert f"dataset {dataset_name}: 318 frames" in out
    assert _printed_counts(out) == dict(_yolo_counts(root))
    splits = dict((k, int(v)) for k, v in re.findall(r"(train|val|test) (\d+)", out.split("splits (by match):")[1]))
    assert set(splits) == {"train", "val", "test"} and sum(splits.values()) == 318
    assert f"dataset {dataset_name}: 318 frames" in _run("ingest", "yolo", str(root), "--name", dataset_name).stdout  # no duplicates


def test_ingest_bad_input_exits_1_naming_the_file(tmp_path, dataset_name):
    bad = tmp_path / "video.mp4"
    bad.write_bytes(b"\x00" * 1000)
    res = _run("ingest", "video", str(bad), "--name", dataset_name, check=False)
    assert res.returncode == 1 and "video.mp4" in res.stderr and "Traceback" not in res.stderr


def test_run_reports_unknown_parameter():
    res = _run("run", "ingest", "-p", "datset", "x", check=False)
    assert res.returncode == 1 and "no parameter 'datset'" in res.stderr


def test_help_lists_commands_without_heavy_imports():
    out = _run("--help").stdout
    for cmd in ("db", "ingest", "run", "demo", "jobs"): assert cmd in out
    code = "import sys, sportbench.cli, sportbench.formats, sportbench.video; print(sorted({'fiftyone', 'torch', 'rfdetr'} & set(sys.modules)))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "[]"
