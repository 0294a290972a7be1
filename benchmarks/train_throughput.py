"""Training throughput of sportbench's training path vs bare rfdetr `train()` with the same settings.

Same data (12 bundled frames exported by `export_for_training`, so neither path pads the epoch), same model (RF-DETR Nano
from scratch, 128 px, 50 queries), batch size, rates, epochs and evaluation. Our path adds what it is for: the sports
augmentations, ball-weighted resumable sampling, resume points, light checkpoints and MLflow logging. Both are timed by the
same Lightning callback (patched into rfdetr's `build_trainer`), over the training part of each epoch (epoch start to
validation start), and images/s = images trained / that time. Runs alternate and the best of `--repeats` is kept for each,
as the machine is shared. Prints `ratio_vs_rfdetr=X` last (target >= 0.95).

    python benchmarks/train_throughput.py [--epochs 2] [--repeats 2]
"""
import argparse, json, os, tempfile, time
from pathlib import Path

os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")


class _Clock:
    "Seconds and images of the training part of every epoch, for all trainers built while installed."
    def __init__(self): self.seconds, self.images = 0.0, 0

    def callback(self):
        from pytorch_lightning import Callback
        clock = self
        class Timer(Callback):
            def on_train_epoch_start(self, trainer, pl_module): self.t = time.perf_counter(); self.open = True
            def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx): clock.images += len(batch[1])
            def _close(self):
                if getattr(self, "open", False): clock.seconds += time.perf_counter() - self.t; self.open = False
            def on_validation_start(self, trainer, pl_module): self._close()
            def on_train_epoch_end(self, trainer, pl_module): self._close()
        return Timer()


def _install(clock):
    import rfdetr.training as rt
    original = rt.build_trainer
    def build_trainer(*args, **kwargs):
        trainer = original(*args, **kwargs)
        trainer.callbacks.append(clock.callback())
        return trainer
    rt.build_trainer = build_trainer
    return lambda: setattr(rt, "build_trainer", original)


def _config(epochs: int):
    from sportbench.config import load_config
    from sportbench.core import bundled_data
    # resume points at epoch ends only (the default): the tiny config also saves one every 2 steps, for the kill-and-resume test
    cfg = load_config(bundled_data().parent / "configs" / "tiny_cpu.yaml", {"data.max_images": {"train": 12, "val": 4, "test": 0},
                                                                           "checkpoints.resume_every_steps": 0})
    return cfg.model_copy(update={"phases": [cfg.phases[1].model_copy(update={"epochs": epochs, "lr_scale": 1.0})]})


def run_rfdetr(cfg, data_dir, out_dir) -> None:
    from rfdetr import RFDETRNano
    m, t = cfg.model, cfg.training
    model = RFDETRNano(pretrain_weights=None, num_classes=len(m.classes), resolution=m.resolution, num_queries=m.num_queries,
                       num_select=m.num_queries, group_detr=m.group_detr, device="cpu")
    model.train(dataset_dir=str(data_dir), output_dir=str(out_dir), epochs=cfg.phases[0].epochs, batch_size=t.batch_size,
                lr=t.lr, lr_encoder=t.lr_encoder, weight_decay=t.weight_decay, warmup_epochs=t.warmup_epochs, lr_scheduler="cosine",
                clip_max_norm=t.grad_clip, amp_dtype=None, multi_scale=False, scale_jitter=False, use_ema=t.ema,
                num_workers=t.num_workers, eval_backend=t.eval_backend, class_names=list(m.classes), device="cpu",
                checkpoint_interval=cfg.checkpoints.full_every, log_per_class_metrics=True, progress_bar=None)


def run_ours(cfg, view, root) -> None:
    from sportbench.train import train_model
    train_model(cfg, view=view, root=root, fresh=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="sb-train-bench-"))
    os.environ.setdefault("SPORTBENCH_HOME", str(tmp / "home"))
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{tmp / 'mlflow.db'}")
    from sportbench.core import bundled_data
    from sportbench.formats import assign_splits, import_yolo
    from sportbench.store import get_dataset
    from sportbench.train import export_for_training
    cfg = _config(args.epochs)
    ds = get_dataset("sportbench-train-benchmark", overwrite=True)
    import_yolo(ds, bundled_data("football_players_sample"))
    assign_splits(ds, fractions={"train": 0.75, "val": 0.25}, seed=0)
    view = ds.match_tags(["train", "val"])
    data_dir = export_for_training(view, tmp / "coco", cfg.model.classes, max_images=cfg.data.max_images)
    best = {"rfdetr": 0.0, "ours": 0.0}
    for r in range(args.repeats):
        for name in ("rfdetr", "ours"):
            clock = _Clock()
            undo = _install(clock)
            try:
                if name == "rfdetr": run_rfdetr(cfg, data_dir, tmp / f"rfdetr-{r}")
                else: run_ours(cfg, view, tmp / "ours")
            finally: undo()
            ips = clock.images / clock.seconds
            best[name] = max(best[name], ips)
            print(f"repeat {r}: {name:6s} {clock.images} images in {clock.seconds:.1f} s of training = {ips:.3f} images/s", flush=True)
    ds.delete()
    print(json.dumps({"images_per_s": best, "epochs": args.epochs, "batch_size": cfg.training.batch_size, "resolution": cfg.model.resolution}))
    print(f"ratio_vs_rfdetr={best['ours'] / best['rfdetr']:.3f}")


if __name__ == "__main__":
    main()
