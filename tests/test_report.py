"""sportbench.report: plots, the annotated video, a self-contained HTML report, and the evaluate job end to end."""
import re
import numpy as np
import pytest
import supervision as sv
from PIL import Image
from sportbench.core import bundled_data
from sportbench.evaluate import detection_metrics, perturb_detections, yolo_detections
from sportbench.formats import read_yolo_classes

SAMPLE = bundled_data("football_players_sample")
CLASSES = read_yolo_classes(SAMPLE)
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def metrics():
    files = sorted(SAMPLE.glob("*/labels/*.txt"))
    sizes, gts = [(1920, 1080)] * len(files), [yolo_detections(p, 1920, 1080) for p in files]
    return detection_metrics(sizes, gts, perturb_detections(gts, sizes), CLASSES, curves=True)


def test_plots_are_pngs(tmp_path, metrics):
    from sportbench.report import plot_confusion, plot_pr_curves
    png = plot_pr_curves(metrics, tmp_path / "pr.png")
    assert png.startswith(PNG) and (tmp_path / "pr.png").read_bytes() == png
    cm = np.array([[5, 1, 0], [0, 7, 2], [1, 3, 0]])
    img = Image.open(__import__("io").BytesIO(plot_confusion(cm, ["ball", "player", "(none)"])))
    assert img.size[0] > 300 and img.size[1] > 300


def test_report_is_self_contained(tmp_path, metrics):
    from sportbench.report import write_report
    worst = [("frame a: 3 false, 1 missed", np.zeros((54, 96, 3), np.uint8))]
    page = write_report(tmp_path / "r.html", metrics, "t<est>", (np.eye(2, dtype=int), ["a", "b"]), worst, {"extra": {"ghosts": 7}}).read_text()
    assert not re.search(r"""(src|href)=["']?(https?:|file:|/)""", page)              # nothing outside the file
    assert page.count('src="data:image/png;base64,') == 2 and page.count('src="data:image/jpeg;base64,') == 1
    assert "t&lt;est&gt;" in page and f"{metrics['map50']:.4f}" in page and "ghosts" in page
    assert f"{metrics['per_class']['ball']['ap50']:.4f}" in page


def test_annotated_video(tmp_path):
    import av
    from sportbench.report import write_annotated_video
    frames = [np.full((120, 160, 3), 60, np.uint8) for _ in range(10)]
    tracked = [sv.Detections(xyxy=np.array([[20, 30, 40, 90], [80 + i, 50, 86 + i, 56]], float), class_id=np.array([2, 0]),
                             tracker_id=np.array([3, 0]), data={"filled": np.array([False, i == 5])}) for i in range(10)]
    teams = [np.array([1, -1])] * 10
    video = write_annotated_video(frames, tracked, tmp_path / "v.mp4", fps=10, teams=teams)
    with av.open(str(video)) as c:
        stream = c.streams.video[0]
        decoded = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
        assert stream.codec_context.name == "h264" and float(stream.average_rate) == 10
    assert len(decoded) == 10 and decoded[0].shape == (120, 160, 3)
    person = decoded[-1][85:95, 15:45].astype(int)                               # the team-1 ellipse under the player's feet
    assert (person[..., 2] - person[..., 0]).max() > 60                           # blue (team 1's colour) was drawn
    trail = decoded[-1][50:57, 80:92].astype(int)
    assert (trail[..., 0] + trail[..., 1] - 2 * trail[..., 2]).max() > 150        # the ball's yellow trail


@pytest.mark.slow
def test_evaluate_job_end_to_end(tmp_path):
    "The papermill job: a project checkpoint on the bundled sample gives metrics.json, report.html and its plots, and the error views."
    import json, torch
    import fiftyone as fo
    from sportbench.detect import load_rfdetr, save_rfdetr
    from sportbench.runs import run_job
    torch.manual_seed(0)
    ckpt = save_rfdetr(load_rfdetr("nano", "scratch", classes=CLASSES, resolution=64, device="cpu"), tmp_path / "tiny.pth")
    out = tmp_path / "eval"
    run_job("evaluate", {"data": str(SAMPLE), "weights": str(ckpt), "out_dir": str(out), "dataset_name": "t-evaluate-job",
                         "k_worst": 2}, runs_dir=tmp_path / "runs", progress=False)
    assert {"metrics.json", "report.html", "pr_curves.png", "confusion.png"} <= {p.name for p in out.iterdir()}
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["weights_sha256"] and metrics["split"] == "test"
    assert "eval_ghost_balls" in fo.load_dataset("t-evaluate-job").list_saved_views()
    fo.delete_dataset("t-evaluate-job")
