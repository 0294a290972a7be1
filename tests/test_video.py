"""Video ingest: the sparse reader is frame-exact, samplers pick the right frames, ingest is idempotent, bad videos are named."""
import random
import numpy as np
import pytest
from helpers import decode_all, write_numbered_video
from sportbench import video
from sportbench.core import BadInputError


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return write_numbered_video(tmp_path_factory.mktemp("video") / "match_a.mp4")


@pytest.mark.parametrize("seed", range(4))
def test_sparse_reader_matches_sequential_decode(clip, seed):
    full = decode_all(clip)
    wanted = sorted(random.Random(seed).sample(range(len(full)), 12))
    got = dict(video.read_frames(clip, wanted))
    assert list(got) == wanted
    for n in wanted: assert np.array_equal(got[n], full[n]), f"frame {n} differs"


def test_sparse_reader_decodes_only_what_it_needs(clip, monkeypatch):
    import av
    decoded = []
    real = av.container.InputContainer.decode
    def counting(self, *a, **k):
        for f in real(self, *a, **k): decoded.append(f.pts); yield f
    monkeypatch.setattr(av.container.InputContainer, "decode", counting)
    list(video.read_frames(clip, [3, 47]))
    assert len(decoded) < 30, f"decoded {len(decoded)} frames for 2 requested"


def test_probe_and_timestamps(clip):
    info = video.probe_video(clip)
    assert (info.n_frames, info.fps, info.width, info.height) == (90, 25.0, 192, 108)
    assert info.timestamp(50) == pytest.approx(2.0)


def test_event_windows():
    centres = video.times_to_frames([1.0, 3.0], fps=25)
    assert video.sample_around(centres, range(-2, 3), 90) == [23, 24, 25, 26, 27, 73, 74, 75, 76, 77]


def test_ingest_every_n_is_idempotent_and_png_lossless(clip, dataset, tmp_path):
    ids = video.ingest_video(dataset, clip, step=30, match_id="m1", image_format="png", out_dir=tmp_path / "f")
    assert len(ids) == 3 and dataset.values("frame_number") == [0, 30, 60]
    assert video.ingest_video(dataset, clip, step=30, match_id="m1", image_format="png", out_dir=tmp_path / "f") == []
    s = dataset.match({"frame_number": 60}).first()
    assert (s.match_id, s.clip_id, s.timestamp) == ("m1", "match_a", pytest.approx(2.4))
    assert s.source_video.endswith("match_a.mp4")
    import cv2
    assert np.array_equal(cv2.imread(s.filepath)[..., ::-1], decode_all(clip)[60])


def test_jpeg_quality_changes_size(clip, dataset, tmp_path):
    video.ingest_video(dataset, clip, [10], clip_id="hi", jpeg_quality=95, out_dir=tmp_path / "hi")
    video.ingest_video(dataset, clip, [10], clip_id="lo", jpeg_quality=30, out_dir=tmp_path / "lo")
    assert (tmp_path / "lo" / "000010.jpg").stat().st_size < (tmp_path / "hi" / "000010.jpg").stat().st_size


def test_corrupt_video_is_named(tmp_path, dataset):
    bad = tmp_path / "garbage.mp4"
    bad.write_bytes(np.random.default_rng(0).integers(0, 255, 50_000, dtype=np.uint8).tobytes())
    with pytest.raises(BadInputError, match="garbage.mp4"):
        video.ingest_video(dataset, bad, step=5)
    assert len(dataset) == 0


def test_truncated_video_is_named(clip, tmp_path, dataset):
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])
    with pytest.raises(BadInputError, match="cut.mp4"):
        video.ingest_video(dataset, cut, step=5)
    assert len(dataset) == 0


def test_frame_beyond_the_end_is_named(clip):
    with pytest.raises(BadInputError, match="video has 90"):
        list(video.read_frames(clip, [5, 500]))
