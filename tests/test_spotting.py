"""Event spotting: the average-mAP agrees with SoccerNet's published algorithm (a dense re-reading of it) on random cases, F1 and
NMS count what they should, a spotter trained on synthetic matches finds held-out events, the video path equals the features
path, the inspection page shows both sides, and the papermill job reports its numbers."""
import json
import numpy as np
import pandas as pd
import pytest
from conftest import shared_or_skip
from sportbench.core import BadInputError
from sportbench.events import TruthDetector, load_event_labels
from sportbench.spotting import (LOOSE_DELTAS, TIGHT_DELTAS, average_map, evaluate_matches, f1_at_tolerance, load_spotter,
                                 match_features, nms_events, save_spotter, spotting_pairs, spotting_report, synthetic_matches,
                                 train_spotter, write_soccernet_predictions)
from sportbench.synth import write_match

SMALL = dict(width=320, height=180, ball_diameter_px=5, players_per_team=6)


def soccernet_dense(labels, preds, classes, deltas, framerate=2, length_s=120):
    "SoccerNet's evaluation read literally: dense per-half vectors (-1 = no prediction), greedy per label, 200 thresholds, 11-point AP."
    size, keys = int(length_s * framerate), sorted(set(zip(labels.game, labels.half)) | set(zip(preds.game, preds.half)))
    vectors = []
    for g, h in keys:
        t, d = np.zeros((size, len(classes))), np.full((size, len(classes)), -1.0)
        for r in labels[(labels.game == g) & (labels.half == h)].itertuples(): t[int(framerate * r.time_s), classes.index(r.label)] = 1
        for r in preds[(preds.game == g) & (preds.half == h)].itertuples(): d[int(framerate * r.time_s), classes.index(r.label)] = r.confidence
        vectors.append((t, d))
    maps = []
    for delta in np.array(deltas) * framerate:
        aps = []
        for c in range(len(classes)):
            rows, n_gt = [], 0
            for t, d in vectors:
                gts, ps = np.flatnonzero(t[:, c]), np.flatnonzero(d[:, c] >= 0)
                hit, used = np.zeros(len(ps)), set()
                for g in gts:
                    best, pick = -1, None
                    for j, p in enumerate(ps):
                        if abs(p - g) <= delta / 2 and d[p, c] > best and p not in used: best, pick = d[p, c], j
                    if pick is not None: hit[pick] = 1; used.add(ps[pick])
                rows += list(zip(d[ps, c], hit)); n_gt += len(gts)
            prec, rec = [], []
            for thr in np.linspace(0, 1, 200):
                sel = [hh for s, hh in rows if s >= thr]
                prec.append(sum(sel) / len(sel) if sel else 0.0); rec.append(sum(sel) / n_gt if n_gt else 0.0)
            aps.append(np.mean([max([p for p, r in zip(prec, rec) if r >= j], default=0.0) for j in np.arange(11) / 10]))
        maps.append(np.mean(aps))
    return maps[0] if len(maps) == 1 else sum((maps[i] + maps[i + 1]) / 2 for i in range(len(maps) - 1)) / (len(maps) - 1)


def random_case(seed, classes=("pass", "header", "goal")):
    rng = np.random.default_rng(seed)
    labels, preds = [], []
    for game in ("a", "b"):
        for half in (1, 2):
            for _ in range(rng.integers(0, 8)):
                t, label = rng.uniform(0, 110), classes[rng.integers(0, 2)]       # "goal" never labelled: it scores 0
                labels.append((game, half, t, label))
                for _ in range(rng.integers(0, 3)):
                    preds.append((game, half, min(119.0, max(0.0, t + rng.normal(0, 2))), label, round(rng.uniform(0, 1), 2)))
            for _ in range(rng.integers(0, 5)):
                preds.append((game, half, rng.uniform(0, 119), classes[rng.integers(0, 3)], round(rng.uniform(0, 1), 2)))
    return (pd.DataFrame(labels, columns=["game", "half", "time_s", "label"]),
            pd.DataFrame(preds, columns=["game", "half", "time_s", "label", "confidence"]), list(classes))


@pytest.mark.parametrize("seed", range(6))
def test_average_map_agrees_with_soccernet_algorithm(seed):
    labels, preds, classes = random_case(seed)
    for deltas in (TIGHT_DELTAS, LOOSE_DELTAS, [1]):
        assert average_map(labels, preds, classes, deltas)["a_mAP"] == pytest.approx(soccernet_dense(labels, preds, classes, deltas), abs=1e-12)


def test_average_map_hand_cases():
    gt = pd.DataFrame(dict(game="g", half=[1, 1, 2], time_s=[10.0, 40.0, 10.0], label=["pass", "header", "pass"]))
    assert average_map(gt, gt.assign(confidence=0.7), ["pass", "header"])["a_mAP"] == 1.0
    late = gt.assign(time_s=gt.time_s + 1.5, confidence=0.7)
    assert average_map(gt, late, ["pass", "header"])["a_mAP"] == 0.625
    one = gt.iloc[:1]
    assert average_map(one, one.assign(half=2, confidence=0.7), ["pass"])["a_mAP"] == 0.0    # halves are scored apart
    assert average_map(one, one.assign(game="h", confidence=0.7), ["pass"])["a_mAP"] == 0.0  # and games
    assert average_map(gt, gt.iloc[:0].assign(confidence=[]), ["pass"])["a_mAP"] == 0.0


