"""The metric vocabulary: every key a run logs, its meaning, its unit and its kind.

One table (:data:`KEYS`) names everything a training run sends to its loggers (CSV,
TensorBoard, W&B) or writes into ``metrics.json`` and the W&B run summary. docs/metrics.md
is generated from it (``python -m syndr_lightning.metric_keys``) and a test checks the
two agree and that every key of a real run is listed here. ``<dataset>``, ``<optimizer>``
and ``<set>`` are placeholders for one path component (a test set's name, ...).

Kinds:

* ``metric``: a number per step or epoch (CSV column, TensorBoard scalar, W&B history);
* ``summary``: a final number of ``metrics.json`` and the W&B summary, not a series;
* ``metadata``: a string describing the run (W&B summary, TensorBoard text), never plotted;
* ``media``: a figure (W&B image, TensorBoard image, PNG in the run folder) or a W&B table;
* ``axis``: a step counter that other keys are plotted against;
* ``internal``: W&B's own bookkeeping.

No torch, no Lightning: importable anywhere (docs, tests, notebooks).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

__all__ = [
    "CORRELATIONS",
    "KEYS",
    "KINDS",
    "VAL_MONITOR",
    "MetricKey",
    "lookup",
    "render_markdown",
    "unknown_keys",
]

#: The metric model selection maximises (checkpoints, the sweep objective's default).
VAL_MONITOR = "val/srcc"
#: The kinds of keys, in the order docs/metrics.md lists them.
KINDS: tuple[str, ...] = ("metric", "summary", "metadata", "media", "axis", "internal")

_PLACEHOLDER = re.compile(r"<(\w+)>")


@dataclass(frozen=True)
class MetricKey:
    """One key (or key pattern) of the vocabulary."""

    pattern: str
    meaning: str
    unit: str
    kind: str
    #: The W&B summary rule (``wandb.define_metric``), "" for W&B's default (last value).
    summary: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind {self.kind!r} of {self.pattern!r} is not one of {KINDS}")

    @cached_property
    def regex(self) -> re.Pattern[str]:
        """The pattern as a regular expression (a placeholder = one path component)."""
        parts = _PLACEHOLDER.split(self.pattern)
        text = "".join(re.escape(p) if i % 2 == 0 else r"[^/]+" for i, p in enumerate(parts))
        return re.compile(f"^{text}$")


#: The four correlations of an evaluation (``syndr_lightning.metrics.IQAMetrics``).
CORRELATIONS: dict[str, str] = {
    "srcc": "Spearman rank correlation of predictions and MOS",
    "plcc": "Pearson linear correlation of predictions and MOS",
    "krcc": "Kendall rank correlation of predictions and MOS",
    "plcc_logistic": "Pearson correlation after the 4-parameter logistic fit (VQEG)",
}
_CORR = "correlation (-1..1)"


def _correlations(prefix: str, what: str, kind: str, summary: str = "") -> list[MetricKey]:
    return [
        MetricKey(
            f"{prefix}/{name}",
            f"{meaning}, {what}",
            _CORR,
            kind,
            summary if name == "srcc" and kind == "metric" else "",
        )
        for name, meaning in CORRELATIONS.items()
    ]


def _drcdown_stats(suffix: str, when: str) -> list[MetricKey]:
    """Cluster-size statistics of DRCDown's pool (``when``: before/after thinning)."""
    rows = [
        ("clusters", "clusters of at least 2 similar samples", "clusters"),
        ("singletons", "samples in no similar pair (clusters of size 1)", "samples"),
        (
            "clusters_incl_singletons",
            "clusters counting every singleton as a cluster of size 1 (the m of the paper's bound)",
            "clusters",
        ),
        ("size_mean", "mean cluster size over all clusters incl. singletons", "samples"),
        ("size_max", "largest cluster", "samples"),
        ("size_k2_over_k", "sum of squared cluster sizes / sum of sizes", "samples"),
        ("size_cv", "coefficient of variation (std/mean) of the cluster sizes", "ratio"),
        ("cluster_size_mean", "mean size of the clusters of at least 2 samples", "samples"),
    ]
    return [
        MetricKey(f"drcdown/{name}{suffix}", f"{meaning}, {when}", unit, "metric")
        for name, meaning, unit in rows
    ]


