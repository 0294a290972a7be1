"""Training: the COCO export keeps class ids, sampling follows the ball weight and resumes mid-epoch, and a real tiny
RF-DETR training (slow) leaves MLflow metrics and a best checkpoint, freezes the encoder in phase 1 only, and resumes after a kill."""
import json, os, signal, subprocess, sys, time
from pathlib import Path
import numpy as np
import pytest
from sportbench.config import load_config, parse_config
from sportbench.core import BadInputError, bundled_data
from sportbench.train import (WeightedEpochSampler, data_digest, export_for_training, image_weights, resumable_loader,
                              rfdetr_train_config)

CLASSES = ["ball", "goalkeeper", "player", "referee"]
TINY = bundled_data().parent / "configs" / "tiny_cpu.yaml"


@pytest.fixture
def sample_ds(dataset):
    from sportbench.formats import assign_splits, import_yolo
    import_yolo(dataset, bundled_data("football_players_sample"))
    assign_splits(dataset, seed=0)
    return dataset


def _coco(root, folder="train"):
    return json.loads((Path(root) / folder / "_annotations.coco.json").read_text())


def test_export_layout_and_stable_class_ids(sample_ds, tmp_path):
    from fiftyone import ViewField as F
    a = export_for_training(sample_ds, tmp_path / "a", CLASSES, max_images={"train": 5})
    only_players = sample_ds.filter_labels("ground_truth", F("label") == "player")
    b = export_for_training(only_players, tmp_path / "b", ["ball", "goalkeeper", "player", "referee"])
    for root in (a, b):
        for folder in ("train", "valid", "test"):
            assert [c["name"] for c in _coco(root, folder)["categories"]] == CLASSES
    assert len(_coco(a)["images"]) == 5
    assert {x["category_id"] for x in _coco(b)["annotations"]} == {2}  # player is id 2 in both exports
    assert all((a / "train" / im["file_name"]).exists() for im in _coco(a)["images"])
    assert data_digest(a) != data_digest(b)
    c = export_for_training(sample_ds, tmp_path / "c", CLASSES, max_images={"test": 0})
    assert _coco(c, "test")["images"] == [] and _coco(c, "test")["annotations"] == []  # an empty split is still valid COCO


def test_export_without_val_frames_fails(sample_ds, tmp_path):
    sample_ds.untag_samples("val")
    with pytest.raises(BadInputError, match="no samples tagged 'val'"):
        export_for_training(sample_ds, tmp_path / "x", CLASSES)


def test_image_weights_follow_classes():
    coco = {"categories": [{"id": i, "name": c} for i, c in enumerate(CLASSES)],
            "images": [{"id": 1}, {"id": 2}, {"id": 3}],
            "annotations": [{"image_id": 1, "category_id": 0}, {"image_id": 1, "category_id": 2}, {"image_id": 2, "category_id": 2}]}
    assert image_weights(coco, {"ball": 3.0}).tolist() == [3.0, 1.0, 1.0]
    assert image_weights(coco, {"ball": 3.0, "player": 5.0}, default=0.5).tolist() == [5.0, 5.0, 0.5]


def test_ball_frames_are_drawn_by_weight():
    weights = np.array([3.0, 1.0, 1.0, 1.0])
    drawn = np.array(list(WeightedEpochSampler(weights, 6000, seed=1)))
    assert abs((drawn == 0).mean() - 0.5) < 0.03  # 3 / (3 + 1 + 1 + 1)


def test_loader_resumes_mid_epoch():
    w = np.ones(10)
    full = resumable_loader(list(range(10)), WeightedEpochSampler(w, 10, seed=3), batch_size=2)
    full.sampler.set_epoch(4)
    batches = [b.tolist() for b in full]
    full.progress = lambda: (4, 3)
    resumed = resumable_loader(list(range(10)), WeightedEpochSampler(w, 10, seed=3), batch_size=2)
    resumed.load_state_dict(full.state_dict())
    assert [b.tolist() for b in resumed] == batches[3:]
    assert len([b for b in resumed]) == 5  # the next pass over the epoch is whole again


def test_phase_two_runs_at_a_tenth_of_the_rate(tmp_path):
    cfg = load_config(TINY)
    tcs = [rfdetr_train_config(cfg, p, tmp_path, tmp_path / "out") for p in cfg.phases]
    assert tcs[1].lr == pytest.approx(tcs[0].lr / 10) and tcs[1].lr_encoder == pytest.approx(tcs[0].lr_encoder / 10)
    assert all(t.lr_scheduler == "cosine" and t.warmup_epochs == cfg.training.warmup_epochs for t in tcs)


@pytest.mark.slow
def test_focal_alpha_reaches_the_loss(tmp_path):
    from sportbench.train import build_module
    cfg = parse_config({**_tiny_dict(), "model": {**_tiny_dict()["model"], "focal_alpha": 0.4}})
    module = build_module(cfg, cfg.phases[0], tmp_path, tmp_path / "p")
    assert module.criterion.focal_alpha == 0.4 and module.criterion.matcher.focal_alpha == 0.4
    assert not any(p.requires_grad for n, p in module.model.named_parameters() if n.startswith("backbone.0.encoder"))


def _tiny_dict():
    import yaml
    return yaml.safe_load(TINY.read_text())


