"""Sliced inference: batched, and equal to sahi.get_sliced_prediction with the same model, tiles and postprocess."""
import logging
import numpy as np
import pytest
import supervision as sv
import torch
from sahi.models.roboflow import RoboflowDetectionModel
from sahi.predict import get_sliced_prediction
from sportbench.core import bundled_data
from sportbench.detect import Detector, load_rfdetr, read_rgb
from sportbench.slicing import (SliceParams, SlicedDetector, detections_match, from_sahi, grass_share, sahi_model, slice_predict,
                                tile_boxes)

CLASSES = ["ball", "goalkeeper", "player", "referee"]
TH = 0.02  # a from-scratch RF-DETR scores near its 1% class prior
logging.getLogger("sahi").setLevel(logging.ERROR)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


class Counting:
    "A Detector that records how many images each predict call got."
    def __init__(self, inner): self.inner, self.classes, self.calls = inner, inner.classes, []
    def predict(self, images, threshold=0.1):
        self.calls.append(len(images))
        return self.inner.predict(images, threshold)


@pytest.fixture(scope="module")
def detector():
    "A from-scratch RF-DETR nano at 128 px (64 queries: one per backbone token), its box head randomised so boxes vary."
    torch.manual_seed(0)
    det = load_rfdetr("nano", "scratch", classes=CLASSES, resolution=128, num_queries=64, device="cpu", batch_size=16)
    with torch.no_grad(): det.model.model.model.bbox_embed.layers[-1].weight.normal_(0, 0.02)
    return det


@pytest.fixture(scope="module")
def frame():
    "A real broadcast frame at half size (960 x 540)."
    return np.ascontiguousarray(read_rgb(sorted(bundled_data("football_players_sample").glob("*/images/*.jpg"))[0])[::2, ::2])


def sahi_reference(detector, image, params: SliceParams, threshold=TH, batch_size=1, model=None):
    "SAHI's own get_sliced_prediction with its RF-DETR wrapper (one slice per call), told to drop rfdetr's no-object slot."
    model = model or RoboflowDetectionModel(model=detector.model, confidence_threshold=threshold, category_mapping=dict(enumerate(CLASSES)))
    result = get_sliced_prediction(image, model, params.tile, params.tile, params.overlap, params.overlap,
                                   perform_standard_pred=params.full_frame, postprocess_type=params.postprocess,
                                   postprocess_match_metric=params.match_metric, postprocess_match_threshold=params.match_threshold,
                                   postprocess_class_agnostic=params.class_agnostic, exclude_classes_by_id=[len(CLASSES)],
                                   force_postprocess_type=True, batch_size=batch_size, verbose=0)
    return from_sahi(result.object_prediction_list, CLASSES)


@pytest.mark.parametrize("postprocess, metric, agnostic, tile, overlap, full", [
    ("GREEDYNMM", "IOS", False, 320, 0.2, True),   # SAHI's defaults
    ("NMM", "IOU", True, 320, 0.2, True),
    ("NMS", "IOU", False, 256, 0.3, False),
    ("NMS", "IOS", True, 320, 0.2, True),
])
def test_merged_boxes_equal_sahi_get_sliced_prediction(detector, frame, postprocess, metric, agnostic, tile, overlap, full):
    params = SliceParams(tile=tile, overlap=overlap, full_frame=full, postprocess=postprocess, match_metric=metric, class_agnostic=agnostic)
    counting = Counting(detector)
    ours = slice_predict(counting, [frame], TH, params)[0]
    n_crops = len(tile_boxes(540, 960, tile, overlap)) + full
    assert counting.calls == [n_crops]  # every tile (and the frame) in one call, which the detector batches
    ref = sahi_reference(detector, frame, params)
    assert len(ours) > 50
    assert detections_match(ours, ref), (len(ours), len(ref))


def test_merging_happens_and_changes_the_result(detector, frame):
    "The equivalence above is not trivial: tiles overlap, and the postprocess merges their boxes."
    merged = slice_predict(detector, [frame], TH, SliceParams(tile=320))[0]
    unmerged = slice_predict(detector, [frame], TH, SliceParams(tile=320, postprocess="NMS", match_threshold=1.01))[0]
    assert len(merged) < len(unmerged)
    assert not detections_match(merged, unmerged)


