"""sportbench.evaluate: COCO numbers equal pycocotools' on real boxes, the ball measures, `evaluate_folder` on the shared real data
with a checkpoint the project writes, and the FiftyOne error views."""
import json
import numpy as np
import pytest
import supervision as sv
from conftest import shared_or_skip
from sportbench.core import bundled_data
from sportbench.evaluate import (ball_metrics, coco_ground_truth, coco_results, detection_metrics, perturb_detections, run_coco_eval,
                                 summarize_precision, yolo_detections)
from sportbench.formats import read_yolo_classes

SAMPLE = bundled_data("football_players_sample")
CLASSES = read_yolo_classes(SAMPLE)


def sample_truth():
    files = sorted(SAMPLE.glob("*/labels/*.txt"))
    return [(1920, 1080)] * len(files), [yolo_detections(p, 1920, 1080) for p in files]


def pycocotools_eval(gt: dict, results: list):
    "The reference: pycocotools on the same dicts, with nothing of ours in between."
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    coco = COCO(); coco.dataset = json.loads(json.dumps(gt)); coco.createIndex()
    ev = COCOeval(coco, coco.loadRes(json.loads(json.dumps(results))), "bbox")
    ev.evaluate(); ev.accumulate(); ev.summarize()
    return ev


@pytest.mark.parametrize("seed,keep,ghosts,sigma", [(0, 0.85, 3, 0.08), (1, 0.5, 10, 0.2), (2, 1.0, 0, 0.02), (3, 0.7, 5, 0.1)])
def test_metrics_equal_pycocotools_on_real_frames(seed, keep, ghosts, sigma):
    sizes, gts = sample_truth()
    preds = perturb_detections(gts, sizes, seed=seed, keep=keep, ghosts=ghosts, sigma=sigma)
    preds[seed] = sv.Detections.empty()                          # a frame where the model finds nothing
    gt, results = coco_ground_truth(sizes, gts, CLASSES), coco_results(preds)
    ref = pycocotools_eval(gt, results)
    ours = detection_metrics(sizes, gts, preds, CLASSES, threshold=0.0)
    np.testing.assert_allclose(run_coco_eval(gt, results).stats[:12], ref.stats, rtol=0, atol=1e-12)   # equal up to float rounding
    for key, i in (("map50_95", 0), ("map50", 1), ("map75", 2), ("map_small", 3), ("map_medium", 4)):
        assert ours[key] == pytest.approx(ref.stats[i], abs=1e-12), key
    expected = summarize_precision(ref.eval["precision"], ref.params.iouThrs, CLASSES)["per_class"]
    for k, c in enumerate(CLASSES):
        for key in ("ap", "ap50", "ap75", "ap_small"):
            assert ours["per_class"][c][key] == pytest.approx(expected[c][key], abs=1e-12), (c, key)
        assert ours["per_class"][c]["recall"] == pytest.approx(ref.eval["recall"][0, k, 0, -1], abs=1e-12)   # recall at IoU 0.5
    assert ours["player_ap"] == ours["per_class"]["player"]["ap"]


def test_per_class_ap_is_pycocotools_own_per_category_ap():
    "Per-class AP equals pycocotools run on that category alone (catIds), not only our slicing of its array."
    sizes, gts = sample_truth()
    preds = perturb_detections(gts, sizes, seed=5)
    gt, results = coco_ground_truth(sizes, gts, CLASSES), coco_results(preds)
    ours = detection_metrics(sizes, gts, preds, CLASSES)
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    coco = COCO(); coco.dataset = json.loads(json.dumps(gt)); coco.createIndex()
    for k, c in enumerate(CLASSES, 1):
        ev = COCOeval(coco, coco.loadRes(json.loads(json.dumps(results))), "bbox")
        ev.params.catIds = [k]
        ev.evaluate(); ev.accumulate(); ev.summarize()
        assert ours["per_class"][c]["ap"] == pytest.approx(ev.stats[0], abs=1e-12)
        assert ours["per_class"][c]["ap50"] == pytest.approx(ev.stats[1], abs=1e-12)


def balls(xyxy, scores=None, visible=None):
    xyxy = np.array(xyxy, float).reshape(-1, 4)
    data = {} if visible is None else {"visible": np.array(visible, dtype=object)}
    return sv.Detections(xyxy=xyxy, class_id=np.zeros(len(xyxy), int), confidence=None if scores is None else np.array(scores, float), data=data)


