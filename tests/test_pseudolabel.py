"""Pseudo-labelling: one prediction set per frame even after a kill, provenance, odd and bad frames, COCO export by match, the job."""
import json, os, signal, subprocess, sys, textwrap, time
import numpy as np
import pytest
import supervision as sv
import torch
from PIL import Image
from sportbench.core import BadInputError, SportbenchError, bundled_data, file_sha256
from sportbench.detect import load_detector, load_rfdetr, save_rfdetr
from sportbench.formats import import_yolo
from sportbench.pseudolabel import dataset_classes, export_pseudolabels, pseudolabel
from sportbench.slicing import SlicedDetector, detections_match

CLASSES = ["ball", "goalkeeper", "player", "referee"]
TH = 0.02  # a from-scratch RF-DETR scores near its 1% class prior


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    "A from-scratch RF-DETR nano at 128 px, box head randomised so boxes vary, saved as an rfdetr checkpoint."
    torch.manual_seed(0)
    det = load_rfdetr("nano", "scratch", classes=CLASSES, resolution=128, num_queries=64, device="cpu")
    with torch.no_grad(): det.model.model.model.bbox_embed.layers[-1].weight.normal_(0, 0.02)
    return save_rfdetr(det, tmp_path_factory.mktemp("ckpt") / "tiny_nano.pth")


@pytest.fixture(scope="module")
def detector(checkpoint):
    return load_detector(checkpoint, device="cpu")


@pytest.fixture
def frames24(dataset):
    "The 24 bundled broadcast frames (4 matches) with their ground truth."
    import_yolo(dataset, bundled_data("football_players_sample"))
    return dataset


def boxes_of(view, field) -> dict:
    "Per frame (by file name): the run's boxes as supervision Detections (relative xyxy)."
    out = {}
    for path, dets in zip(view.values("filepath"), view.values(field)):
        dets = dets.detections if dets else []
        xywh = np.array([d.bounding_box for d in dets], dtype=float).reshape(-1, 4)
        out[os.path.basename(path)] = sv.Detections(xyxy=np.c_[xywh[:, :2], xywh[:, :2] + xywh[:, 2:]],
                                                    confidence=np.array([d.confidence for d in dets], dtype=float),
                                                    class_id=np.array([CLASSES.index(d.label) for d in dets], dtype=int))
    return out


def same_boxes(a: dict, b: dict) -> bool:
    "The same frames, each with boxes that pair off one to one (IoU >= 0.99, same class, scores within 1e-4)."
    return a.keys() == b.keys() and all(detections_match(a[k], b[k]) for k in a)


KILLABLE = textwrap.dedent("""
    import sys, time, torch
    torch.set_num_threads(1)
    from sportbench.detect import load_detector
    from sportbench.pseudolabel import pseudolabel
    from sportbench.store import connect
    class Slow:
        "The real detector, made slow enough to be killed half-way."
        def __init__(self, inner): self.inner, self.classes = inner, inner.classes
        def describe(self): return self.inner.describe()
        def predict(self, images, threshold=0.1):
            time.sleep(0.5)
            return self.inner.predict(images, threshold)
    ds = connect().load_dataset(sys.argv[1])
    pseudolabel(ds, Slow(load_detector(sys.argv[2], device="cpu")), "tiny", threshold=float(sys.argv[3]), batch_size=2, progress=False)
    print("finished")
""")


