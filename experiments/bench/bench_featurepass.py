"""Benchmark: DRCDown's per-epoch feature pass against one training epoch.

Prints, for generated images, the time of a training epoch (decode, random crop, flip,
forward, backward, Adam step), a straightforward feature pass (eval, batch 32, decode
every image every epoch) and our feature pass (``extract_features``: no grad, large
batch, channels_last/autocast on GPU, uint8 centre-crop cache; cold = first epoch,
which also writes the cache; warm = later epochs), with ratios to the training epoch.
The target is a warm ratio <= 1/3.

    .venv/bin/python experiments/bench/bench_featurepass.py [--quick] [--n 256]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from syndr_lightning.models.backbones import build_backbone
from syndr_lightning.reshape.features import extract_features
from syndr_lightning.utils.transforms import IMAGENET_MEAN, IMAGENET_STD


def make_images(folder: Path, n: int, size: tuple[int, int], seed: int = 0) -> list[str]:
    """Write ``n`` smooth random RGB PNGs of ``size`` (w, h); return their paths."""
    rng = np.random.default_rng(seed)
    w, h = size
    paths = []
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    for i in range(n):
        f = rng.uniform(1, 6, 3)
        img = np.stack([np.sin(f[c] * (xx + yy * (c + 1))) for c in range(3)], axis=-1)
        img = img * 0.5 + 0.5 + rng.normal(0, 0.05, img.shape)
        arr = (np.clip(img, 0, 1) * 255).astype(np.uint8)
        p = folder / f"img{i:05d}.png"
        Image.fromarray(arr).save(p)
        paths.append(str(p))
    return paths


class _TrainSet(torch.utils.data.Dataset):
    """Decode, random crop, horizontal flip, normalise (the training transform)."""

    def __init__(self, paths: list[str], crop: int, seed: int = 0) -> None:
        self.paths = paths
        self.crop = crop
        self.rng = np.random.default_rng(seed)
        self.mean = np.array(IMAGENET_MEAN, np.float32)
        self.std = np.array(IMAGENET_STD, np.float32)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        with Image.open(self.paths[i]) as im:
            arr = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
        h, w = arr.shape[:2]
        top = int(self.rng.integers(0, h - self.crop + 1))
        left = int(self.rng.integers(0, w - self.crop + 1))
        arr = arr[top : top + self.crop, left : left + self.crop]
        if self.rng.random() < 0.5:
            arr = arr[:, ::-1]
        arr = (arr - self.mean) / self.std
        return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1))), torch.rand(())


def train_epoch(net: torch.nn.Module, head: torch.nn.Module, paths: list[str], crop: int) -> float:
    """Seconds of one training epoch (batch 32, L1 loss, Adam)."""
    loader = torch.utils.data.DataLoader(_TrainSet(paths, crop), batch_size=32, shuffle=True)
    opt = torch.optim.Adam(list(net.parameters()) + list(head.parameters()), lr=2e-5)
    net.train()
    t0 = time.perf_counter()
    for x, y in loader:
        loss = torch.nn.functional.l1_loss(head(net(x)).squeeze(1), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return time.perf_counter() - t0


def naive_feature_pass(net: torch.nn.Module, paths: list[str], crop: int) -> float:
    """Seconds of the straightforward pass: decode every image, batch 32, eval, no_grad."""
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    net.eval()
    t0 = time.perf_counter()
    feats = []
    with torch.no_grad():
        for a in range(0, len(paths), 32):
            batch = []
            for p in paths[a : a + 32]:
                with Image.open(p) as im:
                    arr = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
                h, w = arr.shape[:2]
                top, left = (h - crop) // 2, (w - crop) // 2
                t = torch.from_numpy(arr[top : top + crop, left : left + crop].transpose(2, 0, 1))
                batch.append((t - mean) / std)
            feats.append(net(torch.stack(batch)))
    net.train()
    return time.perf_counter() - t0


def main() -> None:
    """Run the benchmark and print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small model and images (seconds)")
    ap.add_argument("--n", type=int, default=None, help="number of images")
    ap.add_argument("--backbone", default=None, help="backbone name (resnet50 by default)")
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    if args.quick:
        n, size, crop, backbone = args.n or 128, (96, 72), 64, args.backbone or "tiny_cnn"
    else:
        n, size, crop, backbone = args.n or 128, (512, 384), 224, args.backbone or "resnet50"
    net, dim = build_backbone(backbone, "none")
    head = torch.nn.Linear(dim, 1)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = make_images(folder, n, size)
        t_train = train_epoch(net, head, paths, crop)
        t_naive = naive_feature_pass(net, paths, crop)
        kw = {"crop_size": crop, "batch_size": 128, "cache_dir": folder / "cache"}
        t0 = time.perf_counter()
        extract_features(net, paths, **kw)
        t_cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        extract_features(net, paths, **kw)
        t_warm = time.perf_counter() - t0
    print(
        f"feature pass vs training epoch: {backbone}, N={n}, images {size[0]}x{size[1]}, crop {crop}"
    )
    print(f"{'what':<38}{'seconds':>10}{'/ train epoch':>15}{'naive / this':>14}")
    rows = [
        ("training epoch (reference)", t_train, None),
        ("feature pass, straightforward", t_naive, 1.0),
        ("feature pass, ours (cold, writes cache)", t_cold, t_naive / t_cold),
        ("feature pass, ours (warm)", t_warm, t_naive / t_warm),
    ]
    for name, sec, speed in rows:
        sp = f"{speed:>13.2f}x" if speed is not None else f"{'':>14}"
        print(f"{name:<38}{sec:>10.3f}{sec / t_train:>15.3f}{sp}")
    verdict = "OK" if t_warm / t_train <= 1 / 3 else "ABOVE TARGET"
    print(
        f"warm feature pass / training epoch = {t_warm / t_train:.3f} (target <= 0.333): {verdict}"
    )


if __name__ == "__main__":
    main()
