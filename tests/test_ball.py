"""Ball patches, the ball networks and the ball specialist: geometry of the patches, learning on an easy synthetic set,
the Detector contract, checkpoint round trips, and bad input."""
import numpy as np
import pytest
import torch
from conftest import shared_or_skip

from sportbench.ball import (BallNet, BallSpecialist, Candidates, add_toy_frames, fit_net, frame_map, load_ball_specialist,
                             net_outputs, smooth_track, train_ball_specialist, STRIDE)
from sportbench.ball_patches import away_from_balls, ball_boxes, box_centres, crop_patches, extract_patches
from sportbench.core import BadInputError, SportbenchError, bundled_data
from sportbench.formats import assign_splits, import_yolo
from sportbench.pseudolabel import pseudolabel
from sportbench.store import get_dataset

torch.set_num_threads(1)  # the CPU is shared: one thread per process is faster than two fighting
TINY = dict(width=8, epochs=4, reg_epochs=40, verifier_epochs=2, ranker_epochs=2, batch_size=64, n_person=0, n_blob=8, n_random=8, mine_per_frame=4,
            experiment=None, progress=False)


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    "24 toy frames in 3 matches, split train/val by match."
    ds = get_dataset("t-ball-toy", overwrite=True)
    add_toy_frames(ds, tmp_path_factory.mktemp("toy"), n=24)
    assign_splits(ds, fractions={"train": 0.67, "val": 0.33}, seed=0)
    yield ds
    ds.delete()


@pytest.fixture(scope="module")
def toy_patches(toy):
    return extract_patches(toy, patch_size=32, n_person=0, progress=False)


@pytest.fixture(scope="module")
def specialist(toy):
    return train_ball_specialist(toy, **TINY)


def _frames(view):
    from sportbench.detect import read_rgb
    return [read_rgb(p) for p in view.values("filepath")]


def test_positive_patches_hold_the_ball_centre(toy, toy_patches):
    pos = toy_patches.subset(toy_patches.labels == 1)
    assert len(pos) == 8 * len(toy)
    cx, cy = pos.targets[:, 0], pos.targets[:, 1]
    assert ((cx >= 0) & (cx < 32) & (cy >= 0) & (cy < 32)).all()
    assert (np.abs(pos.targets[:, :2] - 16) <= 8.5).all()  # within the jitter (P/4) of the middle
    centre_pixels = pos.images[np.arange(len(pos)), cy.astype(int), cx.astype(int)]
    assert (centre_pixels.min(axis=1) > 180).all()  # the toy ball is white where the target says


def test_negative_patches_never_touch_a_ball(toy, toy_patches):
    neg = toy_patches.subset(toy_patches.labels == 0)
    assert {"blob", "random"} <= set(neg.kinds)
    for s in toy:
        balls = ball_boxes(s.ground_truth, s.metadata.width, s.metadata.height)
        mine = neg.centres[neg.sample_ids == s.id]
        assert len(away_from_balls(mine, balls, 32)) == len(mine)
    assert np.isnan(neg.targets).all()


def test_patches_split_by_match(toy_patches):
    for m in np.unique(toy_patches.match_ids):
        assert len(set(toy_patches.splits[toy_patches.match_ids == m])) == 1
    assert set(toy_patches.splits) == {"train", "val"}


def test_false_positives_become_negatives_unless_on_the_ball(toy):
    import fiftyone as fo
    s = toy.first()
    ball = s.ground_truth.detections[0].bounding_box
    far = [0.02, 0.02, 0.03, 0.05] if ball[0] > 0.3 else [0.9, 0.8, 0.03, 0.05]
    s["pred_fp_check"] = fo.Detections(detections=[fo.Detection(label="ball", bounding_box=ball, confidence=0.9),
                                                    fo.Detection(label="ball", bounding_box=far, confidence=0.8)])
    s.save()
    ps = extract_patches(toy.select(s.id), n_jitter=0, n_blob=0, n_person=0, n_random=0, pred_field="pred_fp_check", progress=False)
    assert ps.counts() == {"false_positive": 1}
    np.testing.assert_allclose(ps.centres[0], np.round([(far[0] + far[2] / 2) * 320, (far[1] + far[3] / 2) * 192]))


