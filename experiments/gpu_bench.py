#!/usr/bin/env python
"""GPU benchmark: DRCDown selection at scale, feature-pass and ResNet-50 training throughput.

One prepared run (under 8 minutes on an H100/H200; wrapper: ``experiments/gpu_bench.sh``):

* DRCDown selection (pairs -> clusters -> downsampling) on generated clustered features,
  N = 100,000 and 1,000,000, d = 2048, float32 input, with the torch backend (blocked
  matmul on the GPU) and FAISS (GPU k-NN with CPU range-search fallback when FAISS has
  GPU support, else CPU range search), the torch backend on the CPU cores as baseline,
  and the dense float64 reference (``reshape/reference.py``) at a small N as the exactness
  and speed baseline. A configuration whose time, extrapolated as N^2 from the previous
  size, would not fit the remaining budget is skipped and reported as such.
* DRCDown feature pass: ResNet-50 (``build_backbone``), eval mode, one 224 centre crop
  (``EvalTransform``), bf16 autocast, channels_last, through a DataLoader over generated
  images; images/s end to end and model-only.
* Training: ResNet-50 + linear head, L1 loss, Adam (backbone lr 2e-5, head 2e-4), bf16
  autocast, channels_last, random 224 crops + flips (``TrainTransform``); images/s.

Results go to ``<out-dir>/gpu_bench_results.json`` and ``.md``, rewritten atomically after
every measurement, so a run stopped by its time limit still leaves what it measured.
``--cpu-smoke`` runs every code path at tiny sizes on the CPU (used by the test suite).

    python experiments/gpu_bench.py                    # on a GPU machine, writes docs/
    python experiments/gpu_bench.py --cpu-smoke --out-dir /tmp/gb
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a plain script from a source checkout (GPU machine)
    sys.path.insert(0, str(ROOT))

from syndr_lightning.fakedata.features import geometric_clusters  # noqa: E402
from syndr_lightning.fakedata.synthetic import make_reference  # noqa: E402
from syndr_lightning.models.backbones import build_backbone  # noqa: E402
from syndr_lightning.reshape import drcdown  # noqa: E402
from syndr_lightning.reshape.params import DRCDownParams  # noqa: E402
from syndr_lightning.reshape.reference import ref_drcdown  # noqa: E402
from syndr_lightning.utils.errors import InputError, SyndrError  # noqa: E402
from syndr_lightning.utils.io import atomic_open, git_sha  # noqa: E402
from syndr_lightning.utils.transforms import EvalTransform, TrainTransform  # noqa: E402

RESULTS_STEM = "gpu_bench_results"


@dataclass
class Settings:
    """Sizes of one benchmark run (full GPU run or CPU smoke)."""

    sizes: list[int]
    dim: int
    ref_n: int
    cpu_baseline_n: int
    backends: list[str]
    image_hw: tuple[int, int]
    crop: int
    feat_batch: int
    train_batch: int
    warmup_steps: int
    timed_steps: int
    workers: int
    budget_s: float
    bank: int = 16
    t_f: float = 0.1
    t_q: float = 1.0
    t_u: int = 20
    seed: int = 0


FULL = Settings(
    sizes=[100_000, 1_000_000],
    dim=2048,
    ref_n=5_000,
    cpu_baseline_n=100_000,
    backends=["torch", "faiss"],
    image_hw=(384, 512),
    crop=224,
    feat_batch=256,
    train_batch=128,
    warmup_steps=8,
    timed_steps=30,
    workers=min(14, os.cpu_count() or 1),
    budget_s=400.0,
)

SMOKE = Settings(
    sizes=[1_000, 2_000],
    dim=64,
    ref_n=300,
    cpu_baseline_n=1_000,
    backends=["torch", "faiss"],
    image_hw=(40, 48),
    crop=32,
    feat_batch=2,
    train_batch=2,
    warmup_steps=1,
    timed_steps=1,
    workers=0,
    budget_s=120.0,
    bank=2,
)


@dataclass
class Report:
    """Everything measured so far; written as JSON + Markdown after each measurement."""

    out_dir: Path
    meta: dict[str, Any]
    drcdown: list[dict[str, Any]] = field(default_factory=list)
    throughput: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON payload."""
        return {
            "meta": self.meta,
            "drcdown": self.drcdown,
            "throughput": self.throughput,
            "notes": self.notes,
        }

    def write(self) -> None:
        """Rewrite both result files atomically."""
        with atomic_open(self.out_dir / f"{RESULTS_STEM}.json", "w", encoding="utf-8") as fh:
            json.dump(self.as_dict(), fh, indent=2, default=str)
            fh.write("\n")
        with atomic_open(self.out_dir / f"{RESULTS_STEM}.md", "w", encoding="utf-8") as fh:
            fh.write(render_markdown(self.as_dict()))


