"""Synthetic matches: determinism, the written video against its truth, ball physics, headers, occlusion, FiftyOne export."""
import itertools

import av
import numpy as np
import pytest

from sportbench.core import BadInputError
from sportbench.synth import (BALL_RGB, GRAVITY, KITS, SynthConfig, disc_alpha, events_table, generate_match,
                              load_match_truth, render_frame, truth_to_detections, write_match)

SMALL = dict(width=640, height=360, duration_s=4, ball_diameter_px=6, n_headers=1, seed=2)


@pytest.fixture(scope="module")
def match():
    return generate_match(SynthConfig(**SMALL))


@pytest.fixture(scope="module")
def written(match, tmp_path_factory):
    "The match written to disk and its video decoded back."
    out = tmp_path_factory.mktemp("synth")
    video = write_match(match, out)
    with av.open(str(video)) as container: frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    return video, frames


def _objects(match, label):
    return [(i, o) for i, objects in enumerate(match.frames) for o in objects if o["label"] == label]


def _inside(box, width, height, margin):
    return box[0] >= margin and box[1] >= margin and box[2] <= width - margin and box[3] <= height - margin


@pytest.mark.parametrize("bad, message", [(dict(width=-1), "SynthConfig.width must be an even integer in [64, 8192], got -1"),
                                          (dict(height=721), "SynthConfig.height must be an even integer"),
                                          (dict(view="drone"), "got 'drone'"), (dict(jpeg_quality=101), "got 101"),
                                          (dict(players_per_team=1), "players_per_team must be"), (dict(fps=0), "fps must be")])