def test_crop_patches_matches_the_whole_frame_pass(toy):
    torch.manual_seed(0)
    net = BallNet("fcn", 32, 8, 1)
    frame = _frames(toy.limit(1))[0]
    pts = np.array([[0, 0], [36, 20], [160, 96], [316, 188]])
    fmap = frame_map(net, frame)[0].numpy()
    np.testing.assert_allclose(fmap[pts[:, 1] // STRIDE, pts[:, 0] // STRIDE], net_outputs(net, crop_patches(frame, pts, 32))[:, 0], atol=1e-4)


def test_classifier_learns_the_toy_set(toy_patches):
    train, val = toy_patches.split("train"), toy_patches.split("val")
    net = BallNet("fcn", 32, 8, 1)
    history = fit_net(net, train, val, epochs=6, batch_size=64)
    majority = max(val.labels.mean(), 1 - val.labels.mean())
    assert history[-1]["train_loss"] < 0.5 * history[0]["train_loss"]
    assert history[-1]["val_accuracy"] > majority + 0.5 * (1 - majority), (history[-1], majority)


def test_regressor_learns_the_ball_centre(toy_patches):
    train, val = toy_patches.split("train"), toy_patches.split("val")
    net = BallNet("fine", 32, 8, 3)
    history = fit_net(net, train, val, epochs=15, batch_size=32)
    pos = val.subset(val.labels == 1)
    baseline = np.hypot(*(pos.targets[:, :2] - 16).T).mean()  # always guessing the middle
    assert history[-1]["train_loss"] < 0.5 * history[0]["train_loss"]
    assert history[-1]["val_centre_error_px"] < 0.5 * baseline, (history[-1], baseline)


def test_specialist_predicts_at_most_one_ball_per_frame(toy, specialist):
    import supervision as sv
    from sportbench.detect import Detector
    assert isinstance(specialist, Detector) and specialist.classes == ["ball"]
    frames = _frames(toy.match_tags("val"))
    dets = specialist.predict(frames, threshold=0.0)
    assert len(dets) == len(frames)
    for d, im in zip(dets, frames):
        assert isinstance(d, sv.Detections) and len(d) == 1
        assert (d.xyxy[:, :2] >= 0).all() and (d.xyxy[:, 2] <= im.shape[1]).all() and (d.xyxy[:, 3] <= im.shape[0]).all()
        assert (d.xyxy[:, 2:] > d.xyxy[:, :2]).all() and d.class_id.tolist() == [0] and d.data["class_name"].tolist() == ["ball"]
        assert 0 <= d.confidence[0] <= 1
    assert all(len(d) <= 3 for d in specialist.predict(frames, threshold=0.0, max_balls=3))
    assert all(len(d) == 0 for d in specialist.predict(frames, threshold=1.01))
    assert all(len(d) <= 1 for d in specialist.predict(frames, threshold=0.0, temporal=True))


def test_specialist_finds_the_toy_ball(toy, specialist):
    view = toy.match_tags("val")
    dets = specialist.predict(_frames(view), threshold=0.1)
    truth = [box_centres(ball_boxes(s.ground_truth, 320, 192))[0] for s in view]
    hits = [len(d) > 0 and np.hypot(*(box_centres(d.xyxy)[0] - t)) < 4 for d, t in zip(dets, truth)]
    assert np.mean(hits) >= 0.75, hits


def test_the_ranker_learns_the_searchs_own_candidates_and_votes_with_the_verifier(toy, specialist):
    from sportbench.ball import candidates, propose, refine, verify
    train = toy.match_tags("train")
    ranked, mined = train.count("pred_ball_ranking.detections"), train.count("pred_ball_mining_1.detections")
    assert ranked > mined >= len(train)  # every candidate of the search (top_k), not the few mined per frame
    image = _frames(toy.match_tags("val")[:1])[0]
    xy, _ = refine(specialist, image, propose(specialist, image)[0])
    both = (verify(specialist, specialist.verifier, image, xy) + verify(specialist, specialist.ranker, image, xy)) / 2
    np.testing.assert_allclose(candidates(specialist, image).logit, both, rtol=1e-5)


def test_checkpoint_round_trip_gives_identical_predictions(toy, specialist, tmp_path):
    from sportbench.detect import load_detector
    frames = _frames(toy.match_tags("val"))
    path = specialist.save(tmp_path / "ball.pt")
    for back in (load_ball_specialist(path), load_detector(path)):
        assert type(back).__name__ == "BallSpecialist" and set(back.nets()) == {"classifier", "regressor", "verifier", "ranker"}
        for a, b in zip(specialist.predict(frames, threshold=0.0, max_balls=3), back.predict(frames, threshold=0.0, max_balls=3)):
            np.testing.assert_array_equal(a.xyxy, b.xyxy)
            np.testing.assert_array_equal(a.confidence, b.confidence)
    assert torch.load(path, weights_only=True)["kind"] == "ball_specialist"
    assert load_ball_specialist(path, max_balls=2).settings["max_balls"] == 2


def test_pseudolabelling_with_the_specialist_records_its_checkpoint_and_settings(toy, specialist, tmp_path):
    view = toy.match_tags("val")
    spec = load_ball_specialist(specialist.save(tmp_path / "ball.pt"))
    summary = pseudolabel(view, spec, "ball_check", threshold=0.0, progress=False, overwrite=True)
    assert summary["status"] == "complete" and summary["written"] == len(view)
    assert view.count("pred_ball_check.detections") == len(view) and view.distinct("pred_ball_check.detections.label") == ["ball"]
    run = view.get_run_info("ball_check").config
    assert run.model == "BallSpecialist" and run.weights_sha256 and run.settings["max_balls"] == 1
    with pytest.raises(SportbenchError, match="other settings"):  # resuming with other settings would mix two models' boxes
        pseudolabel(view, spec.with_settings(max_balls=3), "ball_check", threshold=0.0, progress=False)


def test_temporal_smoothing_keeps_the_ball_through_a_lookalike():
    balls = [np.array([100.0 + 10 * t, 200.0]) for t in range(5)]
    frames = [Candidates(np.stack([b, [900.0, 50.0]]), np.array([5.0, 5.0]), np.array([2.0, 3.0 if t == 2 else -2.0])) for t, b in enumerate(balls)]
    assert smooth_track(frames) == [0, 0, 0, 0, 0]
    assert smooth_track([]) == []


def test_bad_input_is_refused_with_a_clear_error(toy, dataset, tmp_path):
    with pytest.raises(BadInputError, match="no samples"): extract_patches(dataset)
    import fiftyone as fo
    from fiftyone import ViewField as F
    with pytest.raises(BadInputError, match="no 'ball' boxes"): extract_patches(toy.filter_labels("ground_truth", F("label") != "ball", only_matches=False))
    dataset.add_sample(fo.Sample(filepath=toy.first().filepath, match_id="m1", ground_truth=toy.first().ground_truth))
    with pytest.raises(BadInputError, match="no frames tagged 'train'"): train_ball_specialist(dataset, **TINY)
    with pytest.raises(BadInputError, match="need balls and non-balls"):
        fit_net(BallNet("fcn", 32, 8, 1), extract_patches(toy.limit(2), n_blob=0, n_person=0, n_random=0, progress=False), epochs=1)
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(BadInputError, match="not a readable checkpoint"): load_ball_specialist(tmp_path / "junk.pt")
    torch.save({"kind": "rfdetr"}, tmp_path / "other.pt")
    with pytest.raises(BadInputError, match="not a ball specialist checkpoint"): load_ball_specialist(tmp_path / "other.pt")
    with pytest.raises(ValueError, match="unknown settings"): BallSpecialist(BallNet("fcn", 32, 8, 1), BallNet("fcn", 32, 8, 3), top_kk=3)


def test_real_frames_give_ball_patches(dataset):
    import_yolo(dataset, bundled_data("football_players_sample"))
    assign_splits(dataset, seed=0)
    ps = extract_patches(dataset.limit(4), patch_size=48, progress=False)
    assert ps.patch_size == 48 and {"positive", "blob", "person", "random"} <= set(ps.kinds)
    pos = ps.subset(ps.labels == 1)
    assert (np.abs(pos.targets[:, :2] - 24) <= 12.5).all() and (pos.targets[:, 2] > 2).all()


def test_robocup_images_give_ball_patches(dataset):
    from sportbench.ball_patches import import_robocup
    root = shared_or_skip("robocup_msl_subset")
    import_robocup(dataset, root)
    assert sorted(dataset.distinct("match_id")) == ["20230709_r6", "20240717_r7"]
    ps = extract_patches(dataset.limit(6), n_person=0, progress=False)
    assert (ps.labels == 1).any() and (ps.labels == 0).any()


def test_evaluate_folder_reads_the_specialist_checkpoint(toy, specialist, tmp_path):
    "What `sportbench evaluate --data DIR --weights ball.pt` runs: the checkpoint is found by its kind and measured on a YOLO folder."
    from sportbench.evaluate import evaluate_folder
    from sportbench.formats import export_labels
    export_labels(toy.match_tags("val"), tmp_path / "yolo", fmt="yolo", classes=["ball"])
    metrics = evaluate_folder(tmp_path / "yolo", specialist.save(tmp_path / "ball.pt"), log_mlflow=False)
    ball = metrics["per_class"]["ball"]
    assert ball["n_true"] == len(toy.match_tags("val")) and ball["n_pred"] <= ball["n_true"]
    assert ball["ap50"] is not None and 0 <= ball["ap50"] <= 1
