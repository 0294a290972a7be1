"""Small real inputs the tests share."""
from pathlib import Path
import av
import numpy as np


def write_numbered_video(path, n=90, fps=25, size=(192, 108), gop=15, bframes=2, codec="libx264"):
    "An H.264 clip whose frame i shows a bar at x = 2*i and noise seeded by i, so that any frame mix-up changes pixels."
    with av.open(str(path), "w") as out:
        st = out.add_stream(codec, rate=fps)
        st.width, st.height, st.pix_fmt = size[0], size[1], "yuv420p"
        st.codec_context.gop_size = gop
        st.options = {"bf": str(bframes), "crf": "20"}
        for i in range(n):
            img = np.random.default_rng(i).integers(0, 60, (size[1], size[0], 3), dtype=np.uint8)
            img[:, (2 * i) % size[0]:(2 * i) % size[0] + 3] = 255
            for p in st.encode(av.VideoFrame.from_ndarray(img, format="rgb24")): out.mux(p)
        for p in st.encode(): out.mux(p)
    return Path(path)


def decode_all(path):
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def bundled_sample_dataset(prefix: str):
    "A fresh FiftyOne dataset (unique name starting `prefix`) holding the bundled real sample with its YOLO truth."
    import uuid
    from sportbench.core import bundled_data
    from sportbench.formats import import_yolo
    from sportbench.store import get_dataset
    ds = get_dataset(f"{prefix}-{uuid.uuid4().hex[:6]}")
    import_yolo(ds, bundled_data("football_players_sample"))
    return ds
