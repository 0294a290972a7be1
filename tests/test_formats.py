"""Label ingest: the real YOLO set lands whole and split by match; bad label files are named and leave nothing behind."""
import json, shutil
from collections import Counter
from pathlib import Path
import pytest
from conftest import shared_or_skip
from sportbench import formats
from sportbench.core import BadInputError, bundled_data
from sportbench.store import GROUND_TRUTH

SAMPLE = bundled_data("football_players_sample")


def _label_counts(root):
    names = formats.read_yolo_classes(root)
    return Counter(names[int(l.split()[0])] for p in Path(root).glob("*/labels/*.txt") for l in p.read_text().splitlines() if l.split())


def test_full_real_set_counts_and_match_splits(dataset):
    root = shared_or_skip("football_players_1080p_yolo")
    formats.import_yolo(dataset, root)
    assert len(dataset) == 318
    assert dataset.count_values(f"{GROUND_TRUTH}.detections.label") == dict(_label_counts(root))
    formats.assign_splits(dataset, seed=1)
    owners = {}
    for split in formats.SPLITS:
        for m in dataset.match_tags(split).distinct("match_id"):
            assert owners.setdefault(m, split) == split, f"match {m} in {owners[m]} and {split}"
    assert len(owners) == 13 and sum(dataset.count_sample_tags().values()) == 318


def test_class_map_merges_and_drops(dataset):
    formats.import_yolo(dataset, SAMPLE, class_map="goalkeeper=player,referee=-")
    counts, raw = dataset.count_values(f"{GROUND_TRUTH}.detections.label"), _label_counts(SAMPLE)
    assert counts == {"ball": raw["ball"], "player": raw["player"] + raw["goalkeeper"]}


def test_frame_fields_from_names(dataset):
    formats.import_yolo(dataset, SAMPLE)
    s = dataset.first()
    assert len(s.match_id) == 6 and s.clip_id.startswith(s.match_id) and isinstance(s.frame_number, int)
    assert s.metadata.width == 1920 and s.source_split in ("train", "valid", "test")


def _broken_copy(tmp_path, text):
    root = tmp_path / "yolo"
    shutil.copytree(SAMPLE, root)
    txt = sorted(root.glob("*/labels/*.txt"))[3]
    txt.write_text(txt.read_text() + "\n" + text)
    return root, txt


@pytest.mark.parametrize("line, message", [
    ("2 0.5 0.5 0.1", "expected 5 fields"),
    ("9 0.5 0.5 0.1 0.1", "unknown class id 9"),
    ("2 0.99 0.5 0.1 0.1", "box outside the image"),
    ("2 0.5 abc 0.1 0.1", "not numbers"),
])
def test_bad_yolo_line_named_and_nothing_written(tmp_path, dataset, line, message):
    root, txt = _broken_copy(tmp_path, line)
    n_lines = len(txt.read_text().splitlines())
    with pytest.raises(BadInputError, match=message) as err:
        formats.import_yolo(dataset, root)
    assert txt.name in str(err.value) and f"line {n_lines}" in str(err.value)
    assert len(dataset) == 0
    ids = formats.import_yolo(dataset, root, on_error="skip")
    assert len(ids) == 23 and not dataset.match({"filepath": {"$regex": txt.stem}})


def test_label_without_image(tmp_path, dataset):
    root, txt = _broken_copy(tmp_path, "")
    img = root / txt.parent.parent.name / "images" / f"{txt.stem}.jpg"
    img.unlink()
    with pytest.raises(BadInputError, match="label file without an image"):
        formats.import_yolo(dataset, root)
    assert len(dataset) == 0


def test_coco_missing_category_named(tmp_path, dataset):
    formats.import_yolo(dataset, SAMPLE)
    out = formats.export_labels(dataset.limit(3), tmp_path / "coco", "coco")
    coco = json.loads((out / "labels.json").read_text())
    dropped = coco["categories"].pop(0)
    (out / "labels.json").write_text(json.dumps(coco))
    with pytest.raises(BadInputError, match=f"category_id {dropped['id']} is not in 'categories'") as err:
        formats.import_coco(dataset, out / "labels.json", out / "data")
    assert "labels.json (annotation" in str(err.value)


def test_cvat_xml_that_does_not_parse(tmp_path, dataset):
    bad = tmp_path / "annotations.xml"
    bad.write_text("<annotations>\n<image id='0' name='a.jpg' width='10' height='10'>\n<box label='ball' xtl='1'\n</annotations>")
    with pytest.raises(BadInputError, match=r"annotations.xml \(line \d+, column \d+\): XML does not parse"):
        formats.import_cvat(dataset, bad, tmp_path)
    assert len(dataset) == 0


@pytest.mark.parametrize("fmt, labels", [("coco", "labels.json"), ("cvat", "labels.xml"), ("yolo", None)])
def test_export_import_round_trip_keeps_boxes(tmp_path, dataset, dataset_name, fmt, labels):
    formats.import_yolo(dataset, SAMPLE)
    view = dataset.limit(6)
    out = formats.export_labels(view, tmp_path / fmt, fmt, classes=["ball", "goalkeeper", "player", "referee"], split="train")
    from sportbench.store import get_dataset
    back = get_dataset(dataset_name + "-back")
    if fmt == "coco": formats.import_coco(back, out / labels, out / "data")
    elif fmt == "cvat": formats.import_cvat(back, out / labels, out / "data")
    else: formats.import_yolo(back, out)  # FiftyOne writes the Ultralytics layout, images/train
    assert back.count(f"{GROUND_TRUTH}.detections") == view.count(f"{GROUND_TRUTH}.detections")
    assert back.count_values(f"{GROUND_TRUTH}.detections.label") == view.count_values(f"{GROUND_TRUTH}.detections.label")
    back.delete()


def test_soccernet_ball_action_and_v2_labels():
    folder = shared_or_skip("soccernet_event_labels")
    ball = formats.load_events(folder / "soccernet_ball_action_spotting_test_annotations.json")
    assert len(ball) == 3980 and (ball["label"] == "HEADER").sum() == 182 and ball["game"].nunique() == 2
    v2 = formats.events_to_frames(formats.load_events(folder / "Labels-v2_2015-05-17_ManUtd_1-1_Arsenal.json"), fps=25)
    assert len(v2) == 173 and set(v2["half"]) == {1, 2}
    row = v2[v2["time_s"] == 76.376].iloc[0]
    assert row["label"] == "Ball out of play" and row["frame"] == 1909
