"""Inference export: ONNX through rfdetr matches PyTorch (onnxruntime), CPU inference is left in fp32 uncompiled, and on a GPU
half precision is applied (skipped without one)."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def model():
    from rfdetr import RFDETRNano
    return RFDETRNano(pretrain_weights=None, num_classes=4, resolution=128, num_queries=50, num_select=50, group_detr=2, device="cpu")


def _frames(n=2):
    return [np.random.default_rng(i).integers(0, 255, (216, 384, 3), dtype=np.uint8) for i in range(n)]


def test_cpu_inference_stays_fp32_and_uncompiled(model):
    from sportbench.deploy import optimize_for_inference
    before = model.predict(_frames(), threshold=0.0)
    assert optimize_for_inference(model, _frames(), device="cpu") == {"device": "cpu", "dtype": "float32", "compiled": False}
    after = model.predict(_frames(), threshold=0.0)
    np.testing.assert_allclose(after[0].confidence, before[0].confidence)


@pytest.mark.slow
def test_onnx_export_matches_pytorch(model, tmp_path):
    from sportbench.deploy import export_onnx, onnx_outputs, torch_outputs
    path = export_onnx(model, tmp_path)
    assert path.suffix == ".onnx" and path.stat().st_size > 1e6
    x = np.random.default_rng(0).normal(size=(1, 3, 128, 128)).astype(np.float32)
    ref, got = torch_outputs(model, x), onnx_outputs(path, x)
    for key in ("dets", "labels"):
        np.testing.assert_allclose(got[key], ref[key], atol=1e-3, rtol=1e-3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_inference_is_half_precision():
    from rfdetr import RFDETRNano
    from sportbench.deploy import optimize_for_inference
    gpu = RFDETRNano(pretrain_weights=None, num_classes=4, resolution=128, num_queries=50, num_select=50, group_detr=2, device="cuda")
    ref = gpu.predict(_frames(), threshold=0.0)
    applied = optimize_for_inference(gpu, _frames())
    assert applied["dtype"] == "torch.float16" and "compiled_s" in applied
    half = gpu.predict(_frames(), threshold=0.0)
    assert abs(float(half[0].confidence.max()) - float(ref[0].confidence.max())) < 2e-2