def test_detections_match_fails_on_any_difference():
    a = sv.Detections(xyxy=np.array([[10.0, 10, 50, 50], [100, 100, 120, 130]]), confidence=np.array([0.5, 0.3]), class_id=np.array([0, 2]))
    assert detections_match(a, a[::-1])
    shifted, rescored, relabelled = a[:], a[:], a[:]
    shifted.xyxy = a.xyxy + [2, 0, 2, 0]
    rescored.confidence = a.confidence + 1e-3
    relabelled.class_id = np.array([1, 2])
    for b in (shifted, rescored, relabelled, a[:1]): assert not detections_match(a, b)


def test_sahi_model_batches_slices_and_equals_the_reference(detector, frame):
    params = SliceParams(tile=320)
    counting = Counting(detector)
    ours = sahi_reference(detector, frame, params, model=sahi_model(counting, TH), batch_size=8)
    assert counting.calls == [8, 1]  # the 8 slices in one call, then SAHI's full-frame pass
    assert detections_match(ours, sahi_reference(detector, frame, params))


def test_sahi_model_category_mapping_has_int_keys_so_names_survive(detector, frame):
    model = sahi_model(detector, TH)
    assert model.category_mapping == {0: "ball", 1: "goalkeeper", 2: "player", 3: "referee"}
    result = get_sliced_prediction(frame, model, 320, 320, verbose=0)
    assert {p.category.name for p in result.object_prediction_list} <= set(CLASSES)


def test_several_frames_in_one_call_equal_each_alone(detector, frame):
    other = np.ascontiguousarray(frame[:, ::-1])
    counting = Counting(detector)
    both = slice_predict(counting, [frame, other], TH, SliceParams(tile=320))
    assert counting.calls == [18]
    for image, dets in zip([frame, other], both): assert detections_match(dets, slice_predict(detector, [image], TH, SliceParams(tile=320))[0])


def test_frames_smaller_than_a_tile_are_predicted_whole(detector, frame):
    small = frame[:200, :300]
    assert detections_match(slice_predict(detector, [small], TH)[0], detector.predict([small], TH)[0])
    strip = np.ascontiguousarray(frame[:200])  # smaller than a tile in height only: one row of tiles 200 px high
    assert (tile_boxes(200, 960, 320)[:, 3] == 200).all()
    assert detections_match(slice_predict(detector, [strip], TH, SliceParams(tile=320))[0], sahi_reference(detector, strip, SliceParams(tile=320)))


def test_gray_rgba_and_16bit_frames_slice_like_rgb(detector, frame):
    params = SliceParams(tile=320)
    rgb = slice_predict(detector, [frame], TH, params)[0]
    for variant in (np.dstack([frame, np.zeros(frame.shape[:2], np.uint8)]), frame.astype(np.uint16) * 257):
        assert detections_match(slice_predict(detector, [variant], TH, params)[0], rgb)
    gray = frame[..., 1]
    assert detections_match(slice_predict(detector, [gray], TH, params)[0], slice_predict(detector, [np.dstack([gray] * 3)], TH, params)[0])


def test_grass_mask_skips_tiles_of_stands_only(detector, frame):
    top = frame[:250]  # stands, then pitch
    boxes = tile_boxes(250, 960, 96)
    share = grass_share(top, boxes)
    stands = boxes[:, 1] == 0
    assert share[stands].max() < 0.05 and np.median(share[~stands]) > 0.5
    counting = Counting(detector)
    dets = slice_predict(counting, [top], TH, SliceParams(tile=96, full_frame=False, min_grass=0.05))[0]
    assert counting.calls == [len(boxes) - stands.sum()]
    assert len(dets) and dets.xyxy[:, 1].min() >= 77  # the first row below the stands starts at y = 77
    green, grey = np.zeros((64, 64, 3), np.uint8), np.full((64, 64, 3), 128, np.uint8)
    green[..., 1] = 160
    assert grass_share(green, [[0, 0, 64, 64]])[0] == 1.0 and grass_share(grey, [[0, 0, 64, 64]])[0] == 0.0


def test_sliced_detector_is_a_detector_and_describes_its_settings(detector, frame):
    sliced = SlicedDetector(detector, tile=320, min_grass=0.1)
    assert isinstance(sliced, Detector) and sliced.classes == CLASSES
    about = sliced.describe()
    assert about["slicing"]["tile"] == 320 and about["slicing"]["min_grass"] == 0.1 and about["model"] == "RFDETRNano"
    assert sliced.predict([], TH) == []


@pytest.mark.parametrize("kwargs, message", [({"postprocess": "WBF"}, "GREEDYNMM"), ({"match_metric": "GIOU"}, "IOS or IOU"),
                                             ({"overlap": 1.0}, "overlap"), ({"tile": 8}, "tile")])
def test_bad_slice_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message): SliceParams(**kwargs)
