"""Sweeps: the Cartesian product runs through papermill, finished combinations are skipped when re-run, failures are
retried, bad grid keys fail first, and the summary comes from MLflow."""
import json
import nbformat
import pytest
from sportbench.core import SportbenchError
from sportbench.runs import grid_combinations, sweep, sweep_id


def _job(path, body):
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("a: int = 1  # first\nb: int = 1  # second", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(body)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return str(path)


SCORE = ("import mlflow\nfrom sportbench.runs import mlflow_experiment, mlflow_tags\n"
         "if a == 3 and b == 0: raise ValueError('boom')\n"
         "with mlflow.start_run(experiment_id=mlflow_experiment('test-sweep'), tags=mlflow_tags()): mlflow.log_metric('score', a * 10 + b)")


def test_grid_is_the_cartesian_product():
    assert grid_combinations({}) == [{}]
    assert grid_combinations({"a": [1, 2], "b": ["x", "y"]}) == [{"a": 1, "b": "x"}, {"a": 1, "b": "y"}, {"a": 2, "b": "x"}, {"a": 2, "b": "y"}]
    assert sweep_id("j", {"a": [1]}) != sweep_id("j", {"a": [2]})


def test_unknown_grid_key_fails_before_running(tmp_path):
    job = _job(tmp_path / "j.ipynb", "print(a)")
    with pytest.raises(SportbenchError, match="has no parameter 'c'"):
        sweep(job, {"c": [1, 2]}, runs_dir=tmp_path / "runs")
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_sweep_runs_skips_finished_and_summarises(tmp_path):
    job = _job(tmp_path / "score.ipynb", SCORE)
    runs = tmp_path / "runs"
    table = sweep(job, {"a": [1, 3], "b": [0, 2]}, runs_dir=runs, progress=False)
    assert table[["a", "b", "status"]].values.tolist() == [[1, 0, "finished"], [1, 2, "finished"], [3, 0, "failed"], [3, 2, "finished"]]
    assert table["score"].tolist()[:2] == [10.0, 12.0] and table["score"].tolist()[3] == 32.0
    ledger = json.loads(next((runs / "sweeps").glob("score-*.json")).read_text())
    assert len(ledger["done"]) == 3
    executed = sorted(p.name for p in runs.glob("*-score"))
    again = sweep(job, {"a": [1, 3], "b": [0, 2]}, runs_dir=runs, progress=False)
    assert len(list(runs.glob("*-score"))) == len(executed) + 1  # only the failed combination ran again
    assert again["status"].tolist() == ["finished", "finished", "failed", "finished"]