#: Every key a training run logs or records (see the module docstring for the kinds).
KEYS: tuple[MetricKey, ...] = (
    # ---------------------------------------------------------------- training
    MetricKey(
        "train/loss_step",
        "training loss of one optimisation step (model.loss, L1 by default)",
        "loss (L1: score points on the 0..10 scale)",
        "metric",
    ),
    MetricKey("train/loss_epoch", "mean training loss of the epoch", "loss", "metric"),
    MetricKey("train/loss", "mean training loss of the last epoch", "loss", "summary"),
    MetricKey(
        "lr-<optimizer>/backbone",
        "learning rate of the backbone's parameter group, per epoch",
        "learning rate",
        "metric",
    ),
    MetricKey(
        "lr-<optimizer>/head",
        "learning rate of the linear head's parameter group, per epoch",
        "learning rate",
        "metric",
    ),
    # -------------------------------------------------------------- validation
    *_correlations(
        "val",
        "on the validation set, per epoch",
        "metric",
        "val/srcc.max with selection=val (the selected checkpoint's), val/srcc.last with "
        "selection=last",
    ),
    MetricKey(
        "val/epoch",
        "epoch (0-based) of the checkpoint selected on val/srcc (absent with selection=last)",
        "epoch",
        "summary",
    ),
    *_correlations("val_last", "on the validation set, last epoch", "summary"),
    # -------------------------------------------------------------------- test
    *_correlations("test/<dataset>", "on a test set: the headline (selected checkpoint)", "metric"),
    *_correlations("test_last/<dataset>", "on a test set, last epoch", "metric"),
    *_correlations(
        "test_best_on_test/<dataset>",
        "best epoch ON THE TEST SET (select_on_test=true; optimistic)",
        "summary",
    ),
    MetricKey(
        "test_best_on_test/<dataset>/epoch",
        "epoch of the best test-set SRCC (select_on_test=true; optimistic)",
        "epoch",
        "summary",
    ),
    # ----------------------------------------------------------------- DRCDown
    MetricKey("drcdown/kept", "samples DRCDown kept for the epoch", "samples", "metric"),
    MetricKey("drcdown/total", "samples of the pool DRCDown thinned", "samples", "metric"),
    MetricKey("drcdown/kept_fraction", "drcdown/kept / drcdown/total", "fraction (0..1)", "metric"),
    MetricKey("drcdown/pairs", "similar pairs found in the pool (T_f, T_q)", "pairs", "metric"),
    *_drcdown_stats("", "before thinning"),
    *_drcdown_stats("_after", "after thinning (the kept subset)"),
    MetricKey("drcdown/feature_seconds", "time of the epoch's feature pass", "seconds", "metric"),
    MetricKey(
        "drcdown/select_seconds",
        "time of the epoch's pair search, clustering and thinning",
        "seconds",
        "metric",
    ),
    # ---------------------------------------------------------------- metadata
    MetricKey(
        "drcdown/subset_hash",
        "SHA-256 (hex) of the sorted kept indices of the latest epoch (every epoch's: "
        "drcdown_history.json)",
        "hex string",
        "metadata",
    ),
    MetricKey(
        "run/selection", "selection rule of the headline numbers: val or last", "text", "metadata"
    ),
    MetricKey(
        "run/protocol", "the protocol line printed under the results table", "text", "metadata"
    ),
    MetricKey(
        "run/git_sha", "git commit of the code (empty outside a checkout)", "text", "metadata"
    ),
    MetricKey("run/config", "the resolved config as YAML (TensorBoard text)", "text", "metadata"),
    # ------------------------------------------------------------------- media
    MetricKey(
        "test/<dataset>/scatter",
        "prediction vs MOS per image of a test set (selected checkpoint)",
        "image",
        "media",
    ),
    MetricKey(
        "test_last/<dataset>/scatter", "prediction vs MOS per image, last epoch", "image", "media"
    ),
    MetricKey(
        "test/<dataset>/predictions",
        "per-image predictions of a test set (W&B table, at most table_max_rows rows)",
        "table",
        "media",
    ),
    MetricKey(
        "test_last/<dataset>/predictions",
        "per-image predictions of a test set, last epoch (W&B table)",
        "table",
        "media",
    ),
    MetricKey(
        "train/learning_curves",
        "training loss, validation correlations and DRCDown's kept fraction per epoch",
        "image",
        "media",
    ),
    MetricKey(
        "umap/<set>",
        "UMAP of learned features (callbacks=umap; <set>: train, test sets)",
        "image",
        "media",
    ),
    MetricKey(
        "drcdown/clusters_start",
        "cluster sizes before/after DRCDown, model at the start of training (callbacks=umap)",
        "image",
        "media",
    ),
    MetricKey(
        "drcdown/clusters_final",
        "cluster sizes before/after DRCDown, final model (callbacks=umap)",
        "image",
        "media",
    ),
    MetricKey("curves", "drcdown/kept and val/srcc per epoch (callbacks=umap)", "image", "media"),
    # -------------------------------------------------------------------- axes
    MetricKey("epoch", "training epoch (0-based) of a logged row", "epoch", "axis"),
    MetricKey("step", "optimisation steps so far (CSV logger's row index)", "steps", "axis"),
    MetricKey("trainer/global_step", "optimisation steps so far (W&B x-axis)", "steps", "axis"),
    # ---------------------------------------------------------------- internal
    MetricKey("_step", "W&B's row counter", "rows", "internal"),
    MetricKey("_runtime", "W&B: seconds since the run started", "seconds", "internal"),
    MetricKey("_timestamp", "W&B: wall-clock time of the row", "seconds (Unix)", "internal"),
    MetricKey("_wandb", "W&B's own summary entries", "-", "internal"),
)


def lookup(key: str) -> MetricKey | None:
    """The vocabulary entry of ``key`` (exact keys before patterns), or None."""
    for entry in KEYS:
        if entry.pattern == key:
            return entry
    for entry in KEYS:
        if entry.regex.match(key):
            return entry
    return None


def unknown_keys(keys: Iterable[str]) -> list[str]:
    """The keys of ``keys`` that the vocabulary does not list (sorted, unique)."""
    return sorted({k for k in keys if lookup(k) is None})


_SUMMARY_OF_KIND = {
    "metric": "last",
    "summary": "the metrics.json value",
    "metadata": "the string",
    "media": "latest",
    "axis": "-",
    "internal": "-",
}


def render_markdown() -> str:
    """The generated part of docs/metrics.md: one table per kind."""
    lines: list[str] = []
    for kind in KINDS:
        lines += [f"### {kind}", "", "| key | meaning | unit | W&B summary |", "|---|---|---|---|"]
        for e in KEYS:
            if e.kind == kind:
                summary = e.summary or _SUMMARY_OF_KIND[kind]
                lines.append(f"| `{e.pattern}` | {e.meaning} | {e.unit} | {summary} |")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":  # pragma: no cover - exercised through the docs test
    print(render_markdown(), end="")