def _fmt_s(value: Any) -> str:
    return "-" if value is None else f"{value:.2f}"


def _fmt_n(value: Any) -> str:
    return "-" if value is None else f"{int(value):,}"


def render_markdown(data: dict[str, Any]) -> str:
    """The results as Markdown tables (device, DRCDown selection, throughput)."""
    m = data["meta"]
    lines = [
        f"## GPU benchmark: {m.get('device_name', '?')}",
        "",
        f"mode `{m.get('mode')}`, torch {m.get('torch')}, CUDA {m.get('cuda')}, "
        f"FAISS {m.get('faiss')}, {m.get('cpu_count')} CPU cores, git `{m.get('git_sha')}`, "
        f"{m.get('started_utc')}.",
        "",
        f"### DRCDown selection (d = {m.get('dim')}, float32 in; T_f = {m.get('t_f')}, "
        f"T_q = {m.get('t_q')}, T_u = {m.get('t_u')})",
        "",
        "| N | method | total s | pairs s | select s | pairs | kept | peak GPU GiB "
        f"| same clusters as | time / {m.get('main_method')} |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    main = {
        r["n"]: r["total_s"]
        for r in data["drcdown"]
        if r.get("method") == m.get("main_method") and not r.get("skipped")
    }
    for r in data["drcdown"]:
        ratio = f"{r['total_s'] / main[r['n']]:.2f}x" if r["n"] in main and "total_s" in r else "-"
        if r.get("skipped"):
            lines.append(f"| {r['n']:,} | {r['method']} | skipped: {r['skipped']} |||||||")
            continue
        mem = r.get("peak_gpu_gib")
        lines.append(
            f"| {r['n']:,} | {r['method']} | {_fmt_s(r['total_s'])} | {_fmt_s(r.get('pairs_s'))} "
            f"| {_fmt_s(r.get('select_s'))} | {_fmt_n(r.get('n_pairs'))} | {_fmt_n(r.get('kept'))} "
            f"| {'-' if mem is None else f'{mem:.1f}'} | {r.get('agrees_with') or '-'} "
            f"| {ratio} |"
        )
    lines += [
        "",
        "### Throughput (ResNet-50, channels_last, generated KADID-size images)",
        "",
        "| what | precision | batch | crop | images/s | ms/step | steps |",
        "|---|---|---|---|---|---|---|",
    ]
    if not data["throughput"]:
        lines.append("| not measured in this run (--skip-throughput) | | | | | | |")
    for r in data["throughput"]:
        lines.append(
            f"| {r['what']} | {r['precision']} | {r['batch']} | {r['crop']} | {r['images_per_s']:.1f} "
            f"| {r['ms_per_step']:.1f} | {r['steps']} |"
        )
    if data["notes"]:
        lines += ["", "Notes:", ""] + [f"- {n}" for n in data["notes"]]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- features and timing


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _canonical(cluster: np.ndarray) -> np.ndarray:
    """Relabel a cluster array by first occurrence (so two partitions compare equal)."""
    out = np.full(cluster.shape, -1, dtype=np.int64)
    seen: dict[int, int] = {}
    for pos, c in enumerate(cluster.tolist()):
        if c >= 0:
            out[pos] = seen.setdefault(c, len(seen))
    return out