def test_killed_half_way_then_rerun_leaves_exactly_one_prediction_set_per_frame(frames24, checkpoint, detector, tmp_path):
    ds = frames24
    script = tmp_path / "run.py"
    script.write_text(KILLABLE)
    child = subprocess.Popen([sys.executable, str(script), ds.name, str(checkpoint), str(TH)], env={**os.environ, "OMP_NUM_THREADS": "1"},
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline, done = time.monotonic() + 300, 0
    while time.monotonic() < deadline and child.poll() is None:
        done = len(ds.exists("pred_tiny"))
        if done >= 6: break
        time.sleep(0.05)
    assert child.poll() is None, f"the run ended before it could be killed: {child.communicate()}"
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    ds.reload()
    killed_at = len(ds.exists("pred_tiny"))
    assert 6 <= killed_at < 24
    assert ds.get_run_info("tiny").config.status == "running"

    summary = pseudolabel(ds, detector, "tiny", threshold=TH, batch_size=5, progress=False)
    assert summary["written"] == 24 - killed_at and summary["pending"] == 0 and summary["status"] == "complete"
    assert len(ds.exists("pred_tiny")) == 24 and len(ds) == 24  # no frame missing, no frame added twice

    pseudolabel(ds, detector, "straight", threshold=TH, batch_size=24, progress=False)
    resumed, straight = boxes_of(ds, "pred_tiny"), boxes_of(ds, "pred_straight")
    assert len(resumed) == 24 and sum(len(b) for b in resumed.values()) == ds.count("pred_tiny.detections") > 24
    assert same_boxes(resumed, straight)  # each frame holds exactly the one set an uninterrupted run gives: nothing doubled, nothing lost
    assert ds.get_run_info("tiny").config.labelled == 24
    assert pseudolabel(ds, detector, "tiny", threshold=TH, progress=False)["written"] == 0


def test_provenance_names_model_weights_thresholds_slicing_and_time(frames24, checkpoint, detector):
    ds = frames24
    view = ds.limit(3)
    pseudolabel(view, SlicedDetector(detector, tile=640, overlap=0.25, min_grass=0.05), "sliced", threshold=0.05, progress=False)
    info = ds.get_run_info("sliced")
    c = info.config
    assert (c.model, c.resolution, c.weights, c.weights_sha256) == ("RFDETRNano", 128, str(checkpoint), file_sha256(checkpoint))
    assert (c.threshold, c.classes, c.field, c.status) == (0.05, CLASSES, "pred_sliced", "complete")
    assert c.slicing == {"tile": 640, "overlap": 0.25, "full_frame": True, "postprocess": "GREEDYNMM", "match_metric": "IOS",
                         "match_threshold": 0.5, "class_agnostic": False, "min_grass": 0.05}
    assert c.started <= c.finished and info.timestamp is not None
    pseudolabel(ds.limit(1), detector, "plain", threshold=TH, progress=False)
    assert ds.get_run_info("plain").config.slicing is None


def test_a_run_resumed_with_other_settings_is_refused_unless_overwritten(frames24, detector):
    ds = frames24
    pseudolabel(ds.limit(2), detector, "once", threshold=TH, progress=False)
    with pytest.raises(SportbenchError, match="other settings"): pseudolabel(ds.limit(4), detector, "once", threshold=0.03, progress=False)
    assert len(ds.exists("pred_once")) == 2
    summary = pseudolabel(ds.limit(4), detector, "once", threshold=0.03, overwrite=True, progress=False)
    assert summary["written"] == 4 and ds.get_run_info("once").config.threshold == 0.03
    assert len(ds.exists("pred_once")) == 4 and min(ds.values("pred_once.detections.confidence", unwind=True)) > 0.03


def test_gray_rgba_16bit_frames_are_labelled_and_unreadable_ones_skipped_or_raised(dataset, detector, tmp_path):
    import fiftyone as fo
    rgb = np.asarray(Image.open(sorted(bundled_data("football_players_sample").glob("*/images/*.jpg"))[0]))
    g = rgb[..., 1]
    files = {"gray.png": Image.fromarray(g), "gray_rgb.png": Image.fromarray(np.dstack([g] * 3)),
             "rgba.png": Image.fromarray(np.dstack([rgb, np.full(g.shape, 255, np.uint8)])), "rgb.png": Image.fromarray(rgb),
             "deep.png": Image.fromarray(g.astype(np.uint16) * 257)}
    for name, img in files.items(): img.save(tmp_path / name)
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff truncated")
    dataset.add_samples([fo.Sample(filepath=str(tmp_path / n)) for n in [*files, "broken.jpg"]], progress=False)
    with pytest.raises(BadInputError, match="broken.jpg: not a readable image"):
        pseudolabel(dataset, detector, "odd", threshold=TH, batch_size=10, progress=False)
    summary = pseudolabel(dataset, detector, "odd", threshold=TH, on_error="skip", progress=False)
    assert (summary["written"], summary["pending"], summary["status"]) == (5, 1, "incomplete") and "broken.jpg" in summary["skipped"][0]
    got = boxes_of(dataset.exists("pred_odd"), "pred_odd")
    assert len(got["rgb.png"]) > 0 and detections_match(got["rgba.png"], got["rgb.png"])
    assert detections_match(got["gray.png"], got["gray_rgb.png"]) and detections_match(got["deep.png"], got["gray_rgb.png"])


def test_empty_view_and_bad_run_names(frames24, detector):
    assert pseudolabel(frames24.limit(0), detector, "nothing", threshold=TH, progress=False)["written"] == 0
    with pytest.raises(ValueError, match="valid identifier"): pseudolabel(frames24, detector, "rf-detr nano", progress=False)


def test_a_model_with_other_classes_than_the_dataset_is_refused_before_anything_is_written(frames24, tmp_path):
    torch.manual_seed(0)
    three = load_rfdetr("nano", "scratch", classes=["ball", "player", "referee"], resolution=64, num_queries=16, device="cpu")
    with pytest.raises(BadInputError, match="model has 3 classes"):
        pseudolabel(frames24, three, "three", classes=dataset_classes(frames24), progress=False)
    assert "three" not in frames24.list_runs() and not frames24.has_field("pred_three")
    ckpt = save_rfdetr(three, tmp_path / "three.pth")
    with pytest.raises(BadInputError, match="three.pth.*model has 3 classes"): load_detector(ckpt, classes=dataset_classes(frames24))


def test_coco_export_is_split_by_match_with_scores_and_provenance(frames24, detector, tmp_path):
    ds = frames24
    pseudolabel(ds, detector, "export_me", threshold=0.03, batch_size=12, progress=False)
    out = export_pseudolabels(ds, "export_me", tmp_path / "coco")
    assert set(out) == {"train", "val", "test"}
    cocos = {s: json.loads((p / "labels.json").read_text()) for s, p in out.items()}
    match_of = dict(zip((os.path.basename(p) for p in ds.values("filepath")), ds.values("match_id")))
    matches = {s: {match_of[im["file_name"]] for im in c["images"]} for s, c in cocos.items()}
    assert sum(len(m) for m in matches.values()) == len(set().union(*matches.values())) == 4  # every match in exactly one split
    assert sum(len(c["images"]) for c in cocos.values()) == 24
    assert sum(len(c["annotations"]) for c in cocos.values()) == ds.count("pred_export_me.detections")
    assert all(a["score"] > 0.03 for c in cocos.values() for a in c["annotations"])
    assert [c["name"] for c in cocos["train"]["categories"]] == CLASSES
    prov = json.loads((tmp_path / "coco" / "provenance.json").read_text())
    assert prov["run"] == "export_me" and prov["threshold"] == 0.03 and prov["weights_sha256"]


def test_the_pseudolabel_job_runs_end_to_end(frames24, checkpoint, tmp_path, monkeypatch):
    from sportbench.runs import run_job
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # for the job's kernel, as above
    out = run_job("pseudolabel", {"dataset": frames24.name, "weights": str(checkpoint), "limit": 4, "threshold": TH, "run": "job",
                                  "tile": 960, "export_dir": str(tmp_path / "export")}, runs_dir=tmp_path / "runs", progress=False)
    frames24.reload()
    assert len(frames24.exists("pred_job")) == 4 and frames24.get_run_info("job").config.slicing["tile"] == 960
    assert (tmp_path / "export" / "provenance.json").exists()
    assert "'written': 4" in out.read_text()
