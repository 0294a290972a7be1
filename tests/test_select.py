"""Active-learning selection on real frames: what a person reviewing gets is what the strategy promised."""
import numpy as np
import pytest
from helpers import bundled_sample_dataset

STRATEGIES = ("ball_band", "ball_first", "least_confidence", "margin", "entropy", "diversity", "hybrid", "random")


def _predictions(fo, truth, rng):
    "An imperfect model: true boxes jittered with confidences (balls unsure), some missed, one low-confidence ghost."
    dets = [fo.Detection(label=d.label, bounding_box=list(np.array(d.bounding_box) + [*rng.normal(0, 0.002, 2), 0, 0]),
                         confidence=float(rng.uniform(0.05, 0.6) if d.label == "ball" else rng.uniform(0.3, 0.99)))
            for d in (truth.detections if truth else []) if rng.random() > 0.1]
    dets.append(fo.Detection(label="ball", bounding_box=[*rng.uniform(0.1, 0.8, 2), 0.006, 0.01], confidence=float(rng.uniform(0.02, 0.3))))
    return fo.Detections(detections=dets)


@pytest.fixture(scope="module")
def frames():
    "The bundled real sample: truth moved to `truth` (nothing labelled yet), predictions in `pred_m`."
    from sportbench.store import connect
    fo = connect()
    ds = bundled_sample_dataset("t-select")
    ds.clone_sample_field("ground_truth", "truth")
    ds.set_values("ground_truth", [None] * len(ds))
    rng = np.random.default_rng(1)
    ds.set_values("pred_m", [_predictions(fo, t, rng) for t in ds.values("truth")])
    yield ds
    ds.delete()


@pytest.fixture
def ds(frames):
    "The module's dataset, with selection tags and annotations of the previous test removed."
    yield frames
    frames.untag_samples(frames.distinct("tags"))
    frames.set_values("ground_truth", [None] * len(frames))


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_an_empty_view_selects_nothing(ds, strategy):
    from sportbench.select import select_frames
    assert select_frames(ds.limit(0), strategy, 5, "pred_m", run=f"empty_{strategy}") == []


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_spends_the_budget_balanced_across_matches(ds, strategy):
    from sportbench.select import REVIEW_TAG, select_frames
    picked = select_frames(ds, strategy, 8, "pred_m", run=strategy)
    if strategy == "ball_band":
        assert 0 < len(picked) <= 8
    else:
        assert len(picked) == 8 == len(set(picked))
        assert sorted(ds.select(picked).count_values("match_id").values()) == [2, 2, 2, 2]
    assert sorted(ds.match_tags(REVIEW_TAG).values("id")) == sorted(picked)
    assert ds.get_run_info(f"select_{strategy}").config.selected == picked
    assert ds.select(picked).count(f"select_{strategy}") == len(picked)


def test_ball_band_picks_frames_with_an_unsure_ball_most_ambiguous_first(ds):
    from fiftyone import ViewField as F
    from sportbench.select import select_frames
    picked = select_frames(ds, "ball_band", 100, "pred_m", run="band", band=(0.1, 0.4), balance_by=None)
    in_band = ds.filter_labels("pred_m", (F("label") == "ball") & (F("confidence") >= 0.1) & (F("confidence") <= 0.4))
    assert sorted(picked) == sorted(in_band.values("id"))
    scores = [ds[i]["select_band"] for i in picked]
    assert scores == sorted(scores, reverse=True)
    best = ds[picked[0]].pred_m.detections
    assert min(abs(d.confidence - 0.25) for d in best if d.label == "ball") == pytest.approx(0.15 * (1 - scores[0]), abs=1e-9)


def test_ball_first_puts_band_frames_before_the_rest(ds):
    from sportbench.select import ball_band_scores, frame_predictions, select_frames
    band_frames = int(np.sum(~np.isnan(ball_band_scores(frame_predictions(ds, "pred_m")))))
    assert 0 < band_frames < len(ds)
    picked = select_frames(ds, "ball_first", band_frames + 3, "pred_m", run="bf", balance_by=None)
    scores = [ds[i]["select_bf"] for i in picked]
    assert all(s >= 1 for s in scores[:band_frames]) and all(s < 1 for s in scores[band_frames:])


def test_annotated_and_queued_frames_are_never_picked_again(ds):
    from sportbench.select import ANNOTATED_TAG, select_frames
    labelled = ds.take(5, seed=0).values("id")
    ds.select(labelled[:3]).set_values("ground_truth", ds.select(labelled[:3]).values("truth"))
    ds.select(labelled[3:]).tag_samples(ANNOTATED_TAG)
    first = select_frames(ds, "entropy", 6, "pred_m", run="a")
    second = select_frames(ds, "diversity", 100, "pred_m", run="b")
    assert not set(first) & set(labelled) and not set(second) & (set(labelled) | set(first))
    assert len(first) + len(second) + len(labelled) == len(ds)


def test_a_seed_reproduces_a_selection(ds):
    from sportbench.select import select_frames
    runs = [select_frames(ds, s, 6, "pred_m", run=f"r{k}", tag=f"t{k}", seed=seed)
            for k, (s, seed) in enumerate([("hybrid", 3), ("hybrid", 3), ("random", 3), ("random", 4)])]
    assert runs[0] == runs[1] and runs[2] != runs[3]


def test_diversity_spreads_over_what_is_not_labelled_yet():
    from sportbench.select import k_center_greedy
    rng = np.random.default_rng(0)
    clusters = np.repeat(np.eye(4) * 10, 25, axis=0) + rng.normal(0, 0.1, (100, 4))
    picked, _ = k_center_greedy(clusters, 3, centres=clusters[:1])  # cluster 0 is labelled
    assert sorted(i // 25 for i in picked) == [1, 2, 3]


def test_uncertainty_prefers_the_frames_the_model_is_unsure_about():
    from sportbench.select import uncertainty_scores
    box = np.array([[0.1, 0.1, 0.05, 0.1]])
    frame = lambda c: dict(labels=np.array(["player"], dtype=object), conf=np.array([c]), boxes=box)
    for kind in ("least_confidence", "margin", "entropy"):
        sure, unsure = uncertainty_scores([frame(0.97), frame(0.5)], kind, ["player"])
        assert unsure > sure, kind


def test_missing_predictions_and_unknown_strategies_are_refused(ds):
    from sportbench.core import BadInputError
    from sportbench.select import select_frames
    with pytest.raises(BadInputError, match="has no field 'pred_none'"):
        select_frames(ds, "entropy", 4, "pred_none")
    with pytest.raises(ValueError, match="strategy must be one of"):
        select_frames(ds, "coreset", 4, "pred_m")
    with pytest.raises(ValueError, match="needs pred_field"):
        select_frames(ds, "margin", 4)


def test_the_select_job_tags_frames_and_saves_review_views(ds, tmp_path):
    from sportbench.runs import run_job
    out = run_job("select", {"dataset": ds.name, "strategy": "ball_first", "budget": 6, "tag": "job_review"}, runs_dir=tmp_path, progress=False)
    ds.reload()
    assert len(ds.match_tags("job_review")) == 6 and {"m_ball_band", "m_no_ball"} <= set(ds.list_saved_views())
    assert "ball_first: 6 frames tagged 'job_review'" in out.read_text()