def _from_ref_clusters(n: int, clusters: list[list[int]]) -> np.ndarray:
    out = np.full(n, -1, dtype=np.int64)
    for cid, members in enumerate(clusters):
        out[members] = cid
    return out


# ---------------------------------------------------------------- DRCDown selection


def _faiss_info() -> tuple[str, int]:
    try:
        import faiss
    except ImportError:
        return "not installed", 0
    gpus = int(faiss.get_num_gpus()) if hasattr(faiss, "get_num_gpus") else 0
    return str(getattr(faiss, "__version__", "?")), gpus


def _methods(s: Settings, device: torch.device, faiss_gpus: int) -> list[tuple[str, str, str]]:
    """(label, backend, device) triples to time at every N, GPU rows first."""
    out: list[tuple[str, str, str]] = []
    if "torch" in s.backends:
        out.append((f"torch ({device.type})", "torch", device.type))
    if "faiss" in s.backends:
        if device.type == "cuda" and faiss_gpus > 0:
            out.append(("faiss-gpu (k-NN + CPU fallback)", "faiss", "cuda"))
        else:
            out.append(("faiss-cpu (range search)", "faiss", "cpu"))
    return out


def bench_drcdown(s: Settings, device: torch.device, report: Report, deadline: float) -> None:
    """Time DRCDown per (N, method); skip what would overrun ``deadline``."""
    _, faiss_gpus = _faiss_info()
    methods = _methods(s, device, faiss_gpus)
    if "faiss" in s.backends and _faiss_info()[0] == "not installed":
        methods = [m for m in methods if m[1] != "faiss"]
        report.notes.append("FAISS not installed: FAISS rows omitted (carry a wheel in .whl/).")
    if device.type == "cuda" and faiss_gpus == 0 and "faiss" in s.backends:
        report.notes.append(
            "This FAISS has no GPU support: the FAISS rows ran on the CPU cores (range search)."
        )
    last: dict[str, tuple[int, float]] = {}
    jobs: list[tuple[int, str, str, str]] = []
    for n in s.sizes:
        jobs += [(n, *m) for m in methods]
        if device.type == "cuda" and n == s.cpu_baseline_n:
            jobs.append((n, "torch (cpu) baseline", "torch", "cpu"))
    jobs.insert(0, (s.ref_n, "reference (dense float64)", "reference", "cpu"))
    jobs.insert(1, (s.ref_n, f"torch ({device.type})", "torch", device.type))

    # Untimed warm-up of every method (CUDA context, cuBLAS handles, FAISS GPU resources).
    wx, wy = geometric_clusters(min(2_000, s.ref_n), s.dim, s.seed + 1, device)
    for backend, dev in sorted({(m[1], m[2]) for m in methods}):
        drcdown(wx, wy, DRCDownParams(T_f=s.t_f, T_q=s.t_q, T_u=s.t_u, backend=backend), device=dev)
    features: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    partitions: dict[int, tuple[str, np.ndarray]] = {}
    for n, label, backend, dev in jobs:
        remaining = deadline - time.perf_counter()
        if label in last:
            n0, t0 = last[label]
            estimate = t0 * (n / n0) ** 2
            if estimate > remaining:
                report.drcdown.append(
                    {
                        "n": n,
                        "method": label,
                        "skipped": f"~{estimate:.0f} s estimated (N^2 "
                        f"from {n0:,}) > {remaining:.0f} s left",
                    }
                )
                report.write()
                continue
        if n not in features:
            features.clear()  # keep one size in memory at a time
            t = time.perf_counter()
            features[n] = geometric_clusters(n, s.dim, s.seed, device)
            report.notes.append(f"generated N={n:,} features in {time.perf_counter() - t:.1f} s")
        x, y = features[n]
        row = _run_drcdown(s, x, y, label, backend, dev)
        last[label] = (n, row["total_s"])
        part = _canonical(row.pop("cluster"))
        if n in partitions:
            ref_label, ref_part = partitions[n]
            row["agrees_with"] = (
                ref_label if np.array_equal(part, ref_part) else f"DIFFERS from {ref_label}"
            )
        else:
            partitions[n] = (label, part)
        report.drcdown.append(row)
        report.write()
        print(f"[drcdown] N={n:,} {label}: {row['total_s']:.2f} s", flush=True)


