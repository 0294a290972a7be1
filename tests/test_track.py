"""sportbench.track on synthetic matches: the ball path filter removes ghost balls and fills short gaps, ByteTrack keeps identities,
tracking metrics behave, and shirt colours give the two teams."""
import numpy as np
import pytest
import supervision as sv
from sportbench.evaluate import ball_metrics
from sportbench.synth import SynthConfig, generate_match
from sportbench.track import (ball_candidates, filter_ball_path, simulate_detections, track_frames, track_match, tracking_metrics,
                              truth_frames)

PEOPLE = [1, 2, 3]


@pytest.fixture(scope="module")
def match():
    return generate_match(SynthConfig(seed=2, duration_s=8))


@pytest.fixture(scope="module")
def truth(match):
    return truth_frames(match)


def true_balls(truth, keep_every=1, drop=()):
    "The true ball of each frame as a detection (score 0.9), keeping every `keep_every`-th frame, none in `drop`."
    out = []
    for i, t in enumerate(truth):
        b = t[(t.class_id == 0) & np.array([bool(v) for v in t.data["visible"]])]
        keep = i % keep_every == 0 and i not in drop
        out.append(sv.Detections(xyxy=b.xyxy, class_id=b.class_id, confidence=np.full(len(b), 0.9)) if keep and len(b) else sv.Detections.empty())
    return out


@pytest.mark.parametrize("ghost_start,ghost_stay", [(0.04, 0.8), (0.02, 0.7)])
def test_path_filter_lowers_false_balls_with_white_distractors(match, truth, ghost_start, ghost_stay):
    "Done-when: on a synthetic match with ghost balls on white socks and line crossings, far fewer false balls, recall kept."
    dets = simulate_detections(match, seed=1, ghost_start=ghost_start, ghost_stay=ghost_stay)
    raw = ball_metrics(truth, ball_candidates(dets), 0)
    kept = ball_metrics(truth, filter_ball_path(ball_candidates(dets)), 0)
    assert raw["ball_false"] > 50
    assert kept["ball_false"] < 0.25 * raw["ball_false"]
    assert kept["ball_recall"] > raw["ball_recall"] - 0.1 and kept["ball_precision"] > raw["ball_precision"] + 0.25


def test_ghosts_sit_on_white_things(match):
    from sportbench.track import white_spots
    dets = simulate_detections(match, seed=1)
    truth = truth_frames(match)
    ghosts = 0
    for i in (40, 80, 120):
        spots = np.array(list(white_spots(match, i).values()))
        ball = dets[i][dets[i].class_id == 0]
        true_c = truth[i].xyxy[truth[i].class_id == 0].reshape(-1, 2, 2).mean(1)
        for c in ball.xyxy.reshape(-1, 2, 2).mean(1):
            if len(true_c) and np.linalg.norm(true_c - c, axis=1).min() < 5: continue
            ghosts += 1
            assert np.linalg.norm(spots - c, axis=1).min() < 1e-6            # every ghost is on a sock or a line crossing
    assert ghosts > 0


def test_path_filter_fills_short_gaps_only(truth):
    every_other = filter_ball_path(true_balls(truth, keep_every=2))
    assert sum(bool(len(b) and b.data["filled"][0]) for b in every_other) > 50
    assert ball_metrics(truth, every_other, 0)["ball_recall"] > 0.95           # the filled balls are where the ball is
    gap = set(range(100, 112))                                                 # 12 frames: longer than max_gap
    holes = filter_ball_path(true_balls(truth, drop=gap), max_gap=5)
    assert all(len(holes[i]) == 0 for i in gap)


@pytest.mark.parametrize("balls", [[], [sv.Detections.empty()] * 10])
def test_path_filter_empty(balls):
    assert [len(b) for b in filter_ball_path(balls)] == [0] * len(balls)


def test_one_ball_per_frame_and_ids(match):
    result = track_match(simulate_detections(match, seed=0))
    assert all((r.class_id == 0).sum() <= 1 for r in result)
    assert {int(t) for r in result for t in r.tracker_id[r.class_id == 0]} == {0}
    assert all((r.tracker_id[r.class_id != 0] >= 1).all() for r in result)   # people from 1, as in the truth


def test_tracking_metrics_behave(truth, match):
    assert tracking_metrics(truth, truth, PEOPLE)["MOTA"] == 1.0
    one_lost = [sv.Detections.empty() if i == 5 else t for i, t in enumerate(truth)]       # a frame with nothing tracked
    assert 0.95 < tracking_metrics(truth, one_lost, PEOPLE)["MOTA"] < 1.0
    rng = np.random.default_rng(0)
    swapped = [sv.Detections(xyxy=t.xyxy, class_id=t.class_id, tracker_id=rng.permutation(t.tracker_id)) for t in truth]
    assert tracking_metrics(truth, swapped, PEOPLE)["IDF1"] < 0.5
    perfect_boxes = [sv.Detections(xyxy=t.xyxy, class_id=t.class_id, confidence=np.ones(len(t))) for t in truth]
    tracked = tracking_metrics(truth, track_frames(perfect_boxes), PEOPLE)
    assert tracked["HOTA"] > 0.9 and tracked["IDF1"] > 0.9 and tracked["IDSW"] <= 3
    noisy = tracking_metrics(truth, track_match(simulate_detections(match, seed=0)), PEOPLE)
    assert 0.5 < noisy["HOTA"] < tracked["HOTA"] and noisy["MOTA"] < tracked["MOTA"]


def test_teams_from_rendered_frames(match, truth):
    from sportbench.synth import render_frame
    from sportbench.track import assign_teams, fit_team_colours, shirt_colours
    frames = {i: render_frame(match, i) for i in (30, 150)}
    rows = {i: truth[i].class_id != 0 for i in frames}
    colours = np.vstack([shirt_colours(frames[i], truth[i].xyxy[rows[i]]) for i in frames])
    team = np.concatenate([truth[i].data["team"][rows[i]] for i in frames]).astype(int)
    outfield = np.concatenate([truth[i].class_id[rows[i]] == 2 for i in frames])
    got = assign_teams(colours, fit_team_colours(colours))
    agree = np.mean(got[outfield] == team[outfield])
    assert max(agree, 1 - agree) >= 0.95                                       # the two teams, up to naming
    assert (got[~outfield] == -1).all()                                        # goalkeepers and referee: outliers
    with pytest.raises(ValueError, match="at least two shirt colours"):
        fit_team_colours(np.full((3, 3), np.nan))
