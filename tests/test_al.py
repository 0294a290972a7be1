"""The label-efficiency experiment: a simulated annotator that reveals only what is picked, equal budgets, a model that learns."""
import numpy as np
import pytest


@pytest.fixture
def exp(dataset_name):
    "The bundled real sample (4 matches) prepared for an experiment: one match held out, the others' truth hidden."
    from sportbench.al import prepare_experiment
    from sportbench.core import bundled_data
    return prepare_experiment(dataset_name, bundled_data("football_players_sample"), test_fraction=0.25, seed=0)


def test_the_truth_is_hidden_except_on_held_out_matches_and_revealed_only_when_picked(exp):
    from sportbench.al import SIMULATED_TAG, TEST_TAG, reveal_truth
    test, pool = exp.match_tags(TEST_TAG), exp.match_tags(TEST_TAG, bool=False)
    assert len(test) and len(pool) and set(test.distinct("match_id")).isdisjoint(pool.distinct("match_id"))
    assert pool.count("ground_truth") == 0 and test.count("ground_truth") == len(test)
    assert pool.count("truth.detections") > 0 and exp.distinct("ground_truth.detections.label") == ["ball", "player"]
    picked = pool.take(3, seed=0)
    assert reveal_truth(picked) == 3
    for s in exp.select(picked.values("id")):
        assert s.ground_truth == s.truth and s.annotation_source == "simulated" and {"annotated", SIMULATED_TAG} <= set(s.tags)
    assert pool.count("ground_truth") == 3


def test_targets_decode_back_to_their_boxes():
    import torch
    from sportbench.al import centre_targets, decode_centres
    boxes = np.array([[10.0, 20, 18, 60], [100, 40, 106, 46], [60, 80, 90, 150]])
    heat, reg, mask = centre_targets(boxes, np.array([1, 0, 1]), (192, 192), 2)
    logits = torch.logit(torch.from_numpy(heat)[None].clamp(1e-6, 1 - 1e-6))
    xyxy, cls, score = decode_centres(logits, torch.from_numpy(reg)[None], threshold=0.9)[0]
    order = np.argsort(xyxy[:, 0])
    np.testing.assert_allclose(xyxy[order], boxes[np.argsort(boxes[:, 0])], atol=1e-3)
    assert sorted(cls.tolist()) == [0, 1, 1]


def test_every_strategy_gets_the_same_budget_and_the_same_start(exp):
    import mlflow
    from sportbench.al import ALConfig, TEST_TAG, run_experiment
    cfg = ALConfig(strategies=["random", "hybrid"], initial=4, budget=3, rounds=2, learner_params=dict(steps=2, batch=2, crop=96))
    table = run_experiment(exp, cfg)
    for strategy, part in table.groupby("strategy"):
        assert part["labelled"].tolist() == [4, 7, 10], strategy
    first = table[table["round"] == 0]
    assert first["player_ap50"].nunique() == 1 and first["train_s"].nunique() == 1  # one shared initial model
    assert exp.match_tags("annotated").count() == 0 and exp.match_tags(TEST_TAG, bool=False).count("ground_truth") == 0  # copies did the work
    runs = mlflow.search_runs(experiment_names=["sportbench-al"], filter_string=f"params.dataset = '{exp.name}'")
    assert len(runs) == 2
    history = mlflow.MlflowClient().get_metric_history(runs.iloc[0]["run_id"], "player_ap50")
    assert [m.step for m in history] == [4, 7, 10]


def test_an_experiment_needs_hidden_truth(dataset):
    from sportbench.al import ALConfig, run_experiment
    from sportbench.core import BadInputError, bundled_data
    from sportbench.formats import import_yolo
    import_yolo(dataset, bundled_data("football_players_sample"))
    with pytest.raises(BadInputError, match="run hide_truth first"):
        run_experiment(dataset, ALConfig(mlflow=False))
    with pytest.raises(ValueError, match="unknown strategies"):
        run_experiment(dataset, ALConfig(strategies=["coreset"], mlflow=False))


@pytest.mark.slow
def test_the_heatmap_learner_learns_players_on_real_frames(dataset):
    "Trained on the real frames of three matches for 80 steps, it finds players in the fourth far better than before training."
    from fiftyone import ViewField as F
    from sportbench.al import HeatmapLearner, evaluate_detector
    from sportbench.core import bundled_data
    from sportbench.formats import import_yolo
    import_yolo(dataset, bundled_data("football_players_sample"), class_map="goalkeeper=player,referee=player")
    held_out = sorted(dataset.distinct("match_id"))[0]
    train, test = dataset.match(F("match_id") != held_out), dataset.match(F("match_id") == held_out)
    assert len(test) and len(train) > len(test)
    untrained = evaluate_detector(test, HeatmapLearner(steps=1, lr=1e-9)(train, ["ball", "player"]), ["ball", "player"])
    trained = evaluate_detector(test, HeatmapLearner(steps=80)(train, ["ball", "player"]), ["ball", "player"])
    assert trained["player_ap50"] > max(0.2, 3 * untrained["player_ap50"]), (untrained, trained)


@pytest.mark.slow
def test_the_job_writes_the_table_and_curves(tmp_path):
    import pandas as pd
    from sportbench.core import bundled_data
    from sportbench.runs import run_job
    out = run_job("al_experiment", {"data": str(bundled_data("football_players_sample")), "dataset": "t-al-job", "strategies": ["random", "entropy"],
                                    "initial": 4, "budget": 2, "rounds": 1, "steps": 2, "out": str(tmp_path / "out")}, runs_dir=tmp_path / "runs", progress=False)
    table = pd.read_csv(tmp_path / "out" / "al_table.csv")
    assert table["labelled"].tolist() == [4, 6, 4, 6] and (tmp_path / "out" / "al_curves.png").stat().st_size > 10_000
    assert "player_ap50 by labelled frames" in out.read_text()
    import fiftyone as fo
    fo.delete_dataset("t-al-job")