def _run_drcdown(
    s: Settings, x: np.ndarray, y: np.ndarray, label: str, backend: str, dev: str
) -> dict[str, Any]:
    n = x.shape[0]
    if dev == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t = time.perf_counter()
    if backend == "reference":
        kept, clusters = ref_drcdown(x, y, s.t_f, s.t_q, s.t_u, seed=s.seed)
        total = time.perf_counter() - t
        return {
            "n": n,
            "method": label,
            "total_s": total,
            "pairs_s": None,
            "select_s": None,
            "n_pairs": None,  # the reference returns clusters, not its pair count
            "kept": len(kept),
            "peak_gpu_gib": None,
            "cluster": _from_ref_clusters(n, clusters),
        }
    params = DRCDownParams(T_f=s.t_f, T_q=s.t_q, T_u=s.t_u, backend=backend)
    res = drcdown(x, y, params, seed=s.seed, epoch=0, device=dev)
    _sync(torch.device(dev))
    total = time.perf_counter() - t
    peak = torch.cuda.max_memory_allocated() / 2**30 if dev == "cuda" else None
    return {
        "n": n,
        "method": label,
        "total_s": total,
        "pairs_s": res.seconds_pairs,
        "select_s": res.seconds_select,
        "n_pairs": res.n_pairs,
        "kept": int(res.kept.size),
        "peak_gpu_gib": peak,
        "n_clusters": res.stats_before.get("n_clusters"),
        "cluster": res.cluster,
    }


# ---------------------------------------------------------------- throughput


class GeneratedImages(Dataset):
    """``n`` samples cycling over a bank of generated KADID-like ``uint8`` images."""

    def __init__(
        self, n: int, hw: tuple[int, int], transform: Callable[..., torch.Tensor], bank: int = 16
    ) -> None:
        rng = np.random.default_rng(0)
        self.bank = [make_reference(rng, hw) for _ in range(bank)]
        self.scores = rng.uniform(0, 10, size=n).astype(np.float32)
        self.transform = transform

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    def __getitem__(self, index: int) -> dict[str, Any]:
        image = self.bank[index % len(self.bank)]
        return {"image": self.transform(image, index), "score": self.scores[index]}


def _loader(ds: Dataset, batch: int, workers: int, device: torch.device) -> DataLoader:
    return DataLoader(
        ds,
        batch_size=batch,
        shuffle=True,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        drop_last=True,
        persistent_workers=False,
        prefetch_factor=4 if workers > 0 else None,
    )


def _timed(
    step: Callable[[dict[str, Any]], None],
    batches: Any,
    warmup: int,
    steps: int,
    device: torch.device,
) -> tuple[float, int]:
    """Run ``warmup`` untimed then ``steps`` timed steps; return (seconds, steps done)."""
    it = iter(batches)
    for _ in range(warmup):
        step(next(it))
    _sync(device)
    t = time.perf_counter()
    done = 0
    for _ in range(steps):
        step(next(it))
        done += 1
    _sync(device)
    return time.perf_counter() - t, done