def test_f1_counts_hits_misses_and_false_alarms():
    gt = pd.DataFrame(dict(game="g", half=1, time_s=[10.0, 20.0, 30.0], label=["pass", "pass", "header"]))
    preds = pd.DataFrame(dict(game="g", half=1, time_s=[10.4, 10.6, 29.0, 50.0, 20.0], label=["pass", "pass", "header", "pass", "pass"],
                              confidence=[0.9, 0.8, 0.7, 0.6, 0.2]))
    # 10.4 hits 10.0; 10.6 has nothing left within 1 s (a false alarm); 29.0 hits 30.0; 50.0 is a false alarm; 20.0 scores too low
    assert f1_at_tolerance(gt, preds) == dict(precision=0.5, recall=2 / 3, f1=pytest.approx(4 / 7), tp=2, fp=2, fn=1)
    assert f1_at_tolerance(gt, preds, min_score=0.1)["tp"] == 3
    assert f1_at_tolerance(gt, preds, tolerance_s=0.5)["tp"] == 1


def test_nms_keeps_the_best_per_class_and_window():
    raw = pd.DataFrame(dict(game="g", half=[1, 1, 1, 2, 1], time_s=[5.0, 5.3, 6.0, 5.1, 5.2], label=["pass"] * 4 + ["header"],
                            confidence=[0.6, 0.9, 0.5, 0.4, 0.3]))
    kept = nms_events(raw, 0.5)
    assert kept[["half", "time_s", "label"]].values.tolist() == [[1, 5.2, "header"], [1, 5.3, "pass"], [1, 6.0, "pass"], [2, 5.1, "pass"]]


@pytest.fixture(scope="module")
def trained():
    train = synthetic_matches([20, 21, 22], seconds=12, n_headers=3, **SMALL)
    return train_spotter(spotting_pairs(train, 0.05, 0.5), ["header", "pass"], epochs=15, device="cpu")


def test_spotter_trained_on_synthetic_matches_finds_held_out_events(trained):
    held_out = synthetic_matches([120, 121], seconds=12, n_headers=3, **SMALL)
    scores, labels, found = evaluate_matches(trained, held_out, 0.05, 0.5, seed=7)
    assert set(labels.label) >= {"header", "pass"} and len(labels) >= 8
    assert scores["tight_a_mAP"] > 0.5 and scores["f1"] > 0.5, scores
    untrained = train_spotter(spotting_pairs(held_out[:1]), ["header", "pass"], epochs=0, device="cpu")
    assert evaluate_matches(untrained, held_out)[0]["tight_a_mAP"] < scores["tight_a_mAP"] - 0.3


def test_video_path_report_and_saved_spotter(trained, tmp_path):
    match = synthetic_matches([130], seconds=5, n_headers=2, **SMALL)[0]
    video = write_match(match, tmp_path)
    found = trained.predict(video, TruthDetector(match, video), game=match.clip_id)
    same = trained.predict_features(match_features(match), 25.0, game=match.clip_id)
    pd.testing.assert_frame_equal(found.drop(columns="time_s"), same.drop(columns="time_s"))
    assert found.time_s.tolist() == pytest.approx((found.frame / 25).tolist())
    labels = evaluate_matches(trained, [match])[1]
    page = spotting_report(video, labels, found, tmp_path / "page.html", {"tight_a_mAP": 0.5}, min_score=0.0).read_text()
    rows = page.count("<tr class=")
    assert rows >= max(len(labels), len(found)) and page.count("data:image/jpeg;base64,") == 2 * rows - page.count("<td class='none'>")
    assert all(f"{t:.2f} s" in page for t in labels.time_s) and "tight_a_mAP: 0.500" in page
    again = load_spotter(save_spotter(trained, tmp_path / "s.pt"), device="cpu")
    pd.testing.assert_frame_equal(again.predict_features(match_features(match), 25.0, game=match.clip_id), same)
    with pytest.raises(BadInputError, match="not a readable spotter"): load_spotter(tmp_path / "page.html")


def test_real_soccernet_labels_load_and_score(tmp_path):
    path = shared_or_skip("soccernet_event_labels", "Labels-v2_2015-05-17_ManUtd_1-1_Arsenal.json")
    labels = load_event_labels(path)
    assert (len(labels), labels.half.value_counts().to_dict()) == (173, {2: 108, 1: 65})
    classes = sorted(labels.label.unique())
    preds = labels.assign(confidence=0.9)
    assert average_map(labels, preds, classes, LOOSE_DELTAS)["a_mAP"] == 1.0
    out = write_soccernet_predictions(preds, tmp_path / "results_spotting.json", labels.game[0])
    written = json.loads(out.read_text())["predictions"]
    assert [(int(p["half"]), int(p["position"]), p["label"]) for p in written] == \
           [(h, int(round(t * 1000)), l) for h, t, l in labels[["half", "time_s", "label"]].itertuples(index=False)]


@pytest.mark.slow
def test_spotting_job_reports_tight_average_map_and_f1(tmp_path, monkeypatch):
    from sportbench.runs import run_job
    monkeypatch.chdir(tmp_path)
    out = run_job("spotting", dict(train_matches=2, test_matches=1, seconds=8.0, epochs=3, video_seconds=2.0, out_dir=str(tmp_path)),
                  runs_dir=tmp_path / "runs", progress=False)
    text = "".join("".join(o.get("text", "")) for c in json.loads(out.read_text())["cells"] for o in c.get("outputs", []))
    assert "tight average-mAP:" in text and "F1 @ 1.0 s:" in text and (tmp_path / "spotting.html").exists()
