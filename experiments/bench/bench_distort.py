"""Benchmark GenDist on 512x384 images: per-type cost and DGQA-subset throughput.

Usage: ``python experiments/bench/bench_distort.py [--quick] [--workers N]``.

Prints (1) the per-image cost of every type (levels 1, 3, 5; one process, one torch
thread) next to a straightforward per-image numpy/scipy/scikit-image reference (the CPU
types share their per-image code with it, so their ratio shows our wrapper's overhead), and (2) images per second for each DGQA subset at levels 1, 3, 5 with
``--workers`` processes (distortion only, and end to end through ``generate()`` with PNG
writing), each with the reference's throughput measured in the same run. Target: >= 50
images/s on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

SUBSETS = {
    "LIVEC": [1, 3, 10, 17, 18, 25],
    "KonIQ": [1, 3, 16, 17, 18, 25],
    "BID": [1, 3, 9, 21, 23, 25],
}
LEVELS = (1, 3, 5)
H, W = 384, 512


# ----------------------------------------------------------------------------- inputs
def reference_images(n: int) -> list[np.ndarray]:
    """``n`` 512x384 photos from scikit-image's bundled samples (cropped to 4:3, resized)."""
    from PIL import Image
    from skimage import data

    sources = [data.astronaut(), data.chelsea(), data.coffee(), data.rocket()]
    out = []
    for i in range(n):
        img = sources[i % len(sources)]
        h, w = img.shape[:2]
        if w * 3 > h * 4:
            cw = h * 4 // 3
            img = img[:, (w - cw) // 2 : (w - cw) // 2 + cw]
        else:
            ch = w * 3 // 4
            img = img[(h - ch) // 2 : (h - ch) // 2 + ch]
        im = Image.fromarray(np.ascontiguousarray(img[..., :3])).resize(
            (W, H), Image.Resampling.BICUBIC
        )
        if i >= len(sources):  # vary content for repeated sources
            im = im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        out.append(np.asarray(im))
    return out


# ----------------------------------------------------------------------------- reference
def ref_distort(img: np.ndarray, t: int, level: int, seed: int) -> np.ndarray:
    """Straightforward per-image float64 numpy/scipy/scikit-image version of every type
    (codecs and sequential types call the same per-image code as ours)."""
    from scipy import ndimage
    from skimage import color

    from syndr_lightning.distort import ops_cpu, ops_torch
    from syndr_lightning.distort.spec import spec

    rng = np.random.default_rng(seed)
    v = spec(t).value(level)
    x = img.astype(np.float64)
    x = (x - x.min()) / (x.max() - x.min())
    if t == 1:
        g = ops_torch.gaussian_kernel1d(v).numpy()
        k2 = np.outer(g, g)
        y = np.stack([ndimage.correlate(x[..., c], k2, mode="nearest") for c in range(3)], -1)
    elif t == 3:
        k = ops_torch.motion_kernel(v, rng.uniform(0, 180)).numpy()
        y = np.stack([ndimage.correlate(x[..., c], k, mode="nearest") for c in range(3)], -1)
    elif t == 9:
        y = ops_cpu.jpeg2000(x, v)
    elif t == 10:
        y = ops_cpu.jpeg(x, v)
    elif t == 16:
        f = lambda u: np.clip(u + 2 * v * u * (1 - u), 0, 1)  # noqa: E731
        lab = color.rgb2lab(x)
        lab[..., 0] = 100 * f(lab[..., 0] / 100)
        y = (2 * f(x) + np.clip(color.lab2rgb(lab), 0, 1)) / 3
    elif t == 17:
        y = np.clip(x - 2 * v * x * (1 - x), 0, 1)
    elif t == 18:
        y = np.clip(x + v, 0, 1)
    elif t == 21:
        sh, sw = ops_torch.pixelate_size(H, W, v)
        ri = np.floor((np.arange(sh) + 0.5) * H / sh).astype(int)
        ci = np.floor((np.arange(sw) + 0.5) * W / sw).astype(int)
        small = x[ri][:, ci]
        y = small[np.floor((np.arange(H) + 0.5) * sh / H).astype(int)][
            :, np.floor((np.arange(W) + 0.5) * sw / W).astype(int)
        ]
    elif t == 23:
        y = x.copy()
        for _ in range(int(v)):
            col = rng.random(3)
            top, left = rng.integers(0, H - 31), rng.integers(0, W - 31)
            y[top : top + 32, left : left + 32] = col
    elif t == 25:
        y = np.clip(ops_torch.contrast_curve(v)(x), 0, 1)
    elif t == 2:
        k = ops_torch.disk_kernel(v).numpy()
        y = np.stack([ndimage.correlate(x[..., c], k, mode="nearest") for c in range(3)], -1)
    elif t in (4, 8, 24):
        lab = color.rgb2lab(x)
        if t == 4:
            g = ops_torch.gaussian_kernel1d(1.5 * v + 2).numpy()
            for c in (1, 2):
                lab[..., c] = ndimage.correlate(lab[..., c], np.outer(g, g), mode="nearest") * v
        elif t == 8:
            lab[..., 1:] *= v
        else:
            g = ops_torch.gaussian_kernel1d(3.0).numpy()
            blur = ndimage.correlate(lab[..., 0], np.outer(g, g), mode="nearest")
            lab[..., 0] = (1 + v) * lab[..., 0] - v * blur
        y = np.clip(color.lab2rgb(lab), 0, 1)
    elif t == 5:
        u = rng.random(2)
        dx, dy = np.round(u / np.linalg.norm(u) * v).astype(int)
        gpad = np.pad(x[..., 1], ((dy, 0), (dx, 0)), mode="edge")[:H, :W]
        gray = x @ np.array([0.2989, 0.5870, 0.1140])
        e = np.hypot(ndimage.sobel(gray, 1, mode="nearest"), ndimage.sobel(gray, 0, mode="nearest"))
        g = ops_torch.gaussian_kernel1d(4.0).numpy()
        e = ndimage.correlate(e, np.outer(g, g), mode="nearest")
        e = np.clip((e - e.min()) / (e.max() - e.min()), 0.1, 1)
        lo, hi = np.percentile(e, [1, 99])
        e = np.clip((e - lo) / max(hi - lo, 1e-6), 0, 1)
        y = x.copy()
        y[..., 1] = e * gpad + (1 - e) * x[..., 1]
    elif t == 7:
        hsv = color.rgb2hsv(x)
        hsv[..., 1] *= v
        y = color.hsv2rgb(hsv)
    elif t == 11:
        y = np.clip(x + rng.normal(0, np.sqrt(v), x.shape), 0, 1)
    elif t == 12:
        ycc = np.clip(color.rgb2ycbcr(x) / 255 + rng.normal(0, np.sqrt(v), x.shape), 0, 1)
        y = color.ycbcr2rgb(ycc * 255)
    elif t == 13:
        u = rng.random(x.shape)
        y = x.copy()
        y[u < v / 2] = 0
        y[(u >= v / 2) & (u < v)] = 1
    elif t == 14:
        y = np.clip(x + (rng.random(x.shape) - 0.5) * np.sqrt(12 * v) * x, 0, 1)
    elif t == 19:
        y = x
        gy, gx = np.mgrid[0:H, 0:W].astype(np.float64)
        for _ in range(5):
            coords = [gy + rng.normal(0, v, (H, W)), gx + rng.normal(0, v, (H, W))]
            y = np.stack(
                [
                    ndimage.map_coordinates(y[..., c], coords, order=3, mode="nearest")
                    for c in range(3)
                ],
                -1,
            )
    elif t in ops_cpu.CPU_OPS:  # codecs and sequential types: the same per-image code
        y = ops_cpu.CPU_OPS[t](x, v, rng)
    else:
        raise ValueError(t)
    y = (y - y.min()) / (y.max() - y.min())
    return np.round(y * 255).astype(np.uint8)


# ----------------------------------------------------------------------------- workers
_IMAGES: list[np.ndarray] = []


def _init(n_refs: int) -> None:
    import torch

    torch.set_num_threads(1)
    _IMAGES.extend(reference_images(n_refs))


def _job(args: tuple[str, int, int, int]) -> int:
    impl, i, t, lv = args
    if impl == "ours":
        from syndr_lightning.distort import derive_seed, distort_image

        out = distort_image(_IMAGES[i], t, lv, derive_seed(0, str(i), t, lv))
    else:
        out = ref_distort(_IMAGES[i], t, lv, i * 100 + t * 10 + lv)
    return int(out[0, 0, 0])


def per_type_costs(imgs: list[np.ndarray], reps: int) -> None:
    """Table 1: ms per image for every type, ours vs reference."""
    import torch

    from syndr_lightning.distort import SPECS, derive_seed, distort_image

    torch.set_num_threads(1)
    print(f"per-image cost, {W}x{H}, levels {LEVELS}, 1 process / 1 thread (ms)")
    print(f"{'type':>4} {'name':<24} {'backend':<7} {'ours':>8} {'reference':>10} {'ratio':>6}")
    for t, s in SPECS.items():
        jobs = [(i, lv) for i in range(len(imgs)) for lv in LEVELS][: max(3, reps)]
        distort_image(imgs[0], t, 1, 0)  # warm-up
        t0 = time.perf_counter()
        for i, lv in jobs:
            distort_image(imgs[i], t, lv, derive_seed(0, str(i), t, lv))
        ours = (time.perf_counter() - t0) / len(jobs) * 1000
        ref_distort(imgs[0], t, 1, 0)
        t0 = time.perf_counter()
        for i, lv in jobs:
            ref_distort(imgs[i], t, lv, i)
        ref = (time.perf_counter() - t0) / len(jobs) * 1000
        print(f"{t:>4} {s.name:<24} {s.backend:<7} {ours:8.1f} {ref:10.1f} {ref / ours:5.1f}x")


def throughput(n_refs: int, workers: int) -> None:
    """Table 2: images/s per DGQA subset, ours vs reference, plus generate() end to end."""
    from syndr_lightning.distort import generate

    ctx = mp.get_context("spawn")
    print(f"\nDGQA subsets, levels {LEVELS}, {n_refs} refs, {workers} worker processes (images/s)")
    print(
        f"{'subset':<6} {'images':>6} {'ours':>8} {'reference':>10} {'ratio':>6} {'generate()+PNG':>15}"
    )
    with ctx.Pool(workers, initializer=_init, initargs=(n_refs,)) as pool:
        pool.map(_job, [("ours", 0, 18, 3)] * workers)  # warm the workers (imports, images)
        pool.map(_job, [("ref", 0, 18, 3)] * workers)
        imgs = reference_images(n_refs)
        with tempfile.TemporaryDirectory() as tmp:
            ref_paths = []
            from PIL import Image

            for i, img in enumerate(imgs):
                p = Path(tmp) / "refs" / f"R{i:02d}.png"
                p.parent.mkdir(exist_ok=True)
                Image.fromarray(img).save(p)
                ref_paths.append(p)
            # start the worker forkserver once (a one-time cost per process, ~2-3 s)
            generate(ref_paths[:1], Path(tmp) / "warm", [18], [3], workers=workers, progress=False)
            for name, types in SUBSETS.items():
                rates = {}
                for impl in ("ours", "ref"):
                    jobs = [(impl, i, t, lv) for i in range(n_refs) for t in types for lv in LEVELS]
                    t0 = time.perf_counter()
                    pool.map(_job, jobs, chunksize=max(1, len(jobs) // (4 * workers)))
                    rates[impl] = len(jobs) / (time.perf_counter() - t0)
                out = Path(tmp) / name
                t0 = time.perf_counter()
                df = generate(
                    ref_paths, out, types=types, levels=LEVELS, workers=workers, progress=False
                )
                gen_rate = len(df) / (time.perf_counter() - t0)
                print(
                    f"{name:<6} {len(jobs):>6} {rates['ours']:8.1f} {rates['ref']:10.1f} "
                    f"{rates['ours'] / rates['ref']:5.1f}x {gen_rate:15.1f}"
                )
    print("(generate(): worker pool start from a warm forkserver, decoding, 8-bit PNG writing)")


def main() -> int:
    """Run both tables."""
    # skimage reports the out-of-gamut colours of the strong Lab types; expected here
    warnings.filterwarnings("ignore", message="Conversion from CIE-LAB")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer images")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    args = parser.parse_args()
    n_refs = 4 if args.quick else 8
    imgs = reference_images(min(n_refs, 4))
    per_type_costs(imgs, reps=3 if args.quick else 6)
    throughput(n_refs, args.workers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