def _to_device(batch: dict[str, Any], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    img = batch["image"].to(device, non_blocking=True)
    if img.ndim == 5:  # [B, n_crops, 3, H, W] from EvalTransform
        img = img.flatten(0, 1)
    return img.contiguous(memory_format=torch.channels_last), batch["score"].to(device)


def bench_throughput(s: Settings, device: torch.device, report: Report) -> None:
    """Feature pass and training throughput of ResNet-50 on generated images."""
    # bf16 on the GPU; the CPU smoke runs fp32 (CPUs without bf16 units emulate it slowly).
    bf16 = device.type == "cuda"
    autocast = torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16)
    precision = "bf16 autocast" if bf16 else "fp32"

    backbone, dim = build_backbone("resnet50", "none")
    backbone = backbone.to(device).to(memory_format=torch.channels_last)

    # --- DRCDown feature pass: eval, no grad, one centre crop.
    backbone.eval()
    n_feat = s.feat_batch * (s.warmup_steps + s.timed_steps)
    ds = GeneratedImages(n_feat, s.image_hw, EvalTransform(s.crop, 1, "center"), s.bank)

    @torch.inference_mode()
    def feat_step(batch: dict[str, Any]) -> None:
        img, _ = _to_device(batch, device)
        with autocast:
            backbone(img)

    secs, done = _timed(
        feat_step,
        _loader(ds, s.feat_batch, s.workers, device),
        s.warmup_steps,
        s.timed_steps,
        device,
    )
    _add(
        report, "DRCDown feature pass (loader + model)", precision, s.feat_batch, s.crop, secs, done
    )
    fixed = next(iter(_loader(ds, s.feat_batch, 0, device)))
    secs, done = _timed(feat_step, _repeat(fixed), s.warmup_steps, s.timed_steps, device)
    _add(report, "DRCDown feature pass (model only)", precision, s.feat_batch, s.crop, secs, done)

    # --- Training: backbone + linear head, L1, Adam with the paper's two learning rates.
    backbone.train()
    head = nn.Linear(dim, 1).to(device)
    nn.init.kaiming_normal_(head.weight)
    nn.init.zeros_(head.bias)
    opt = torch.optim.Adam(
        [{"params": backbone.parameters(), "lr": 2e-5}, {"params": head.parameters(), "lr": 2e-4}],
        weight_decay=5e-4,
    )
    n_train = s.train_batch * (s.warmup_steps + s.timed_steps)
    ds = GeneratedImages(n_train, s.image_hw, TrainTransform(s.crop, hflip=True), s.bank)

    def train_step(batch: dict[str, Any]) -> None:
        img, score = _to_device(batch, device)
        with autocast:
            pred = head(backbone(img)).squeeze(1)
        loss = nn.functional.l1_loss(pred.float(), score)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    secs, done = _timed(
        train_step,
        _loader(ds, s.train_batch, s.workers, device),
        s.warmup_steps,
        s.timed_steps,
        device,
    )
    _add(report, "training step (loader + model)", precision, s.train_batch, s.crop, secs, done)
    fixed = next(iter(_loader(ds, s.train_batch, 0, device)))
    secs, done = _timed(train_step, _repeat(fixed), s.warmup_steps, s.timed_steps, device)
    _add(report, "training step (model only)", precision, s.train_batch, s.crop, secs, done)


def _repeat(batch: dict[str, Any]):
    while True:
        yield batch


def _add(
    report: Report, what: str, precision: str, batch: int, crop: int, secs: float, steps: int
) -> None:
    row = {
        "what": what,
        "precision": precision,
        "batch": batch,
        "crop": crop,
        "steps": steps,
        "seconds": secs,
        "images_per_s": batch * steps / secs,
        "ms_per_step": 1000.0 * secs / steps,
    }
    report.throughput.append(row)
    report.write()
    print(f"[throughput] {what}: {row['images_per_s']:.1f} images/s", flush=True)


# ---------------------------------------------------------------- main


