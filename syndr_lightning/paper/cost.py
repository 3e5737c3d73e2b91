"""Per-backbone cost of a campaign run when nothing has been measured yet.

An epoch trains on the run's images once and, with DRCDown, passes them once more
through the model for features. Its time is ``images / training rate + images /
feature rate``; the rates are per backbone. The defaults below are assumptions for one
H100/H200 with bf16 and enough loader workers (documented in docs/syndr.md); they are
replaced by what ``experiments/gpu_bench.py`` measured (``gpu_bench_results.json``,
ResNet-50; the other backbones scaled by the default ratios) and, per backbone, by the
seconds per epoch that finished runs recorded (:func:`plan.recorded_epoch_seconds`).
Plain Python, no torch.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

#: Assumed images per second on one H100/H200 (bf16): (training step, feature pass).
DEFAULT_RATES: dict[str, tuple[float, float]] = {
    "resnet50": (900.0, 2700.0),
    "swin_t": (650.0, 2000.0),
    "vit_b_16": (450.0, 1400.0),
    "clip_vit_b_16": (450.0, 1400.0),
}
#: KADID-10k references a run trains on (cross-dataset: 74; intra-dataset: 80% of 81).
TRAIN_REFS = {"intra": 65}
CROSS_REFS = 74
#: DDCUp adds 81 new references at levels 1, 3 and 5 of the training types.
DDCUP_REFS, DDCUP_LEVELS = 81, 3


def training_images(experiment: str, overrides: Sequence[str], ddcup: bool) -> int:
    """Images per epoch of a campaign run: references x its types x 5 levels, plus what
    DDCUp adds (the target's DGQA type subset; every type for syn2syn/intra)."""
    from syndr_lightning.data.splits import DGQA_SUBSETS

    values = dict(o.lstrip("+").split("=", 1) for o in overrides if "=" in o)
    subset = values.get("target") or values.get("pipal_subset")
    if experiment in ("intra", "syn2syn") or subset is None:
        subset = "all"
    n_types = len(DGQA_SUBSETS.get(subset, DGQA_SUBSETS["all"]))
    refs = TRAIN_REFS.get(experiment, CROSS_REFS)
    extra = DDCUP_REFS * n_types * DDCUP_LEVELS if ddcup else 0
    return refs * n_types * 5 + extra


def bench_rates(paths: Sequence[Path]) -> dict[str, tuple[float, float]]:
    """Rates from the first readable ``gpu_bench_results.json`` among ``paths``: its
    ResNet-50 "loader + model" training and feature rows; other backbones scaled by the
    default ratios. {} when none is found or it has no GPU rows."""
    for path in paths:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            rows = {r["what"]: float(r["images_per_s"]) for r in data.get("throughput") or []}
            if (data.get("meta") or {}).get("mode") != "gpu":
                continue  # a --cpu-smoke record says nothing about a GPU
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue
        train = rows.get("training step (loader + model)")
        feats = rows.get("DRCDown feature pass (loader + model)")
        if not train or not feats:
            continue
        base_t, base_f = DEFAULT_RATES["resnet50"]
        return {
            name: (train * t / base_t, feats * f / base_f) for name, (t, f) in DEFAULT_RATES.items()
        }
    return {}


def estimated_epoch_seconds(
    backbone: str, images: int, drcdown: bool, rates: dict[str, tuple[float, float]] | None = None
) -> float:
    """Seconds of one epoch: training on ``images`` plus, with DRCDown, their feature pass."""
    table = rates or DEFAULT_RATES
    train, feats = table.get(backbone, table.get("resnet50", DEFAULT_RATES["resnet50"]))
    return images / train + (images / feats if drcdown else 0.0)


#: Where ``--plan`` looks for gpu_bench records: the campaign folder, then the checkout's docs.
BENCH_FILE = "gpu_bench_results.json"


def cost_source(
    root: Path, recorded: dict[str, float], epoch_minutes: float | None
) -> tuple[dict[str, tuple[float, float]], str]:
    """The rates the plan estimates with and one line saying where its costs come from."""
    if epoch_minutes is not None:
        return {}, f"{epoch_minutes} min per epoch (--epoch-minutes)"
    docs = Path(__file__).resolve().parents[2] / "docs" / BENCH_FILE
    rates = bench_rates([Path(root) / BENCH_FILE, docs])
    parts = [
        f"{k} {v / 60:.2f} min/epoch (finished runs)"
        for k, v in sorted(recorded.items())
        if k != "*"
    ]
    origin = "gpu_bench_results.json" if rates else "default rates, docs/syndr.md"
    table = rates or DEFAULT_RATES
    parts += [
        f"{k} {t:.0f}/{f:.0f} img/s train/features ({origin})"
        for k, (t, f) in table.items()
        if k not in recorded
    ]
    return rates, "; ".join(parts)
