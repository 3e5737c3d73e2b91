"""Benchmark GenDist on 512x384 images: the whole command, per-type cost, subset throughput.

Usage: ``python experiments/bench/bench_distort.py [--quick] [--workers N]``.

Prints (1) the headline: ``syndr distort`` as a whole process with default settings
(a fresh interpreter, start-up included) on 16 references x the LIVEC subset (types 1, 3,
10, 17, 18, 25) x levels 1, 3, 5 = 288 PNGs, next to a straightforward per-image loop
(one fresh process: scipy/numpy/Pillow per image, Pillow's default PNG writer) on the same
input, both in images/s, with their ratio and the machine's load average; (2) the
per-image cost of every type (levels 1, 3, 5; one process, one torch thread) next to the
same kind of reference (the CPU types share their per-image code with it, so their ratio
shows our wrapper's overhead); (3) images per second for each DGQA subset at levels 1, 3, 5
with ``--workers`` processes (distortion only, and end to end through ``generate()``).
Target: >= 50 images/s for (1) on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import subprocess
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

    from syndr_lightning.distort import ops_cpu, ops_numpy
    from syndr_lightning.distort.spec import spec

    if t in (2, 21):
        from syndr_lightning.distort import ops_torch
    if t in (4, 7, 8, 12, 16, 24):
        from skimage import color

    rng = np.random.default_rng(seed)
    v = spec(t).value(level)
    x = img.astype(np.float64)
    x = (x - x.min()) / (x.max() - x.min())
    if t == 1:
        g = ops_numpy.gaussian_kernel1d(v)
        k2 = np.outer(g, g)
        y = np.stack([ndimage.correlate(x[..., c], k2, mode="nearest") for c in range(3)], -1)
    elif t == 3:
        k = ops_numpy.motion_kernel(v, rng.uniform(0, 180))
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
        y = np.clip(ops_numpy.contrast_curve(v)(x), 0, 1)
    elif t == 2:
        k = ops_torch.disk_kernel(v).numpy()
        y = np.stack([ndimage.correlate(x[..., c], k, mode="nearest") for c in range(3)], -1)
    elif t in (4, 8, 24):
        lab = color.rgb2lab(x)
        if t == 4:
            g = ops_numpy.gaussian_kernel1d(1.5 * v + 2)
            for c in (1, 2):
                lab[..., c] = ndimage.correlate(lab[..., c], np.outer(g, g), mode="nearest") * v
        elif t == 8:
            lab[..., 1:] *= v
        else:
            g = ops_numpy.gaussian_kernel1d(3.0)
            blur = ndimage.correlate(lab[..., 0], np.outer(g, g), mode="nearest")
            lab[..., 0] = (1 + v) * lab[..., 0] - v * blur
        y = np.clip(color.lab2rgb(lab), 0, 1)
    elif t == 5:
        u = rng.random(2)
        dx, dy = np.round(u / np.linalg.norm(u) * v).astype(int)
        gpad = np.pad(x[..., 1], ((dy, 0), (dx, 0)), mode="edge")[:H, :W]
        gray = x @ np.array([0.2989, 0.5870, 0.1140])
        e = np.hypot(ndimage.sobel(gray, 1, mode="nearest"), ndimage.sobel(gray, 0, mode="nearest"))
        g = ops_numpy.gaussian_kernel1d(4.0)
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
        y = np.clip(color.ycbcr2rgb(ycc * 255), 0, 1)
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


# ----------------------------------------------------------------------------- whole process
PROCESS_TYPES = SUBSETS["LIVEC"]
PROCESS_REFS = 16


def reference_loop(refs_dir: str, out_dir: str) -> int:
    """The straightforward way, in one process: read, distort (:func:`ref_distort`), write
    with Pillow's PNG defaults, one image after the other."""
    from PIL import Image

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    n = 0
    for i, p in enumerate(sorted(Path(refs_dir).glob("*.png"))):
        img = np.asarray(Image.open(p).convert("RGB"))
        for t in PROCESS_TYPES:
            for lv in LEVELS:
                y = ref_distort(img, t, lv, i * 100 + t * 10 + lv)
                Image.fromarray(y).save(out / f"{p.stem}_{t:02d}_{lv:02d}.png")
                n += 1
    return n


def _timed_process(cmd: list[str]) -> float:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE.parents[1]), os.environ.get("PYTHONPATH", "")]),
    }
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[:4]} failed: {proc.stderr[-2000:]}")
    return seconds


def whole_process(reps: int) -> None:
    """Table 1: ``syndr distort`` (default settings) vs the per-image loop, both whole processes."""
    from PIL import Image

    n_img = PROCESS_REFS * len(PROCESS_TYPES) * len(LEVELS)
    print(
        f"whole process, start-up included: {PROCESS_REFS} refs {W}x{H} x types "
        f"{PROCESS_TYPES} x levels {LEVELS} = {n_img} PNGs, {os.cpu_count()} CPUs"
    )
    with tempfile.TemporaryDirectory() as tmp:
        refs = Path(tmp) / "refs"
        refs.mkdir()
        for i, img in enumerate(reference_images(PROCESS_REFS)):
            Image.fromarray(img).save(refs / f"R{i:02d}.png")
        types = ",".join(str(t) for t in PROCESS_TYPES)
        ours_cmd = [sys.executable, "-m", "syndr_lightning.cli", "distort", "--refs", str(refs)]
        ours_cmd += ["--types", types, "--levels", "1,3,5", "--no-progress", "--out"]
        ref_cmd = [sys.executable, str(Path(__file__).resolve()), "--reference-loop", str(refs)]
        best: dict[str, float] = {}
        load0 = os.getloadavg()[0]
        for r in range(reps):
            for name, cmd in (("ours", ours_cmd), ("reference", ref_cmd)):
                out = str(Path(tmp) / f"{name}{r}")
                best[name] = min(best.get(name, float("inf")), _timed_process([*cmd, out]))
                if name == "ours" and len(list(Path(out).glob("*.png"))) != n_img:
                    raise RuntimeError(f"syndr distort wrote the wrong number of files in {out}")
        load1 = os.getloadavg()[0]
    ours, ref = n_img / best["ours"], n_img / best["reference"]
    print(f"{'':<30} {'seconds':>8} {'images/s':>9}")
    print(f"{'syndr distort (defaults)':<30} {best['ours']:8.2f} {ours:9.1f}")
    print(f"{'per-image loop (reference)':<30} {best['reference']:8.2f} {ref:9.1f}")
    print(f"ratio {ours / ref:.1f}x; best of {reps}; load average {load0:.1f} -> {load1:.1f}")


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
    parser.add_argument("--process-only", action="store_true", help="only the whole-process table")
    parser.add_argument(
        "--reference-loop", nargs=2, metavar=("REFS", "OUT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.reference_loop:
        reference_loop(*args.reference_loop)
        return 0
    whole_process(reps=1 if args.quick else 3)
    if args.process_only:
        return 0
    print()
    n_refs = 4 if args.quick else 8
    imgs = reference_images(min(n_refs, 4))
    per_type_costs(imgs, reps=3 if args.quick else 6)
    throughput(n_refs, args.workers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
