"""CVAT round trips: a bundle out, an annotation export back, nothing lost, nothing doubled; the live path when a server is set."""
import json, os, shutil, uuid, zipfile
import xml.etree.ElementTree as ET
from pathlib import Path
import numpy as np
import pytest

TASK = ("player", "ball")


@pytest.fixture
def ds(dataset_name):
    "The bundled real sample; its truth copied into `pred_m` with confidences, ground truth empty."
    from sportbench.core import bundled_data
    from sportbench.formats import import_yolo
    from sportbench.store import get_dataset
    ds = get_dataset(dataset_name)
    import_yolo(ds, bundled_data("football_players_sample"))
    ds.clone_sample_field("ground_truth", "pred_m")
    for s in ds.iter_samples(autosave=True):
        for i, d in enumerate(s.pred_m.detections): d.confidence = 0.2 + 0.79 * ((i * 37) % 100) / 100
    ds.set_values("ground_truth", [None] * len(ds))
    return ds


def _boxes(view, field="ground_truth"):
    return [sorted((d.label, tuple(d.bounding_box)) for d in (s[field].detections if s[field] else [])) for s in view]


def _pre(view):
    return [sorted((d.label, tuple(d.bounding_box)) for d in s.pred_m.detections if d.label in TASK) for s in view]


def test_unchanged_round_trip_gives_back_the_same_boxes_bit_for_bit(ds, tmp_path):
    from sportbench.cvat import export_cvat_bundle, import_annotations
    view = ds.sort_by("filepath").limit(6)
    bundle = export_cvat_bundle(view, tmp_path / "b", "pred_m")
    n = sum(len(b) for b in _pre(view))
    assert n > 50 and len(list((bundle / "images").iterdir())) == 6
    counts = import_annotations(ds, bundle / "annotations.xml", reference_field="pred_m")
    assert (counts["added"], counts["moved"], counts["deleted"], counts["frames_changed"]) == (n, 0, 0, 6)
    assert _boxes(view) == _pre(view)
    s = view.first()
    assert (s.annotation_source, s.annotation_ref) == ("cvat-file", str((bundle / "annotations.xml").resolve()))
    assert s.ground_truth.detections[0].annotation_source == "cvat-file" and "annotated" in s.tags


def test_without_the_reference_field_unchanged_boxes_are_within_a_hundredth_of_a_pixel(ds, tmp_path):
    from sportbench.cvat import export_cvat_bundle, import_annotations, to_pixels
    view = ds.sort_by("filepath").limit(3)
    bundle = export_cvat_bundle(view, tmp_path / "b", "pred_m", min_confidence=0.5)
    import_annotations(ds, bundle / "annotations.xml")
    for s in view:
        want = sorted((d.label, *to_pixels(d.bounding_box, 1920, 1080)) for d in s.pred_m.detections if d.label in TASK and d.confidence >= 0.5)
        got = sorted((d.label, *to_pixels(d.bounding_box, 1920, 1080)) for d in s.ground_truth.detections)
        assert [w[0] for w in want] == [g[0] for g in got]
        assert np.abs(np.array([w[1:] for w in want]) - np.array([g[1:] for g in got])).max() <= 0.005 + 1e-9


