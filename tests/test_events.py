"""Event samples: positives hold their contact frame, negatives keep off the guard, every planned sample is written or logged,
a killed run resumes to exactly the samples of an uninterrupted one, and any Detector (RF-DETR included) can drive it."""
import json, os, signal, subprocess, sys, textwrap, time
import numpy as np
import pandas as pd
import pytest
from conftest import shared_or_skip
from sportbench.core import BadInputError
from sportbench.events import (TruthDetector, build_samples, load_event_labels, match_events, plan_samples, read_index,
                               truth_detections)
from sportbench.synth import SynthConfig, generate_match, write_match
from sportbench.video import VideoInfo, probe_video


@pytest.fixture(scope="module")
def synth_video(tmp_path_factory):
    "An 8 s synthetic match with a header at frame 99 and one at 193 (too near the end for a -10:10 window)."
    match = generate_match(SynthConfig(width=320, height=180, duration_s=8, ball_diameter_px=5, players_per_team=6, n_headers=3, seed=3))
    assert [e["frame"] for e in match.events if e["label"] == "header"] == [99, 193]
    folder = tmp_path_factory.mktemp("synth")
    video = write_match(match, folder)
    return match, video, folder / f"{match.clip_id}_truth.json", TruthDetector(match, video)


def _files(folder):
    return sorted(p.name for p in folder.iterdir())


def test_samples_hold_their_event_and_negatives_keep_off_the_guard(synth_video, tmp_path):
    match, video, truth_json, detector = synth_video
    report = build_samples(video, truth_json, tmp_path, detector, crop_size=48)
    index, skips = read_index(tmp_path), pd.read_csv(tmp_path / "skipped_samples.csv")
    assert (report["planned"], report["written"] + report["skipped"], report["already_done"]) == (5, 5, 0)
    assert len(index) == report["written"] and len(skips) == report["skipped"]
    reasons = dict(zip(skips.centre_frame, skips.reason))
    assert reasons.pop(193) == "window_outside_video"
    for centre, reason in reasons.items():                           # a window where the ball is never seen
        assert reason == "no_ball_found"
        assert not any(o["label"] == "ball" and o["visible"] for f in match.frames[centre - 10:centre + 11] for o in f)
    assert index.positive.sum() == 1 and (~index.positive).sum() + len(reasons) == 3
    for r in index.itertuples():
        meta = json.loads((tmp_path / r.meta).read_text())
        crops = np.load(tmp_path / r.crops)
        assert crops.shape == (21, 48, 48, 3) and crops.dtype == np.uint8 and crops.any()
        assert meta["frames"] == list(range(r.centre_frame - 10, r.centre_frame + 11))
        assert meta["times"] == pytest.approx([f / 25 for f in meta["frames"]])
        if r.positive: assert r.event_frame == 99 and 99 in meta["frames"]
        else: assert min(abs(r.centre_frame - 99), abs(r.centre_frame - 193)) > 10
        seen = [f for f in meta["per_frame"] if not f["ball_interpolated"]]
        assert seen and all(f["ball"] is not None for f in seen)
    assert len(_files(tmp_path)) == 2 * len(index) + 3


def test_positives_and_negatives_from_real_soccernet_ball_action_labels():
    path = shared_or_skip("soccernet_event_labels", "soccernet_ball_action_spotting_test_annotations.json")
    events = load_event_labels(path, game="Stoke City")
    n = int(events.time_s.max() * 25) + 100
    info = VideoInfo(path, 398, 224, 25.0, 0.04, np.arange(n), np.arange(0, n, 12))
    plan, skipped = plan_samples(events, info, "stoke", label="header", negative_ratio=2.0, guard_frames=25, window=(-8, 8))
    heads = np.unique(np.round(events.loc[events.label == "HEADER", "time_s"] * 25).astype(int))
    assert len(heads) == 128 and sorted(plan.loc[plan.positive, "centre_frame"]) == heads.tolist() and skipped.empty
    neg = plan.loc[~plan.positive, "centre_frame"].to_numpy()
    assert len(neg) == 2 * len(heads) and np.abs(neg[:, None] - heads[None]).min() > 25


KILLED_RUN = textwrap.dedent("""
    import sys, time
    from sportbench.events import TruthDetector, build_samples
    from sportbench.synth import load_match_truth
    video, truth, out = sys.argv[1:4]
    class SlowTruth(TruthDetector):
        def predict(self, images, threshold=0.1):
            time.sleep(0.3)
            return super().predict(images, threshold)
    build_samples(video, truth, out, SlowTruth(load_match_truth(truth), video), negative_ratio=5, crop_size=32)
""")