TRUE = [100, 100, 110, 110]
@pytest.mark.parametrize("truth,pred,expected", [
    (balls([]), balls([], []), dict(ball_recall=None, ball_frame_rate=None, ball_false=0)),
    (balls([TRUE]), balls([], []), dict(ball_recall=0.0, ball_frame_rate=0.0, ball_false=0)),
    (balls([TRUE]), balls([[104, 104, 114, 114]], [0.9]), dict(ball_recall=1.0, ball_frame_rate=1.0, ball_false=0)),   # 5.7 px off: found
    (balls([TRUE]), balls([[112, 100, 122, 110]], [0.9]), dict(ball_recall=0.0, ball_frame_rate=0.0, ball_false=1)),   # 12 px off: ghost
    (balls([TRUE]), balls([[100, 100, 110, 110]], [0.2]), dict(ball_recall=0.0, ball_frame_rate=0.0, ball_false=0)),   # under threshold
    (balls([TRUE]), balls([TRUE, [500, 500, 510, 510]], [0.5, 0.9]), dict(ball_recall=1.0, ball_frame_rate=1.0, ball_false=1, ball_precision=0.5)),
    (balls([TRUE], visible=[False]), balls([TRUE], [0.9]), dict(ball_recall=None, ball_frame_rate=None, ball_false=0)),  # hidden ball: not required
])
def test_ball_metrics(truth, pred, expected):
    got = ball_metrics([truth], [pred], ball_id=0, threshold=0.3)
    assert {k: got[k] for k in expected} == expected


def test_ball_frame_rate_counts_frames_not_balls():
    truth = [balls([TRUE]), balls([TRUE]), balls([]), balls([TRUE])]
    pred = [balls([TRUE], [0.9]), balls([], []), balls([TRUE], [0.9]), balls([TRUE], [0.9])]
    got = ball_metrics(truth, pred, 0)
    assert (got["ball_frame_rate"], got["ball_frames"], got["ball_false"]) == (2 / 3, 3, 1)


@pytest.mark.shared_data
def test_evaluate_folder_with_a_project_checkpoint_on_shared_data(tmp_path, dataset_name):
    "The done-when: a checkpoint written by the project, evaluated on the shared real data; the numbers equal pycocotools'."
    import torch
    from sportbench.detect import load_rfdetr, save_rfdetr
    from sportbench.evaluate import evaluate_folder, view_detections
    import fiftyone as fo
    data = shared_or_skip("football_players_1080p_yolo")
    classes = read_yolo_classes(data)
    torch.manual_seed(0)
    ckpt = save_rfdetr(load_rfdetr("nano", "scratch", classes=classes, resolution=64, device="cpu"), tmp_path / "tiny.pth")
    out = tmp_path / "metrics.json"
    got = evaluate_folder(data, ckpt, out=out, dataset_name=dataset_name, log_mlflow=False)
    assert json.loads(out.read_text()) == json.loads(json.dumps(got))
    for key in ("map50_95", "map50", "map75", "ball_recall", "ball_frame_rate", "player_ap"): assert key in got
    assert set(got["per_class"]) == set(classes) and all({"ap50", "recall"} <= set(r) for r in got["per_class"].values())
    assert got["split"] == "test" and got["n_frames"] == len(list((data / "test" / "images").glob("*.jpg")))
    ds = fo.load_dataset(dataset_name)
    sizes, gts = view_detections(ds, "ground_truth", classes)
    _, preds = view_detections(ds, got["pred_field"], classes, attributes=())
    assert sum(len(p) for p in preds) > 0
    ref = pycocotools_eval(coco_ground_truth(sizes, gts, classes), coco_results(preds))
    assert [got[k] for k in ("map50_95", "map50", "map75")] == pytest.approx(list(ref.stats[:3]), abs=1e-12)
    from sportbench.core import file_sha256
    run = got["pred_field"].removeprefix("pred_")
    assert ds.get_run_info(run).config.weights_sha256 == got["weights_sha256"] == file_sha256(ckpt)   # provenance on the dataset


def test_evaluate_folder_refuses_unrelated_models_and_folders(tmp_path):
    from sportbench.core import BadInputError
    from sportbench.evaluate import evaluate_folder

    class Other:
        classes = ["car", "bus"]
        def predict(self, images, threshold=0.1): return [sv.Detections.empty() for _ in images]
    with pytest.raises(BadInputError, match="share none with the data"):
        evaluate_folder(SAMPLE, Other(), log_mlflow=False)
    with pytest.raises(BadInputError, match="neither a YOLO folder"):
        evaluate_folder(tmp_path, Other(), log_mlflow=False)


class TruthDetector:
    "A perfect model for the bundled sample: answers each frame with its true boxes (found by its pixels), under its own class names."
    def __init__(self, names=CLASSES):
        import hashlib
        from sportbench.detect import read_rgb
        self.classes, self._md5 = list(names), lambda im: hashlib.md5(im.tobytes()).hexdigest()
        self.truth = {self._md5(read_rgb(p)): yolo_detections(p.parent.parent / "labels" / f"{p.stem}.txt", 1920, 1080)
                      for p in SAMPLE.glob("*/images/*.jpg")}
    def predict(self, images, threshold=0.1):
        out = []
        for im in images:
            t = self.truth[self._md5(im)]
            out.append(sv.Detections(xyxy=t.xyxy, class_id=t.class_id, confidence=np.ones(len(t))))
        return out


