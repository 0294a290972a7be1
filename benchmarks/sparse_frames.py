"""Fetching 1% of a clip's frames with the sparse reader vs decoding the whole clip.

    .venv/bin/python benchmarks/sparse_frames.py [--seconds 60] [--gop 12] [--repeats 5]

The clip is 60 s of real broadcast footage when ../shared/data/dfl_clip_08fd33_4_small/08fd33_4.mp4 is present (its 169 frames
played forward and back, 848x478), else a synthetic match (sportbench.synth) of the same length, re-encoded with H.264 at a
broadcast GOP (a keyframe every `--gop` frames, two B-frames, no scene-cut keyframes). 1% of the frames, scattered at random,
are fetched with `sportbench.video.read_frames` (its probe of the packets included); the baseline decodes every frame in order
and converts only the wanted ones to RGB (the cheapest way to get them by decoding the whole clip; converting every frame, as a
naive reader does, is timed too and reported for reference). Both run in this process, one after the other, best of
`--repeats`; the ratio to the cheapest full decode is printed last.
"""
from __future__ import annotations
import argparse, random, time
from pathlib import Path
import av
import numpy as np
from sportbench.core import home_path, shared_data
from sportbench.video import probe_video, read_frames


def _source_frames(seconds: float, fps: int):
    "Frames to encode: the real DFL clip ping-ponged, or a small synthetic match; and where they came from."
    real = shared_data("dfl_clip_08fd33_4_small", "08fd33_4.mp4")
    n = round(seconds * fps)
    if real is not None:
        with av.open(str(real)) as c: clip = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
        loop = clip + clip[-2:0:-1]
        return (loop[i % len(loop)] for i in range(n)), f"real broadcast ({real.name}, ping-pong)"
    from sportbench.synth import SynthConfig, generate_match, render_frame
    match = generate_match(SynthConfig(width=640, height=360, duration_s=seconds, fps=fps, ball_diameter_px=6, seed=0))
    return (render_frame(match, i) for i in range(n)), "synthetic match (sportbench.synth)"


def make_clip(seconds: float = 60, fps: int = 25, gop: int = 12) -> tuple[Path, str]:
    "An H.264 clip of `seconds` with a keyframe every `gop` frames and B-frames, cached under the sportbench home."
    frames, source = _source_frames(seconds, fps)
    path = home_path("benchmarks") / f"sparse_{source.split()[0]}_{seconds:g}s_gop{gop}.mp4"
    if path.exists(): return path, source
    tmp = path.with_suffix(".tmp.mp4")
    with av.open(str(tmp), "w") as out:
        st = None
        for img in frames:
            if st is None:
                st = out.add_stream("libx264", rate=fps)
                st.width, st.height, st.pix_fmt = img.shape[1] // 2 * 2, img.shape[0] // 2 * 2, "yuv420p"
                st.codec_context.gop_size = gop
                st.options = {"bf": "2", "crf": "23", "preset": "veryfast", "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0"}
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img[:st.height, :st.width]), format="rgb24")
            for p in st.encode(frame): out.mux(p)
        for p in st.encode(): out.mux(p)
    tmp.rename(path)
    return path, source


def full_decode(path, wanted: set[int], convert_all: bool = False) -> dict[int, np.ndarray]:
    "Decode every frame in order; convert the wanted ones (or all) to RGB, keep the wanted ones."
    out = {}
    with av.open(str(path)) as c:
        st = c.streams.video[0]
        st.thread_type = "AUTO"
        for i, f in enumerate(c.decode(st)):
            if convert_all or i in wanted: rgb = f.to_ndarray(format="rgb24")
            if i in wanted: out[i] = rgb
    return out


def best_of(fns: dict, repeats: int) -> tuple[dict, dict]:
    "Best time of each function, running them in turn `repeats` times (so a busy spell on a shared machine hits all of them)."
    times, results = {k: [] for k in fns}, {}
    for _ in range(repeats):
        for k, fn in fns.items():
            t = time.perf_counter(); results[k] = fn(); times[k].append(time.perf_counter() - t)
    return {k: min(v) for k, v in times.items()}, results


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--gop", type=int, default=12)
    ap.add_argument("--fraction", type=float, default=0.01)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    path, source = make_clip(args.seconds, gop=args.gop)
    info = probe_video(path)
    wanted = sorted(random.Random(0).sample(range(info.n_frames), max(1, round(args.fraction * info.n_frames))))
    t, out = best_of(dict(sparse=lambda: dict(read_frames(path, wanted)), full=lambda: full_decode(path, set(wanted)),
                          naive=lambda: full_decode(path, set(wanted), convert_all=True)), args.repeats)
    (t_sparse, t_full, t_naive), sparse, full = (t["sparse"], t["full"], t["naive"]), out["sparse"], out["full"]
    assert list(sparse) == wanted and all(np.array_equal(sparse[n], full[n]) for n in wanted), "sparse and full decode disagree"
    print(f"clip={path.name} source={source} frames={info.n_frames} size={info.width}x{info.height} "
          f"keyframes={len(info.keyframes)} wanted={len(wanted)} ({args.fraction:.0%})")
    print(f"sparse_read_s={t_sparse:.3f} full_decode_s={t_full:.3f} full_decode_rgb_every_frame_s={t_naive:.3f} (best of {args.repeats})")
    print(f"ratio_vs_full_decode_rgb_every_frame={t_naive / t_sparse:.1f}")
    print(f"ratio_vs_full_decode={t_full / t_sparse:.1f}")


if __name__ == "__main__":
    main()