def test_config_rejects_bad_values(bad, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(")): SynthConfig(**bad)


def test_same_seed_same_match_and_pixels_other_seed_differs(match):
    again = generate_match(SynthConfig(**SMALL))
    assert again.frames == match.frames and again.events == match.events and np.array_equal(again.ball_xyz, match.ball_xyz)
    clean = dict(SMALL, noise_sigma=0, jpeg_quality=None)
    a, b = generate_match(SynthConfig(**clean)), generate_match(SynthConfig(**clean))
    assert np.array_equal(render_frame(a, 30), render_frame(b, 30))
    assert np.array_equal(render_frame(match, 30), render_frame(again, 30))
    other = generate_match(SynthConfig(**dict(SMALL, seed=3)))
    assert other.frames != match.frames and not np.array_equal(render_frame(other, 30), render_frame(match, 30))


def test_video_has_one_frame_per_truth_frame(written, match):
    video, frames = written
    assert video.name == "synth_broadcast_2.mp4" and video.with_name("synth_broadcast_2_truth.json").exists()
    assert len(frames) == len(match.frames) == 100
    assert frames[0].shape == (360, 640, 3)


def test_visible_ball_is_bright_in_the_decoded_video(written, match):
    _, frames = written
    checked = 0
    for i, ball in _objects(match, "ball"):
        if not ball["visible"] or ball["occlusion"] > 0 or not _inside(ball["box"], 640, 360, 4): continue
        if ball["speed_px_per_frame"] > ball["diameter_px"] / 2: continue     # a motion-blur streak is fainter, as in real video
        rgb = frames[i].astype(float)
        x, y = np.floor(ball["center"]).astype(int)
        x0, y0, x1, y1 = ball["box"]
        ring = np.concatenate([rgb[y0 - 3:y0, x0:x1].reshape(-1, 3), rgb[y1:y1 + 3, x0:x1].reshape(-1, 3),
                               rgb[y0:y1, x0 - 3:x0].reshape(-1, 3), rgb[y0:y1, x1:x1 + 3].reshape(-1, 3)])
        grass = ring[(ring[:, 1] > ring[:, 0] + 15) & (ring[:, 1] > ring[:, 2] + 15)].mean(1)
        centre = rgb[y - 1:y + 1, x - 1:x + 1].reshape(-1, 3)
        assert centre.mean(0).min() > 150, (i, centre)              # every channel bright: white-ish (yuv420p tints it a little)
        if len(grass) >= 5:
            assert centre.mean() > np.median(grass) + 60, i
            checked += 1
    assert checked > 50


def test_player_boxes_hold_their_kit_colour(written, match):
    _, frames = written
    checked = 0
    for i, objects in enumerate(match.frames):
        for o in objects:
            if o["label"] not in ("player", "goalkeeper") or not _inside(o["box"], 640, 360, 1): continue
            others = [p["box"] for p in objects if p is not o]
            if any(b[0] < o["box"][2] and b[2] > o["box"][0] and b[1] < o["box"][3] and b[3] > o["box"][1] for b in others): continue
            x0, y0, x1, y1 = o["box"]
            crop = frames[i][y0:y1, x0:x1].astype(float)
            shirt = np.linalg.norm(crop - KITS[o["label"], o["team"]][0], axis=2) < 60
            assert shirt.mean() > 0.08, (i, o)
            checked += 1
    assert checked > 200


def test_players_move_without_teleporting(match):
    speeds = np.linalg.norm(np.diff(match.sim.xy, axis=0), axis=2) * match.cfg.fps
    assert speeds.max() < 10


def test_ball_stays_above_ground_and_slows_while_rolling(match):
    assert match.ball_xyz[:, 2].min() >= 0
    runs, k = [], 0
    for state, group in itertools.groupby(match.ball_state):
        n = len(list(group))
        if state == "roll" and n >= 4: runs.append((k, k + n))
        k += n
    assert runs
    for start, end in runs:
        speeds = np.linalg.norm(np.diff(match.ball_xyz[start:end, :2], axis=0), axis=1)
        assert (np.diff(speeds) < 0).all(), (start, end, speeds)


def _header_and_cross(match):
    headers = [e for e in match.events if e["label"] == "header"]
    assert headers, match.events
    header = headers[0]
    cross = max((e for e in match.events if e["frame"] < header["frame"]), key=lambda e: e["frame"])
    return header, cross


def test_lofted_cross_is_a_parabola(match):
    header, cross = _header_and_cross(match)
    frames = np.arange(cross["frame"], header["frame"] + 1)
    assert len(frames) >= 25 and set(match.ball_state[cross["frame"] + 1:header["frame"] + 1]) == {"air"}
    coeffs, residual, *_ = np.polyfit(frames, match.ball_xyz[frames, 2], 2, full=True)
    assert residual[0] < 1e-12
    assert coeffs[0] == pytest.approx(-GRAVITY / 2 / match.cfg.fps ** 2, rel=1e-6)
    assert match.ball_xyz[frames, 2].max() > 3


def test_header_meets_the_ball_at_head_height(match):
    header, _ = _header_and_cross(match)
    objects = match.frames[header["frame"]]
    ball = next(o for o in objects if o["label"] == "ball")
    player = next(o for o in objects if o["track_id"] == header["track_id"])
    assert 1.75 < ball["z_m"] < 2.1
    assert np.linalg.norm(np.subtract(ball["pitch_xy"], player["pitch_xy"])) < 0.3
    hx0, hy0, hx1, hy1 = player["head_box"]
    reach = ball["diameter_px"]
    assert hx0 - reach <= ball["center"][0] <= hx1 + reach and hy0 - reach <= ball["center"][1] <= hy1 + reach


def test_broadcast_ball_is_under_15_px():
    match = generate_match(SynthConfig(duration_s=4, seed=1))
    balls = [o for _, o in _objects(match, "ball")]
    assert len(balls) > 80
    assert max(b["diameter_px"] for b in balls) < 15
    sharp = [b for b in balls if b["speed_px_per_frame"] <= b["diameter_px"] / 2 and _inside(b["box"], 1280, 720, 0)]
    assert sharp and max(max(b["box"][2] - b["box"][0], b["box"][3] - b["box"][1]) for b in sharp) < 15


def test_occlusion_matches_the_pixels():
    match = generate_match(SynthConfig(**dict(SMALL, noise_sigma=0, jpeg_quality=None)))
    seen = {"hidden": 0, "partly": 0, "clear": 0}
    for i, ball in _objects(match, "ball"):
        if ball["speed_px_per_frame"] > ball["diameter_px"] / 2 or not _inside(ball["box"], 640, 360, 1): continue
        x0, y0, alpha = disc_alpha([ball["center"]], ball["diameter_px"] / 2)
        core = alpha == 1
        pixels = render_frame(match, i)[y0:y0 + alpha.shape[0], x0:x0 + alpha.shape[1]][core]
        covered = (pixels != BALL_RGB).any(1).mean()
        assert covered == pytest.approx(ball["occlusion"], abs=0.2), (i, ball)
        assert ball["visible"] == (ball["occlusion"] < 0.5)
        seen["hidden" if ball["occlusion"] >= 0.5 else "partly" if ball["occlusion"] > 0.1 else "clear"] += 1
    assert all(seen.values()), seen


def test_truth_to_detections(match):
    i, ball = next((i, o) for i, o in _objects(match, "ball") if o["speed_px_per_frame"] > 0)
    dets = truth_to_detections(match, i).detections
    assert len(dets) == len(match.frames[i])
    det = next(d for d in dets if d.label == "ball")
    x0, y0, x1, y1 = ball["box"]
    assert det.bounding_box == pytest.approx([x0 / 640, y0 / 360, (x1 - x0) / 640, (y1 - y0) / 360])
    assert det.index == 0 and det["visible"] == ball["visible"] and det["occlusion"] == ball["occlusion"]
    assert det["speed"] == ball["speed_px_per_frame"] > 0
    players = [d for d in dets if d.label == "player"]
    assert players and {d["team"] for d in players} <= {0, 1} and all(d.index > 0 for d in players)


def test_truth_reloads_without_simulating(written, match, tmp_path):
    video, _ = written
    loaded = load_match_truth(video.with_name("synth_broadcast_2_truth.json"))
    assert loaded.cfg == match.cfg and loaded.frames == match.frames and loaded.events == match.events
    assert loaded.cameras == match.cameras and loaded.ball_state == match.ball_state
    assert np.array_equal(loaded.ball_xyz, match.ball_xyz) and loaded.sim is None
    with pytest.raises(ValueError, match="cannot be drawn"): render_frame(loaded, 0)
    (tmp_path / "bad.json").write_text('{"config": {"width": -1}, "frames": [], "events": [], "ball": {}, "cameras": []}')
    with pytest.raises(BadInputError, match=r"bad.json \(config\): SynthConfig.width must be"): load_match_truth(tmp_path / "bad.json")


def test_events_table(match):
    table = events_table(match)
    assert list(table.columns) == ["label", "frame", "time_s", "track_id"]
    assert set(table["label"]) <= {"pass", "shot", "header"} and "header" in set(table["label"])
    assert (table["time_s"] == table["frame"] / match.cfg.fps).all()
