"""COCO box evaluation of 2,000 images: sportbench's (faster-coco-eval) vs pycocotools, on the same inputs.

    .venv/bin/python benchmarks/coco_eval.py [--images 2000] [--repeats 2] [--seed 0]

The ground truth is real: the boxes of the broadcast frames in ../shared/data/football_players_1080p_yolo (all splits; the bundled
24-frame sample when it is absent), frame after frame, repeated until there are `--images` images (1920x1080, four classes, about
28 boxes each, most of them small). The predictions are made from that truth by `sportbench.evaluate.perturb_detections`: boxes jittered
by 8% of their size, 15% dropped, three ghost boxes per image, random scores; a different seed per pass over the frames, so repeated
frames get different predictions.

Both evaluations take the same ground-truth dict and result list and do the whole job (index, load results, per-image matching,
accumulation, summary): `sportbench.evaluate.run_coco_eval` (faster-coco-eval's C++ COCOeval_faster) and pycocotools' COCO and
COCOeval. They run in this process, alternately, best of `--repeats` wall-clock times. The twelve summary numbers and the whole
precision array must agree to 1e-12 (they differ only by float summation order, ~1e-17), or the script fails. The last line is
`ratio_vs_pycocotools=X` (pycocotools time / ours).
"""
from __future__ import annotations
import argparse, contextlib, io, json, sys, time
from pathlib import Path
import numpy as np
from sportbench.core import bundled_data, shared_data
from sportbench.evaluate import coco_ground_truth, coco_results, perturb_detections, run_coco_eval, yolo_detections
from sportbench.formats import read_yolo_classes


def real_truth(n_images: int):
    "Per image: size and true boxes, cycling through the real frames' label files; and the classes and where they came from."
    root = shared_data("football_players_1080p_yolo") or bundled_data("football_players_sample")
    files = sorted(root.glob("*/labels/*.txt"))
    truth = [yolo_detections(p, 1920, 1080) for p in files]
    return [(1920, 1080)] * n_images, [truth[i % len(truth)] for i in range(n_images)], read_yolo_classes(root), f"{root.name} ({len(files)} frames)"


def pycocotools_eval(gt: dict, results: list):
    "pycocotools' COCO and COCOeval, the whole job."
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(); coco.dataset = gt; coco.createIndex()
        ev = COCOeval(coco, coco.loadRes(results), "bbox")
        ev.evaluate(); ev.accumulate(); ev.summarize()
    return ev


def timed(fn, *args):
    t = time.perf_counter(); out = fn(*args)
    return time.perf_counter() - t, out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    sizes, gts, classes, source = real_truth(args.images)
    n_frames = int(source.split("(")[1].split()[0])
    preds = []
    for start in range(0, args.images, n_frames):
        preds += perturb_detections(gts[start:start + n_frames], sizes[start:start + n_frames], seed=args.seed + start)
    gt, results = coco_ground_truth(sizes, gts, classes), coco_results(preds)
    print(f"truth: {source}; {len(gt['images'])} images, {len(gt['annotations'])} true boxes, {len(results)} detections")
    ours_t, ref_t = [], []
    for _ in range(args.repeats):
        t, ours = timed(run_coco_eval, gt, results); ours_t.append(t)
        t, ref = timed(pycocotools_eval, json.loads(json.dumps(gt)), json.loads(json.dumps(results))); ref_t.append(t)
    diff = max(np.abs(ours.stats[:12] - ref.stats).max(), np.abs(ours.eval["precision"] - ref.eval["precision"]).max())
    print("stats (ours):        " + " ".join(f"{v:.6f}" for v in ours.stats[:12]))
    print("stats (pycocotools): " + " ".join(f"{v:.6f}" for v in ref.stats))
    if diff > 1e-12: sys.exit(f"stats differ: max |ours - pycocotools| = {diff:.3g}")
    print(f"identical stats: yes (max |difference| {diff:.1e}, float rounding)")
    print(f"sportbench (faster-coco-eval): {min(ours_t):.2f} s   pycocotools: {min(ref_t):.2f} s   (best of {args.repeats}, wall clock)")
    print(f"ratio_vs_pycocotools={min(ref_t) / min(ours_t):.2f}")


if __name__ == "__main__":
    main()