def test_moves_deletes_and_additions_land_exactly_and_twice_changes_nothing(ds, tmp_path):
    from sportbench.cvat import export_cvat_bundle, import_annotations, to_pixels
    view = ds.sort_by("filepath").limit(4)
    bundle = export_cvat_bundle(view, tmp_path / "b", "pred_m")
    import_annotations(ds, bundle / "annotations.xml", reference_field="pred_m")
    before = {s.id: s.ground_truth.detections for s in view}
    tree = ET.parse(bundle / "annotations.xml")
    image = tree.getroot().findall("image")[1]
    boxes = image.findall("box")
    moved, deleted = boxes[0], boxes[1]
    for k, dv in (("xtl", 0.37), ("xbr", 0.37), ("ytl", -12.5), ("ybr", -12.5)): moved.set(k, f"{float(moved.get(k)) + dv:.2f}")
    image.remove(deleted)
    ET.SubElement(image, "box", label="ball", source="manual", occluded="0", xtl="100.25", ytl="200.75", xbr="111.00", ybr="212.01", z_order="0")
    tree.write(tmp_path / "edited.xml")
    counts = import_annotations(ds, tmp_path / "edited.xml", reference_field="pred_m")
    assert {k: counts[k] for k in ("moved", "added", "deleted", "frames_changed")} == {"moved": 1, "added": 1, "deleted": 1, "frames_changed": 1}
    sid = [s.id for s in view][1]
    got = sorted((d.label, *to_pixels(d.bounding_box, 1920, 1080)) for d in ds[sid].ground_truth.detections)
    want = sorted((b.get("label"), *(float(b.get(k)) for k in ("xtl", "ytl", "xbr", "ybr"))) for b in image.findall("box"))
    assert [g[0] for g in got] == [w[0] for w in want]
    assert np.abs(np.array([g[1:] for g in got]) - np.array([w[1:] for w in want])).max() <= 0.005 + 1e-9  # the file, to its 2 decimals
    for edited in (moved, image.findall("box")[-1]):  # edited boxes land exactly where the file puts them
        px = np.array([float(edited.get(k)) for k in ("xtl", "ytl", "xbr", "ybr")])
        assert any(g[0] == edited.get("label") and np.abs(np.array(g[1:]) - px).max() < 1e-6 for g in got)
    moved_det = next(d for d in ds[sid].ground_truth.detections if d.annotation_source == "cvat-file" and d.label == moved.get("label")
                     and abs(to_pixels(d.bounding_box, 1920, 1080)[0] - float(moved.get("xtl"))) < 1e-6)
    assert moved_det.id in {d.id for d in before[sid]}  # a move keeps the box's identity
    for s in view:
        if s.id != sid: assert [(d.id, d.bounding_box) for d in s.ground_truth.detections] == [(d.id, d.bounding_box) for d in before[s.id]]
    snapshot = _boxes(view)
    again = import_annotations(ds, tmp_path / "edited.xml", reference_field="pred_m")
    assert (again["added"], again["moved"], again["deleted"], again["frames_changed"]) == (0, 0, 0, 0)
    assert _boxes(view) == snapshot


def test_cvat_zip_and_coco_exports_import_too(ds, tmp_path):
    from sportbench.cvat import export_cvat_bundle, import_annotations, read_annotations
    view = ds.sort_by("filepath").limit(3)
    bundle = export_cvat_bundle(view, tmp_path / "b", "pred_m")
    classes, frames = read_annotations(bundle / "annotations.xml")
    # what CVAT's "COCO 1.0" export holds: pixel floats, categories by id, in a zip under annotations/
    cats = {c: i + 1 for i, c in enumerate(classes)}
    coco = {"categories": [{"id": i, "name": c} for c, i in cats.items()], "images": [], "annotations": []}
    for k, (name, (w, h, boxes)) in enumerate(frames.items(), 1):
        coco["images"].append({"id": k, "file_name": name, "width": w, "height": h})
        coco["annotations"] += [{"id": len(coco["annotations"]) + 1, "image_id": k, "category_id": cats[l], "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]],
                                 "area": float((b[2] - b[0]) * (b[3] - b[1])), "iscrowd": 0} for l, b in boxes]
    with zipfile.ZipFile(tmp_path / "coco.zip", "w") as z: z.writestr("annotations/instances_default.json", json.dumps(coco))
    first = import_annotations(ds, tmp_path / "coco.zip", reference_field="pred_m")
    assert first["added"] == sum(len(b) for b in _pre(view)) and _boxes(view) == _pre(view)
    assert import_annotations(ds, bundle / "annotations.zip", reference_field="pred_m")["frames_changed"] == 0


