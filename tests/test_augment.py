"""Augmentations keep boxes on their objects: flips mirror them, mixing keeps them inside the frame, pasted balls sit on grass."""
import numpy as np
import pytest
from sportbench.augment import (Sample, SportsAugment, apply_pixel_augment, build_pixel_augment, crop_objects, grass_mask,
                                mixup, mosaic, paste_objects, read_yolo_sample)
from sportbench.config import AugmentSection
from sportbench.core import bundled_data

CLASSES = ["ball", "goalkeeper", "player", "referee"]
OFF = {k: 0.0 for k in ("hflip", "color_jitter", "motion_blur", "gaussian_blur", "iso_noise", "jpeg", "clahe", "scale_jitter",
                        "mosaic", "mixup", "ball_paste")}


@pytest.fixture(scope="module")
def samples():
    frames = sorted(bundled_data("football_players_sample").glob("*/images/*.jpg"))[:6]
    return [read_yolo_sample(p, scale=0.25) for p in frames]


def _inside(s: Sample):
    h, w = s.image.shape[:2]
    return (s.boxes[:, :2] >= 0).all() and (s.boxes[:, 2] <= w).all() and (s.boxes[:, 3] <= h).all() \
        and (s.boxes[:, 2] > s.boxes[:, 0]).all() and (s.boxes[:, 3] > s.boxes[:, 1]).all()


def test_empty_sample_passes_through():
    s = Sample(np.zeros((64, 96, 3), np.uint8), np.zeros((0, 4)), [])
    out = apply_pixel_augment(s, build_pixel_augment(AugmentSection(), seed=0))
    assert out.image.shape == (64, 96, 3) and len(out.boxes) == 0


def test_mismatched_boxes_and_labels_are_refused():
    with pytest.raises(ValueError, match="2 boxes but 1 labels"):
        Sample(np.zeros((8, 8, 3), np.uint8), np.zeros((2, 4)), [0])


def test_flip_mirrors_boxes(samples):
    s = samples[0]
    out = apply_pixel_augment(s, build_pixel_augment(AugmentSection(**{**OFF, "hflip": 1.0}), seed=0))
    w = s.image.shape[1]
    np.testing.assert_allclose(out.boxes[:, [0, 2]], w - s.boxes[:, [2, 0]], atol=0.01)


def test_scale_jitter_moves_boxes_with_pixels(samples):
    s = samples[0]
    out = apply_pixel_augment(s, build_pixel_augment(AugmentSection(**{**OFF, "scale_jitter": 1.0, "scale_range": (1.2, 1.2)}), seed=0))
    h, w = s.image.shape[:2]
    centre = np.array([w / 2, h / 2])
    kept = out.boxes[(out.boxes[:, 0] > 1) & (out.boxes[:, 2] < w - 1)]
    assert _inside(out) and len(kept) > 3
    # every surviving box centre is 1.2x as far from the image centre as some original one
    src = (s.boxes[:, :2] + s.boxes[:, 2:]) / 2
    for c in (kept[:, :2] + kept[:, 2:]) / 2:
        assert np.min(np.linalg.norm(centre + (src - centre) * 1.2 - c, axis=1)) < 2.0


def test_every_augmentation_keeps_boxes_valid(samples):
    aug = SportsAugment(AugmentSection(mosaic=0.4, mixup=0.4, ball_paste=1.0, scale_jitter=0.5), CLASSES, seed=0)
    rng = np.random.default_rng(0)
    for i in range(20):
        out = aug(samples[i % len(samples)], lambda: samples[int(rng.integers(len(samples)))])
        assert out.image.dtype == np.uint8 and _inside(out)


def test_mosaic_and_mixup_keep_boxes_inside(samples):
    rng = np.random.default_rng(1)
    m = mosaic(samples[:4], samples[0].image.shape[:2], rng)
    assert m.image.shape == samples[0].image.shape and _inside(m) and len(m.boxes) > 0
    x = mixup(samples[0], samples[1], rng)
    assert len(x.boxes) == len(samples[0].boxes) + len(samples[1].boxes) and _inside(x)


def test_pasted_balls_land_on_grass_away_from_players(samples):
    donors = [c for s in samples[1:] for c in crop_objects(s, 0)]
    s = samples[0]
    out = paste_objects(s, donors, 0, np.random.default_rng(5), n=3)
    added = out.boxes[len(s.boxes):].astype(int)
    assert len(added) >= 1 and (out.labels[len(s.boxes):] == 0).all()
    grass = grass_mask(s.image)
    for x1, y1, x2, y2 in added:
        assert grass[y1:y2, x1:x2].all()
        assert not ((s.boxes[:, 0] < x2) & (s.boxes[:, 2] > x1) & (s.boxes[:, 1] < y2) & (s.boxes[:, 3] > y1)).any()


def test_no_grass_means_nothing_pasted(samples):
    grey = Sample(np.full((90, 160, 3), 128, np.uint8), np.zeros((0, 4)), [])
    out = paste_objects(grey, crop_objects(samples[0], 0), 0, np.random.default_rng(0), n=3)
    assert len(out.boxes) == 0 and np.array_equal(out.image, grey.image)
