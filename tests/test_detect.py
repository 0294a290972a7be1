"""RF-DETR behind the Detector protocol: batched prediction, frames of every kind, checkpoints, weights offline."""
import socket, time
import numpy as np
import pytest
import torch
from PIL import Image
from sportbench.core import BadInputError, SportbenchError, bundled_data
from sportbench import detect
from sportbench.detect import (Detector, check_classes, load_detector, load_rfdetr, read_rgb, register_detector, save_rfdetr,
                               to_fo_detections, to_rgb)

CLASSES = ["ball", "goalkeeper", "player", "referee"]
TH = 0.02  # a from-scratch RF-DETR scores near its 1% class prior


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_detector(batch_size=4):
    "A from-scratch RF-DETR nano at 128 px (64 queries: one per backbone token), its box head randomised so boxes vary."
    torch.manual_seed(0)
    det = load_rfdetr("nano", "scratch", classes=CLASSES, resolution=128, num_queries=64, device="cpu", batch_size=batch_size)
    with torch.no_grad(): det.model.model.model.bbox_embed.layers[-1].weight.normal_(0, 0.02)
    return det


@pytest.fixture(scope="module")
def detector():
    return tiny_detector()


@pytest.fixture(scope="module")
def frames():
    return [read_rgb(p) for p in sorted(bundled_data("football_players_sample").glob("*/images/*.jpg"))[:5]]


@pytest.fixture(scope="module")
def checkpoint(detector, tmp_path_factory):
    return save_rfdetr(detector, tmp_path_factory.mktemp("ckpt") / "tiny_nano.pth")


def assert_same(a, b, tol=1e-4):
    assert len(a) == len(b) and len(a) > 0
    assert (a.class_id == b.class_id).all()
    assert np.abs(a.confidence - b.confidence).max() < tol and np.abs(a.xyxy - b.xyxy).max() < 0.05


def test_is_a_detector_with_the_checkpoint_classes(detector):
    assert isinstance(detector, Detector)
    assert detector.classes == CLASSES and not detector.half and detector.device == "cpu"
    assert detector.describe()["model"] == "RFDETRNano" and detector.describe()["resolution"] == 128


def test_batched_predict_equals_frame_by_frame(detector, frames):
    batched = detector.predict(frames, threshold=TH)  # 5 frames in batches of 4 and 1
    assert len(batched) == len(frames)
    for frame, dets in zip(frames, batched): assert_same(detector.predict([frame], threshold=TH)[0], dets)


def test_boxes_are_pixels_inside_the_frame_with_names_and_scores_above_threshold(detector, frames):
    for frame, dets in zip(frames, detector.predict(frames, threshold=TH)):
        h, w = frame.shape[:2]
        assert (dets.xyxy >= 0).all() and (dets.xyxy[:, [0, 2]] <= w).all() and (dets.xyxy[:, [1, 3]] <= h).all()
        assert (dets.confidence > TH).all()
        assert list(dets.data["class_name"]) == [CLASSES[c] for c in dets.class_id]
        assert dets.class_id.max() < len(CLASSES)  # rfdetr's "no object" slot is dropped
    few = detector.predict(frames[:1], threshold=0.03)[0]
    assert 0 < len(few) < len(detector.predict(frames[:1], threshold=TH)[0])


@pytest.mark.parametrize("variant", ["gray", "gray_hw1", "rgba", "uint16", "float01"])
def test_gray_rgba_16bit_and_float_frames_predict_like_their_rgb(detector, frames, variant):
    f = frames[0]
    g = f[..., 1]
    frame, rgb = {"gray": (g, np.dstack([g] * 3)), "gray_hw1": (g[..., None], np.dstack([g] * 3)),
                  "rgba": (np.dstack([f, np.full(g.shape, 200, np.uint8)]), f), "uint16": (f.astype(np.uint16) * 257, f),
                  "float01": (f / 255.0, f)}[variant]
    assert_same(detector.predict([frame], TH)[0], detector.predict([rgb], TH)[0])


@pytest.mark.parametrize("bad, problem", [(np.zeros((8, 8, 2), np.uint8), "shape (8, 8, 2)"), (np.zeros((0, 8, 3), np.uint8), "shape (0, 8, 3)"),
                                          (np.zeros((8, 8, 3), np.int8), "int8"), (np.full((8, 8, 3), 3.0), "float64")])
def test_frames_that_are_not_images_are_refused_saying_why(detector, bad, problem):
    with pytest.raises(BadInputError, match="image 0") as err: detector.predict([bad])
    assert problem in str(err.value)


@pytest.mark.parametrize("mode", ["L", "RGBA", "I;16", "P", "LA"])
def test_image_files_of_every_mode_read_as_rgb_uint8(tmp_path, mode):
    rgb = np.random.default_rng(1).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    img = {"L": Image.fromarray(rgb[..., 0]), "RGBA": Image.fromarray(np.dstack([rgb, rgb[..., :1]])),
           "I;16": Image.fromarray(rgb[..., 0].astype(np.uint16) * 257), "P": Image.fromarray(rgb).convert("P"),
           "LA": Image.fromarray(np.dstack([rgb[..., 0], rgb[..., 1]]), "LA")}[mode]
    img.save(tmp_path / "x.png")
    got = read_rgb(tmp_path / "x.png")
    assert got.dtype == np.uint8 and got.shape == (30, 40, 3)
    if mode in ("L", "I;16", "LA"): assert (got == rgb[..., :1]).all()
    if mode == "RGBA": assert (got == rgb).all()


