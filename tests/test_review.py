"""Review: the saved views hold what their names say, the notebook panel writes what a reviewer accepts, the App serves the dataset."""
import os, re, shutil, socket, subprocess, sys, time, urllib.request
from pathlib import Path
import numpy as np
import pytest
from helpers import bundled_sample_dataset


@pytest.fixture(scope="module")
def frames():
    "The bundled real sample with its truth, and a model's boxes in `pred_m` (jittered truth, unsure balls, a ghost ball)."
    from sportbench.store import connect
    fo = connect()
    ds = bundled_sample_dataset("t-review")
    rng = np.random.default_rng(2)
    preds = []
    for t in ds.values("ground_truth"):
        dets = [fo.Detection(label=d.label, bounding_box=list(np.array(d.bounding_box) + [*rng.normal(0, 0.001, 2), 0, 0]),
                             confidence=float(rng.uniform(0.02, 0.5) if d.label == "ball" else rng.uniform(0.2, 0.95)))
                for d in t.detections if rng.random() > 0.15]
        dets.append(fo.Detection(label="ball", bounding_box=[*rng.uniform(0.1, 0.8, 2), 0.006, 0.01], confidence=float(rng.uniform(0.05, 0.5))))
        preds.append(fo.Detections(detections=dets))
    ds.set_values("pred_m", preds)
    yield ds
    ds.delete()


def test_saved_views_hold_what_their_names_say(frames):
    from fiftyone import ViewField as F
    from sportbench.review import save_review_views
    sizes = save_review_views(frames, "pred_m", band=(0.1, 0.4), threshold=0.3)
    band = frames.load_saved_view("m_ball_band")
    expected = frames.match(F("pred_m.detections").filter((F("label") == "ball") & (F("confidence") >= 0.1) & (F("confidence") <= 0.4)).length() > 0)
    assert sorted(band.values("id")) == sorted(expected.values("id")) and sizes["m_ball_band"] == len(expected) > 0
    assert set(band.distinct("pred_m.detections.label")) == {"ball"}
    no_ball = frames.load_saved_view("m_no_ball")
    for labels, confs in zip(no_ball.values("pred_m.detections.label"), no_ball.values("pred_m.detections.confidence")):
        assert not any(l == "ball" and c >= 0.1 for l, c in zip(labels, confs))
    disagree = frames.load_saved_view("m_disagree")
    assert 0 < len(disagree) <= len(frames)
    # a frame outside the view agrees: every truth box found, no prediction at 0.3 or above unmatched
    for s in frames.exclude(disagree.values("id")):
        assert s.m_review_fp == 0 and s.m_review_fn == 0
    for s in disagree:
        assert s.m_review_fp + s.m_review_fn > 0


def test_review_panel_writes_what_the_reviewer_accepts(frames):
    from sportbench.review import ReviewPanel
    from sportbench.select import ANNOTATED_TAG, REVIEW_TAG
    picked = frames.take(3, seed=1).values("id")
    saved_truth = frames.select(picked).values("ground_truth")
    frames.select(picked).set_values("ground_truth", [None] * 3)
    frames.select(picked).tag_samples(REVIEW_TAG)
    try:
        panel = ReviewPanel(frames, "pred_m", threshold=0.3, reviewer="ana")
        assert len(panel.ids) == 3 and panel.index == 0
        ticked = tuple(i for i, d in enumerate(panel.sample.pred_m.detections) if d.confidence >= 0.3)
        assert panel.boxes.value == ticked and panel.image.value[:2] == b"\xff\xd8"
        first = panel.ids[0]
        panel.boxes.value = ticked[:2]
        panel.buttons["accept"].click()
        s = frames[first]
        assert [(d.label, d.bounding_box) for d in s.ground_truth.detections] == [(s.pred_m.detections[i].label, s.pred_m.detections[i].bounding_box) for i in ticked[:2]]
        assert (s.review_status, s.reviewed_by, s.annotation_source) == ("accepted", "ana", "review")
        assert s.ground_truth.detections[0].annotation_ref == "pred_m by ana"
        assert ANNOTATED_TAG in s.tags and REVIEW_TAG not in s.tags and panel.index == 1
        panel.buttons["reject"].click()
        s2 = frames[panel.ids[1]]
        assert (s2.review_status, s2.ground_truth) == ("rejected", None) and "rejected" in s2.tags and REVIEW_TAG not in s2.tags
        panel.buttons["previous"].click(); panel.buttons["previous"].click()
        panel.boxes.value = ticked[:2]
        assert panel.accept() == 0 and len(frames[first].ground_truth.detections) == 2  # accepting again adds nothing
    finally:
        frames.select(picked).set_values("ground_truth", saved_truth)
        frames.untag_samples([REVIEW_TAG, ANNOTATED_TAG, "rejected"])


def test_launch_app_names_what_is_missing(frames):
    from sportbench.core import BadInputError
    from sportbench.review import launch_app
    with pytest.raises(BadInputError, match="no such dataset"):
        launch_app("no-such-dataset-here")
    with pytest.raises(BadInputError, match="no saved view 'nope'"):
        launch_app(frames.name, view="nope")


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _page_text(html: str) -> str:
    body = re.sub(r"<(style|script)\b.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body))


# the session's ServerService, which found our server running and started none, fails in __del__ stopping a child it never had
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.skipif(_chromium() is None, reason="no chromium: `apt-get install -y chromium` (Debian) to check the App page")
def test_the_app_shows_the_dataset_in_headless_chromium(frames):
    "The FiftyOne App server for our database, a session from `launch_app` on the dataset, the page rendered by headless Chromium."
    import fiftyone as fo
    from sportbench.review import launch_app
    port = _free_port()
    server = subprocess.Popen([sys.executable, str(Path(fo.__file__).parent / "server" / "main.py"), "--port", str(port), "--address", "127.0.0.1"],
                              env={**os.environ, "FIFTYONE_DO_NOT_TRACK": "true"}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 240  # the server takes seconds on an idle machine, a minute or more on a busy one
        while True:
            try: urllib.request.urlopen(f"http://127.0.0.1:{port}/fiftyone", timeout=3).read(); break
            except OSError:
                if server.poll() is not None: pytest.fail(f"App server exited: {server.stderr.read().decode()[-2000:]}")
                if time.monotonic() > deadline: pytest.fail("App server did not answer in 240 s")
                time.sleep(1)
        session = launch_app(frames.name, port=port, address="127.0.0.1", remote=True)  # finds the server running, points it at the dataset
        page = subprocess.run([_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--virtual-time-budget=60000",
                               "--dump-dom", f"http://127.0.0.1:{port}/datasets/{frames.name}"], capture_output=True, text=True, timeout=300)
        text = _page_text(page.stdout)
        assert frames.name in text, text[:2000]
        assert re.search(rf"\b{len(frames)} samples\b", text), text[:2000]  # the App counted the dataset's samples
        assert "match_id" in text and "ground_truth" in text  # and lists its fields
        session.close()
    finally:
        server.terminate()
        server.wait(30)