def test_killed_run_resumes_to_the_same_samples(synth_video, tmp_path):
    match, video, truth_json, detector = synth_video
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    build_samples(video, truth_json, whole, detector, negative_ratio=5, crop_size=32)
    proc = subprocess.Popen([sys.executable, "-c", KILLED_RUN, str(video), str(truth_json), str(killed)], env=os.environ.copy())
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and len(list(killed.glob("*_meta.json"))) < 2: time.sleep(0.05)
    proc.send_signal(signal.SIGKILL); proc.wait()
    metas = list(killed.glob("*_meta.json"))
    assert 2 <= len(metas) < len(read_index(whole)), f"the kill should land mid-run ({len(metas)} samples written)"
    for m in metas: assert np.load(killed / m.name.replace("_meta.json", "_s.npy")).shape == (21, 32, 32, 3)
    again = build_samples(video, truth_json, killed, detector, negative_ratio=5, crop_size=32)
    assert (again["already_done"], again["written"]) == (len(metas), len(read_index(whole)) - len(metas))
    assert _files(killed) == _files(whole)                           # same samples, no temp files, no duplicates
    pd.testing.assert_frame_equal(read_index(killed).drop(columns="video"), read_index(whole).drop(columns="video"))
    for p in whole.glob("*_s.npy"): assert np.array_equal(np.load(p), np.load(killed / p.name))




def test_any_detector_drives_it_rfdetr_from_scratch(synth_video, tmp_path, one_torch_thread):
    import torch
    from sportbench.detect import load_rfdetr
    match, video, truth_json, _ = synth_video
    torch.manual_seed(0)
    detector = load_rfdetr("nano", "scratch", classes=["ball", "goalkeeper", "player", "referee"], resolution=64, device="cpu")
    report = build_samples(video, truth_json, tmp_path, detector, window="-1:1", negative_ratio=0.5, threshold=0.01, crop_size=16,
                           batch_size=3, optimize=True)
    index = read_index(tmp_path)
    assert len(index) + len(pd.read_csv(tmp_path / "skipped_samples.csv")) == report["planned"] == 3   # headers at 99 and 193, a negative
    assert detector.model._is_optimized_for_inference and detector.batch_size == 3
    for r in index.itertuples(): assert np.load(tmp_path / r.crops).shape == (3, 16, 16, 3)


def test_bad_inputs_are_named(synth_video, tmp_path):
    match, video, truth_json, detector = synth_video
    two_games = tmp_path / "osl.json"
    two_games.write_text(json.dumps({"data": [{"inputs": [{"path": g}], "events": [{"label": "HEADER", "position_ms": "1000"}]}
                                              for g in ("a/game1.mp4", "b/game2.mp4")]}))
    with pytest.raises(BadInputError, match="holds 2 games"): load_event_labels(two_games)
    assert len(load_event_labels(two_games, game="game2")) == 1
    build_samples(video, truth_json, tmp_path / "c", detector, window="-3:3", crop_size=16)
    with pytest.raises(BadInputError, match="crop_size=16"): build_samples(video, truth_json, tmp_path / "c", detector, window="-3:3", crop_size=32)
    twin = tmp_path / "other_game" / video.name                       # another game's video under the same file name
    twin.parent.mkdir(); twin.write_bytes(video.read_bytes())
    with pytest.raises(BadInputError, match="is taken"): build_samples(twin, truth_json, tmp_path / "c", detector, window="-3:3", crop_size=16)
    assert build_samples(twin, truth_json, tmp_path / "c", detector, window="-3:3", crop_size=16, video_id="other")["written"] > 0
    short = write_match(generate_match(SynthConfig(width=160, height=90, duration_s=0.4, seed=1)), tmp_path)
    with pytest.raises(BadInputError, match="has 10 frames, the match 200"): TruthDetector(match, short)


def test_truth_detections_are_the_visible_truth(synth_video):
    match, *_ = synth_video
    for i in (0, 99, 150):
        seen = [o for o in match.frames[i] if o["label"] != "ball" or o["visible"]]
        dets = truth_detections(match, i)
        assert list(dets.data["class_name"]) == [o["label"] for o in seen]
        assert np.array_equal(dets.xyxy, np.array([o["box"] for o in seen], float))
    assert match_events(match).label.tolist() == [e["label"] for e in match.events]