def test_unreadable_image_file_names_the_file(tmp_path):
    (tmp_path / "cut.jpg").write_bytes((bundled_data("football_players_sample") / "data.yaml").read_bytes())
    with pytest.raises(BadInputError, match="cut.jpg: not a readable image"): read_rgb(tmp_path / "cut.jpg")


def test_fiftyone_boxes_are_relative_xywh_with_labels_and_scores(detector, frames):
    dets = detector.predict(frames[:1], TH)[0]
    h, w = frames[0].shape[:2]
    fo_dets = to_fo_detections(dets, w, h, CLASSES).detections
    assert [d.label for d in fo_dets] == list(dets.data["class_name"])
    back = np.array([d.bounding_box for d in fo_dets]) * [w, h, w, h]
    assert np.allclose(back[:, :2], dets.xyxy[:, :2], atol=1e-3) and np.allclose(back[:, :2] + back[:, 2:], dets.xyxy[:, 2:], atol=1e-3)
    assert np.allclose([d.confidence for d in fo_dets], dets.confidence)
    assert [len(d.detections) for d in detector.predict_fo(frames[:2], TH)] == [len(d) for d in detector.predict(frames[:2], TH)]


def test_checkpoint_round_trip_keeps_classes_resolution_and_predictions(detector, frames, checkpoint):
    again = load_detector(checkpoint, classes=list(reversed(CLASSES)), device="cpu")
    assert again.classes == CLASSES and again.weights == str(checkpoint)
    assert again.model.model.resolution == 128
    assert_same(again.predict(frames[:1], TH)[0], detector.predict(frames[:1], TH)[0])


def test_checkpoint_with_other_classes_than_the_dataset_is_refused(checkpoint):
    with pytest.raises(BadInputError, match="model has 4 classes") as err: load_detector(checkpoint, classes=CLASSES[:3], device="cpu")
    assert str(checkpoint) in str(err.value)
    with pytest.raises(BadInputError, match="model has 4 classes"): check_classes(CLASSES, ["ball", "player", "referee", "linesman"])


def test_corrupt_truncated_and_foreign_checkpoints_are_refused_naming_the_file(checkpoint, tmp_path):
    (tmp_path / "noise.pth").write_bytes(np.random.default_rng(0).bytes(4096))
    (tmp_path / "half.pth").write_bytes(checkpoint.read_bytes()[: checkpoint.stat().st_size // 2])
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pth")
    for name, problem in [("noise.pth", "not a readable checkpoint"), ("half.pth", "not a readable checkpoint"),
                          ("other.pth", "no registered detector reads"), ("missing.pth", "no such checkpoint")]:
        with pytest.raises(BadInputError, match=problem) as err: load_detector(tmp_path / name)
        assert name in str(err.value)


def test_registered_model_kinds_are_loaded_from_their_checkpoints(monkeypatch, tmp_path):
    class Toy:
        classes = ["ball"]
        def __init__(self, path): self.path = path
        def predict(self, images, threshold=0.1): return []
    monkeypatch.setattr(detect, "_KINDS", [])
    register_detector(lambda ckpt: ckpt.get("kind") == "toy", lambda path, **kw: Toy(path))
    torch.save({"kind": "toy", "args": {}, "model": {}}, tmp_path / "toy.pth")
    got = load_detector(tmp_path / "toy.pth")
    assert isinstance(got, Toy) and got.path == tmp_path / "toy.pth"


def test_scratch_needs_classes_and_a_resolution_the_backbone_can_tile():
    with pytest.raises(ValueError, match="needs the class names"): load_rfdetr("nano", "scratch")
    with pytest.raises(ValueError, match="not a multiple of 32"): load_rfdetr("nano", "scratch", classes=CLASSES, resolution=100)
    with pytest.raises(ValueError, match="size must be one of"): load_rfdetr("huge", "scratch", classes=CLASSES)


def test_offline_without_cached_weights_fails_at_once_saying_how_to_supply_them(monkeypatch, tmp_path):
    monkeypatch.setenv("RF_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("SPORTBENCH_OFFLINE", raising=False)
    def no_network(*a, **k): raise OSError("network is unreachable")
    monkeypatch.setattr(socket, "create_connection", no_network)
    start = time.monotonic()
    for size in ("nano", "base"):
        with pytest.raises(SportbenchError) as err: load_detector(None, size=size)
        assert str(tmp_path / "cache") in str(err.value) and "weights='scratch'" in str(err.value) and "weights=<path" in str(err.value)
    assert time.monotonic() - start < 10


def test_cached_weights_load_without_network(monkeypatch, tmp_path, checkpoint):
    monkeypatch.setenv("RF_HOME", str(tmp_path))
    monkeypatch.setenv("SPORTBENCH_OFFLINE", "1")
    (tmp_path / "rf-detr-nano.pth").write_bytes(checkpoint.read_bytes())
    import requests
    def no_download(*a, **k): raise AssertionError("tried to download")
    monkeypatch.setattr(requests, "get", no_download)
    cached = load_rfdetr("nano", device="cpu", resolution=128, num_queries=64)  # the architecture of the file we put there
    assert cached.classes == CLASSES and cached.weights == str(tmp_path / "rf-detr-nano.pth")


def test_to_rgb_leaves_rgb_uint8_frames_uncopied():
    f = np.zeros((4, 5, 3), np.uint8)
    assert to_rgb(f) is f