def test_coco_folder_and_class_map(tmp_path):
    "A COCO folder evaluates like the YOLO folder it was exported from; a model's own label names are mapped with class_map."
    from sportbench.evaluate import evaluate_folder
    from sportbench.formats import export_labels, import_yolo
    from sportbench.store import get_dataset
    ds = get_dataset(f"t-coco-src-{tmp_path.name}", overwrite=True)
    import_yolo(ds, SAMPLE, splits=["test"])
    export_labels(ds, tmp_path / "coco", fmt="coco", classes=CLASSES)
    ds.delete()
    model = TruthDetector(["sports ball", "goalkeeper", "person", "referee"])
    got = evaluate_folder(tmp_path / "coco", model, class_map="sports ball:ball,person:player", log_mlflow=False)
    assert got["classes"] == CLASSES and got["n_frames"] == len(list((SAMPLE / "test" / "images").glob("*.jpg")))
    assert (got["map50"], got["map50_95"], got["ball_recall"], got["ball_false"]) == (pytest.approx(1.0), pytest.approx(1.0), 1.0, 0)
    unmapped = evaluate_folder(SAMPLE, model, log_mlflow=False)                 # only the classes both know are evaluated
    assert unmapped["classes"] == ["goalkeeper", "referee"] and "ball_recall" not in unmapped


def test_class_map_merges_the_same_classes_in_the_truth():
    "goalkeeper=player,referee=player scores every person as a player on both sides: a perfect model stays perfect."
    from sportbench.evaluate import evaluate_folder
    people = sum(line.split()[0] in ("1", "2", "3") for f in (SAMPLE / "test" / "labels").glob("*.txt") for line in f.read_text().splitlines())
    got = evaluate_folder(SAMPLE, TruthDetector(), class_map="goalkeeper=player,referee=player", log_mlflow=False)
    assert got["classes"] == ["ball", "player"]
    assert got["per_class"]["player"]["n_true"] == people and got["map50"] == pytest.approx(1.0)


def test_error_views_on_the_sample(dataset):
    "Ghost balls, missed fast / occluded balls and missed players in clusters are saved views holding exactly those boxes."
    from fiftyone import ViewField as F
    from sportbench.detect import to_fo_detections
    from sportbench.evaluate import (add_error_context, ball_outcomes, evaluate_errors, save_error_views, view_detections)
    from sportbench.formats import import_yolo
    import_yolo(dataset, SAMPLE)
    sizes, gts = view_detections(dataset, "ground_truth", CLASSES)
    preds = perturb_detections(gts, sizes, seed=3, ghosts=6)
    dataset.set_values("pred_x", [to_fo_detections(p, w, h, CLASSES) for p, (w, h) in zip(preds, sizes)])
    add_error_context(dataset)
    evaluate_errors(dataset, "pred_x", threshold=0.3)
    counts = save_error_views(dataset, "pred_x", fast_px=5.0)
    ghosts = sum((ball_outcomes(g[g.class_id == 0], p[(p.class_id == 0) & (p.confidence >= 0.3)])[2] == "ghost").sum() for g, p in zip(gts, preds))
    assert counts["ghost_balls"] == ghosts > 0
    view = dataset.load_saved_view("eval_ghost_balls")
    assert set(view.values("pred_x.detections.label", unwind=True)) == {"ball"}
    missed = dataset.load_saved_view("eval_missed_players_in_clusters")
    assert all(c >= 0.3 for c in missed.values("ground_truth.detections.crowding", unwind=True))
    assert set(missed.values("ground_truth.detections.eval", unwind=True)) == {"fn"}
    fast = dataset.load_saved_view("eval_missed_fast_balls")
    assert all(s >= 5.0 for s in fast.values("ground_truth.detections.speed", unwind=True))
    assert sum(dataset.values("eval_fn")) == dataset.count_values("ground_truth.detections.eval")["fn"]


def test_metrics_reach_mlflow(tmp_path):
    import mlflow
    from sportbench.evaluate import log_metrics, save_metrics
    sizes, gts = sample_truth()
    metrics = detection_metrics(sizes, gts, perturb_detections(gts, sizes), CLASSES)
    run_id = log_metrics(metrics, "test", {"threshold": 0.3})
    run = mlflow.get_run(run_id)
    assert run.data.metrics["map50"] == pytest.approx(metrics["map50"])
    assert run.data.metrics["ball/recall"] == pytest.approx(metrics["per_class"]["ball"]["recall"])
    assert json.loads(save_metrics(metrics, tmp_path / "m.json").read_text())["ball_false"] == metrics["ball_false"]


@pytest.mark.slow
def test_ball_specialist_checkpoint_evaluates(tmp_path):
    "A ball specialist checkpoint goes through detect's loader like any other, and is evaluated on the ball only."
    import torch
    from sportbench.ball import BallNet, BallSpecialist, save_ball_specialist
    from sportbench.evaluate import evaluate_folder
    torch.manual_seed(0)
    path = save_ball_specialist(BallSpecialist(BallNet("fcn", 32, 8, 1), BallNet("fcn", 32, 8, 3)), tmp_path / "ball.pt")
    got = evaluate_folder(SAMPLE, path, log_mlflow=False)
    assert (got["model"], got["classes"], list(got["per_class"])) == ("BallSpecialist", ["ball"], ["ball"])
    assert got["ball_visible"] == sum((yolo_detections(p, 1920, 1080).class_id == 0).sum() for p in (SAMPLE / "test" / "labels").glob("*.txt"))
    assert "player_ap" not in got