def test_frames_not_in_the_dataset_stop_the_import_before_anything_is_written(ds, tmp_path):
    from sportbench.core import BadInputError
    from sportbench.cvat import export_cvat_bundle, import_annotations
    bundle = export_cvat_bundle(ds.sort_by("filepath").limit(2), tmp_path / "b", "pred_m")
    xml = (bundle / "annotations.xml").read_text()
    name = ET.fromstring(xml.encode()).find("image").get("name")
    (tmp_path / "other.xml").write_text(xml.replace(name, "frame_from_another_match.jpg"))
    with pytest.raises(BadInputError, match=r"other.xml \(image 'frame_from_another_match.jpg'\): 1 frame\(s\) are not in dataset"):
        import_annotations(ds, tmp_path / "other.xml")
    (tmp_path / "resized.xml").write_text(xml.replace('width="1920"', 'width="1280"', 1))
    with pytest.raises(BadInputError, match="1920x1080 in the dataset"):
        import_annotations(ds, tmp_path / "resized.xml")
    assert ds.count("ground_truth") == 0


def test_a_bundle_refuses_frames_whose_names_clash(ds, tmp_path):
    from sportbench.core import BadInputError
    from sportbench.cvat import export_cvat_bundle
    from sportbench.store import add_samples_once
    import fiftyone as fo
    src = Path(ds.first().filepath)
    (tmp_path / "copy").mkdir()
    shutil.copy(src, tmp_path / "copy" / src.name)
    add_samples_once(ds, [fo.Sample(filepath=str(tmp_path / "copy" / src.name))])
    with pytest.raises(BadInputError, match="appear more than once"):
        export_cvat_bundle(ds, tmp_path / "b", "pred_m")


CVAT_SET = all(os.environ.get(v) for v in ("SPORTBENCH_CVAT_URL", "SPORTBENCH_CVAT_USERNAME", "SPORTBENCH_CVAT_PASSWORD"))


@pytest.mark.skipif(not CVAT_SET, reason="no CVAT server: set SPORTBENCH_CVAT_URL, SPORTBENCH_CVAT_USERNAME and SPORTBENCH_CVAT_PASSWORD")
def test_live_round_trip_through_a_cvat_server(ds):
    "A task with player and ball and pre-annotations; a job edited through CVAT's API (move, delete, add); corrections merged with provenance."
    from sportbench.cvat import load_from_cvat, send_to_cvat, to_pixels
    view = ds.sort_by("filepath").limit(3)
    key = f"live_{uuid.uuid4().hex[:6]}"
    results = send_to_cvat(view, key, pre_field="pred_m", min_confidence=0.0)
    try:
        api = results.connect_to_api()
        task_id = results.task_ids[0]
        job_id = results.job_ids[task_id][0]
        anns = api.get(api.job_annotation_url(job_id)).json()
        shapes = anns["shapes"]
        n = len(shapes)
        assert n == sum(len(b) for b in _pre(view))
        moved = shapes[0]
        moved["points"] = [moved["points"][0] + 7.25, moved["points"][1], moved["points"][2] + 7.25, moved["points"][3]]
        deleted = shapes.pop(1)
        added = {k: v for k, v in shapes[-1].items() if k not in ("id", "attributes", "elements")}
        added.update(points=[10.5, 20.25, 30.75, 60.0], attributes=[])
        shapes.append(added)
        api.put(api.job_annotation_url(job_id), json={**anns, "shapes": shapes})
        counts = load_from_cvat(ds, key)
        assert (counts["added"], counts["moved"], counts["deleted"]) == (n, 0, 0)  # the frames had no ground truth yet
        dets = [d for s in view for d in s.ground_truth.detections]
        assert len(dets) == n  # one deleted, one added
        all_px = [tuple(np.round(to_pixels(d.bounding_box, 1920, 1080), 2)) for d in dets]
        assert (10.5, 20.25, 30.75, 60.0) in all_px and tuple(np.round(moved["points"], 2)) in all_px
        pre = {(d.label, tuple(d.bounding_box)) for s in view for d in s.pred_m.detections}
        assert sum((d.label, tuple(d.bounding_box)) in pre for d in dets) == n - 2  # untouched boxes: the pre-annotations, exactly
        assert all(d.annotation_source == "cvat" and f"task {task_id} jobs [{job_id}" in d.annotation_ref for d in dets)
        assert all(s.annotation_source == "cvat" and "annotated" in s.tags for s in view)
        again = load_from_cvat(ds, key)
        assert (again.get("added", 0), again.get("deleted", 0)) == (0, 0)
    finally:
        results.cleanup()
        ds.delete_annotation_run(key)
