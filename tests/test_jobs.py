"""Job notebooks: their parameters are all visible to papermill, and the main job runs end to end."""
import os, re, subprocess, sys
from pathlib import Path
import nbformat
import pytest
from sportbench.runs import jobs_dir, list_jobs

SPORTBENCH = str(Path(sys.executable).parent / "sportbench")


@pytest.mark.parametrize("job", list_jobs())
def test_every_parameter_is_declared_to_papermill(job):
    import papermill as pm
    nb = nbformat.read(jobs_dir() / f"{job}.ipynb", 4)
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, f"{job}: expected one cell tagged 'parameters', found {len(cells)}"
    written = re.findall(r"^(\w+)\s*:", cells[0].source, re.M)
    assert list(pm.inspect_notebook(str(jobs_dir() / f"{job}.ipynb"))) == written, \
        f"{job}: papermill cannot read some parameters (a value or comment with '=' or quotes?)"


def test_loop_job_builds_the_dataset(tmp_path, dataset_name):
    res = subprocess.run([SPORTBENCH, "run", "loop", "-p", "dataset", dataset_name, "-p", "synth_seconds", "2",
                          "-p", "synth_every", "10", "-p", "budget", "4", "--runs-dir", str(tmp_path)], capture_output=True, text=True,
                         env=os.environ.copy(), timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    out = Path(res.stdout.split("executed notebook: ")[1].strip())
    assert out.parent.parent == tmp_path and out.name == "loop.ipynb"
    import fiftyone as fo
    ds = fo.load_dataset(dataset_name)
    assert len(ds.match_tags("synthetic")) == 5 and len(ds.match_tags("synthetic", bool=False)) == 24
    for split in ("train", "val", "test"): assert len(ds.match_tags(split)) > 0
    pool = ds.match_tags("train")
    assert len(pool.exists("pred_loop")) == len(pool) and not len(ds.match_tags("train", bool=False).exists("pred_loop"))
    reviewed = ds.match_tags("annotated")
    assert len(reviewed) == min(4, len(pool)) and len(reviewed.match_tags("train")) == len(reviewed)  # the budget, from the pool only
    assert len(pool.exists("ground_truth")) == len(reviewed)  # the reviewer labelled what was picked, nothing else
    assert len(ds.match_tags("test").exists("pred_trained")) == len(ds.match_tags("test"))
    text = out.read_text()
    assert "loop finished" in text and "test matches: mAP@0.5" in text
    assert "test matches: mAP@0.5" in res.stdout  # the command prints the job's summary too
    import mlflow
    from sportbench.runs import mlflow_uri
    mlflow.set_tracking_uri(mlflow_uri())
    runs = mlflow.search_runs(experiment_names=["sportbench-train"])
    assert len(runs) and runs["metrics.train/loss"].notna().any()  # per-epoch metrics of the loop's training


def test_failing_job_exits_nonzero_naming_the_cell(tmp_path):
    res = subprocess.run([SPORTBENCH, "run", "ingest", "-p", "kind", "yolo", "-p", "source", str(tmp_path / "missing"),
                          "--runs-dir", str(tmp_path)], capture_output=True, text=True, env=os.environ.copy(), timeout=600)
    assert res.returncode == 1
    assert "failed in cell" in res.stderr and "missing" in res.stderr and "executed notebook" in res.stderr