@pytest.mark.slow
def test_train_job_leaves_mlflow_run_and_best_checkpoint(tmp_path, dataset_name):
    "What `sportbench run train -p config configs/tiny_cpu.yaml` does, on a fresh dataset filled from the bundled sample."
    import mlflow
    from sportbench.runs import mlflow_uri, run_job
    out = run_job("train", {"config": "configs/tiny_cpu.yaml", "dataset": dataset_name}, runs_dir=tmp_path / "runs", progress=False)
    text = out.read_text()
    assert "best weights:" in text and "MLflow run:" in text
    run_id = text.split("MLflow run:")[1].split("\\n")[0].strip()
    mlflow.set_tracking_uri(mlflow_uri())
    client = mlflow.tracking.MlflowClient()
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.params["model.size"] == "nano"
    assert sorted(m.step for m in client.get_metric_history(run_id, "train/loss")) == [0, 1]
    assert sorted(m.step for m in client.get_metric_history(run_id, "val/mAP_50_95")) == [0, 1]
    assert {a.path for a in client.list_artifacts(run_id)} >= {"best.pth", "config.yaml", "metrics.png", "augment_grid.png"}
    result = json.loads((Path(run.data.tags["sportbench.run_dir"]) / "result.json").read_text())
    best = Path(result["best_weights"])
    assert best.exists() and result["phases"][1]["start_weights"] == result["phases"][0]["best_weights"]
    from rfdetr import RFDETRNano
    model = RFDETRNano(pretrain_weights=str(best), num_classes=4, resolution=128, num_queries=50, num_select=50, group_detr=2, device="cpu")
    assert model.class_names == CLASSES
    # running the job again finds the finished run instead of training another
    again = run_job("train", {"config": "configs/tiny_cpu.yaml", "dataset": dataset_name}, runs_dir=tmp_path / "runs", progress=False)
    assert run_id in again.read_text()


@pytest.mark.slow
def test_encoder_frozen_in_phase_one_only_and_ball_picks_best(tmp_path, sample_ds):
    import torch
    from sportbench.train import train_model
    d = _tiny_dict()
    d["phases"][0]["epochs"] = 2
    d["checkpoints"] |= {"keep_last": 3, "best_metric": "ball", "resume_every_steps": 0}
    d["data"]["max_images"] = {"train": 4, "val": 4, "test": 2}
    result = train_model(parse_config(d), view=sample_ds, root=tmp_path)
    run = Path(result["run_dir"])
    e0, e1 = (torch.load(run / "phase1-frozen" / f"epoch_{i:03d}.pth", weights_only=True)["model"] for i in (0, 1))
    e2 = torch.load(run / "phase2-unfrozen" / "epoch_002.pth", weights_only=True)["model"]
    enc = [k for k in e0 if k.startswith("backbone.0.encoder") and "mask_token" not in k]
    dec = [k for k in e0 if k.startswith("transformer.decoder")]
    assert all(torch.equal(e0[k], e1[k]) for k in enc)          # frozen in phase 1
    assert any(not torch.equal(e0[k], e1[k]) for k in dec)      # while the decoder learns
    assert sum(not torch.equal(e1[k], e2[k]) for k in enc) > len(enc) // 2  # trained in phase 2
    assert result["best_metric"] == "val/AP/ball"
    import mlflow
    assert len(mlflow.tracking.MlflowClient().get_metric_history(result["mlflow_run_id"], "val/AP/ball")) == 3


@pytest.mark.slow
def test_killed_training_resumes_where_it_stopped(tmp_path, sample_ds, monkeypatch):
    import torch
    import sportbench.train as tr
    d = _tiny_dict()
    d["checkpoints"]["resume_every_steps"] = 1
    cfg = parse_config(d)
    code = (f"from sportbench.train import train_model; from sportbench.config import parse_config; from sportbench.store import get_dataset;"
            f"train_model(parse_config({d!r}), view=get_dataset({sample_ds.name!r}), root={str(tmp_path)!r})")
    proc = subprocess.Popen([sys.executable, "-c", code], env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    try:
        while not list(tmp_path.glob("*/phase1-frozen/last.ckpt")):
            assert proc.poll() is None and time.time() < deadline, "training ended before its first resume point"
            time.sleep(0.2)
        proc.send_signal(signal.SIGKILL)  # killed mid-epoch, as by the OOM killer or a pulled plug
    finally:
        proc.wait()
    ckpt = next(tmp_path.glob("*/phase1-frozen/last.ckpt"))
    done_steps = torch.load(ckpt, weights_only=False, map_location="cpu")["global_step"]
    assert 1 <= done_steps < 4, done_steps
    fetched = []
    original = tr.AugmentedDataset.__getitem__
    monkeypatch.setattr(tr.AugmentedDataset, "__getitem__", lambda self, i: fetched.append(i) or original(self, i))
    result = tr.train_model(cfg, view=sample_ds, root=tmp_path)
    assert len(fetched) == (4 - done_steps) * 2 + 4 * 2  # the rest of phase 1's epoch, then phase 2's
    import mlflow
    hist = mlflow.tracking.MlflowClient().get_metric_history(result["mlflow_run_id"], "train/loss")
    assert sorted(m.step for m in hist) == [0, 1]  # one MLflow run across the kill
    assert Path(result["best_weights"]).exists()