def _int_list(text: str) -> list[int]:
    try:
        values = [int(float(t)) for t in text.split(",") if t.strip()]
    except ValueError:
        raise InputError(f"--sizes: expected comma-separated integers, found {text!r}") from None
    if not values or min(values) < 2:
        raise InputError(f"--sizes: expected sample counts >= 2, found {text!r}")
    return values


def settings_from_args(args: argparse.Namespace) -> Settings:
    """The preset (full or smoke) with the command line's overrides applied."""
    s = SMOKE if args.cpu_smoke else FULL
    s = Settings(**{**s.__dict__})
    if args.sizes:
        s.sizes = _int_list(args.sizes)
    if args.dim is not None:
        s.dim = int(args.dim)
    if args.backends:
        s.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
        bad = sorted(set(s.backends) - {"torch", "faiss"})
        if bad:
            raise InputError(f"--backends: allowed torch, faiss; found {', '.join(bad)}")
    if args.budget_s is not None:
        s.budget_s = float(args.budget_s)
    if args.workers is not None:
        s.workers = int(args.workers)
    if args.train_batch is not None:
        s.train_batch = int(args.train_batch)
    return s


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; return the exit code (errors: one line on stderr, exit 2)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cpu-smoke", action="store_true", help="tiny sizes on the CPU (CI)")
    p.add_argument(
        "--out-dir", default=None, help="default: docs/ (smoke: outputs/gpu_bench_smoke)"
    )
    p.add_argument("--sizes", default=None, help="DRCDown N list, e.g. 100000,1000000")
    p.add_argument("--dim", type=int, default=None, help="feature dimension (default 2048)")
    p.add_argument("--backends", default=None, help="torch,faiss (default both)")
    p.add_argument("--budget-s", type=float, default=None, help="DRCDown time budget (s)")
    p.add_argument("--workers", type=int, default=None, help="DataLoader workers")
    p.add_argument("--train-batch", type=int, default=None, help="training batch size")
    p.add_argument("--skip-throughput", action="store_true", help="DRCDown only")
    args = p.parse_args(argv)
    try:
        s = settings_from_args(args)
        if args.cpu_smoke:
            device = torch.device("cpu")
        elif torch.cuda.is_available():
            device = torch.device("cuda")
        else:
            raise InputError(
                "no CUDA device: this benchmark measures a GPU; run it on an H100/H200 "
                "(experiments/gpu_bench.sh) or pass --cpu-smoke for the tiny CPU check"
            )
        default_out = ROOT / ("outputs/gpu_bench_smoke" if args.cpu_smoke else "docs")
        out_dir = Path(args.out_dir) if args.out_dir else default_out
        torch.manual_seed(s.seed)
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        faiss_version, faiss_gpus = _faiss_info()
        meta = {
            "mode": "cpu-smoke" if args.cpu_smoke else "gpu",
            "device_name": torch.cuda.get_device_name(0)
            if device.type == "cuda"
            else platform.processor() or "cpu",
            "torch": torch.__version__,
            "cuda": torch.version.cuda,
            "faiss": f"{faiss_version} ({faiss_gpus} GPUs)",
            "cpu_count": os.cpu_count(),
            "git_sha": git_sha(ROOT),
            "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "dim": s.dim,
            "t_f": s.t_f,
            "t_q": s.t_q,
            "t_u": s.t_u,
            "main_method": f"torch ({device.type})",
            "settings": {k: v for k, v in s.__dict__.items()},
        }
        report = Report(out_dir=out_dir, meta=meta)
        report.write()
        start = time.perf_counter()
        bench_drcdown(s, device, report, deadline=start + s.budget_s)
        if not args.skip_throughput:
            bench_throughput(s, device, report)
        report.meta["wall_s"] = time.perf_counter() - start
        report.write()
    except SyndrError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(render_markdown(report.as_dict()))
    print(f"wrote {out_dir / (RESULTS_STEM + '.json')} and .md", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
