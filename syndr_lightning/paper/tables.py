"""The paper's Tables 1-10 as runs: every row, every column, what trains it.

A table has rows (methods or settings) and columns (test sets, plus the paper's average).
Each row is trained by one or more *runs*, one per target (``target=livec``, a PIPAL
group, the synthetic test sets, the intra-dataset split) and seed; a run is
``+experiment=NAME`` plus value overrides, nothing else, so the plan can print it as the
command line it is. The paper file (``paper_results.json``) holds the numbers under the same
``(table, row, dataset, metric)`` keys. Plain data, no torch.

Readings of the paper that are choices (docs/syndr.md, "Reproducing each table"):

* Table 2: PIPAL group N of the paper's row order = ``pipal_subset=pipalN`` (the DGQA type
  subset) and PIPAL distortion class N as the headline test set.
* Table 5: ``k=1`` keeps the default ``T_ref`` (one neighbour: the threshold has no effect);
  ``k=all, T_ref=-`` = every training reference as a neighbour with no threshold
  (``reshape.T_ref=2.0``: cosine distances lie in [0, 2], so no neighbour is dropped).
* Tables 8-9: DDCUp's encoder is the backbone itself (Table 10's ViT-B/16 (ImageNet) row
  equals Table 8's ViT-B/16 SynDR-IQA row, so that run used the ViT-B/16 encoder).
  Table 9's ViT-B/16 (ImageNet) rows are Table 8's ViT-B/16 rows: the same runs.
* Table 3's KADID-10k column is the intra-dataset experiment (80/20 by reference); the
  paper reports the median of 10 splits, the report the mean +- std over ``--seeds``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from syndr_lightning.reshape.params import DDCUpParams, DRCDownParams

PAPER_FILE = Path(__file__).resolve().parent / "paper_results.json"

#: The overrides of a row without reshaping (the DGQA baseline on the same data).
BASELINE = ("reshape.ddcup=false", "reshape.drcdown=false", "callbacks.drcdown=null")
#: The paper's thresholds (the defaults of reshape/params.py, mirrored by
#: conf/reshape/syndr.yaml): an override equal to one is no override.
PAPER_DEFAULTS = {
    f"reshape.{key}": getattr(params, key)
    for params, keys in ((DDCUpParams, ("k", "T_ref")), (DRCDownParams, ("T_q", "T_f", "T_u")))
    for key in keys
}
#: Weights of each backbone as the paper used them (torchvision's of the authors' era; CLIP).
PAPER_WEIGHTS = {
    "resnet50": "IMAGENET1K_V1",
    "swin_t": "IMAGENET1K_V1",
    "vit_b_16": "IMAGENET1K_V1",
    "clip_vit_b_16": "clip",
}
AUTHENTIC = ("livec", "koniq10k", "bid")
SYNTHETIC = ("live", "csiq", "tid2013")
#: Table 2's groups in the paper's row order (= pipal1..pipal6: an assumption).
PIPAL_NAMES = {
    "pipal1": "Traditional SR",
    "pipal2": "PSNR-originated SR",
    "pipal3": "SR with kernel mismatch",
    "pipal4": "GAN-based SR",
    "pipal5": "Denoising",
    "pipal6": "SR and denoising joint",
}
PIPAL_GROUPS = tuple(PIPAL_NAMES)


@dataclass(frozen=True)
class Target:
    """One run per seed: its folder name, extra overrides, the test sets it fills."""

    name: str
    overrides: tuple[str, ...]
    datasets: tuple[str, ...]
    experiment: str | None = None  # None: the row's


@dataclass(frozen=True)
class Row:
    """One row of a table: the experiment and overrides that train it, its targets."""

    id: str
    label: str
    experiment: str
    overrides: tuple[str, ...]
    targets: tuple[Target, ...]
    #: What the runs must have been (checked against syndr_protocol.json): reshape flags,
    #: thresholds, backbone and DDCUp encoder.
    expect: dict[str, Any] = field(default_factory=dict)

    def runs(self) -> list[tuple[Target, str, tuple[str, ...]]]:
        """``(target, experiment, overrides)`` of each of the row's runs."""
        return [
            (t, t.experiment or self.experiment, (*self.overrides, *t.overrides))
            for t in self.targets
        ]


@dataclass(frozen=True)
class Table:
    """A paper table: rows, columns (test-set labels), metrics, averaged columns / rows."""

    id: str
    title: str
    rows: tuple[Row, ...]
    columns: tuple[str, ...]
    metrics: tuple[str, ...]
    #: The paper's average column: the mean over these columns per seed.
    mean_of: tuple[str, ...] = ()
    #: The paper's average rows: row id -> the rows averaged per seed.
    average_rows: dict[str, tuple[str, ...]] = field(default_factory=dict)
    note: str = ""

    def row(self, row_id: str) -> Row:
        """The row called ``row_id``."""
        for r in self.rows:
            if r.id == row_id:
                return r
        raise KeyError(row_id)


def _authentic() -> tuple[Target, ...]:
    return tuple(Target(t, (f"target={t}",), (t,)) for t in AUTHENTIC)


def _expect(
    ddcup: bool = True,
    drcdown: bool = True,
    backbone: str = "resnet50",
    encoder: str | None = None,
    **thresholds: Any,
) -> dict[str, Any]:
    values = {k.split(".")[1]: v for k, v in PAPER_DEFAULTS.items()}
    values.update(thresholds)
    out: dict[str, Any] = {"ddcup": ddcup, "drcdown": drcdown, "backbone": backbone}
    if ddcup:
        out["encoder"] = encoder or backbone
        out.update({k: values[k] for k in ("k", "T_ref")})
    if drcdown:
        out.update({k: values[k] for k in ("T_q", "T_f", "T_u")})
    return out


def _model(backbone: str, encoder: str | None = None) -> tuple[str, ...]:
    """Overrides of a backbone (and DDCUp encoder) with the paper's weights."""
    enc = encoder or backbone
    return (
        f"model.backbone={backbone}",
        f"model.weights={PAPER_WEIGHTS[backbone]}",
        f"reshape.encoder={enc}",
        f"reshape.encoder_weights={PAPER_WEIGHTS[enc]}",
    )


def _syndr_row(row_id: str, label: str, **thresholds: Any) -> Row:
    over = tuple(f"reshape.{k}={v}" for k, v in thresholds.items())
    return Row(row_id, label, "syn2auth", over, _authentic(), _expect(**thresholds))


def _tables() -> dict[str, Table]:
    auth_mean = {"mean_of": AUTHENTIC}
    t1 = Table(
        "1",
        "Synthetic-to-authentic (KADID-10k -> target), SRCC / PLCC",
        (
            Row("baseline", "DGQA (baseline)", "baseline", (), _authentic(), _expect(False, False)),
            Row("syndr", "SynDR-IQA", "syn2auth", (), _authentic(), _expect()),
        ),
        AUTHENTIC,
        ("srcc", "plcc"),
        **auth_mean,
    )
    t2_rows = []
    for g in PIPAL_GROUPS:
        target = (Target(g, (f"pipal_subset={g}",), ("pipal",)),)
        name = f"{PIPAL_NAMES[g]} ({g})"
        t2_rows.append(
            Row(f"{g}-dgqa", f"{name}, DGQA", "syn2alg", BASELINE, target, _expect(False, False))
        )
        t2_rows.append(Row(f"{g}-syndr", f"{name}, SynDR-IQA", "syn2alg", (), target, _expect()))
    t2 = Table(
        "2",
        "Synthetic-to-algorithmic (KADID-10k -> PIPAL groups), SRCC / PLCC",
        tuple(t2_rows),
        ("pipal",),
        ("srcc", "plcc"),
        average_rows={
            "average-dgqa": tuple(f"{g}-dgqa" for g in PIPAL_GROUPS),
            "average-syndr": tuple(f"{g}-syndr" for g in PIPAL_GROUPS),
        },
        note="pipalN = the paper's N-th group (its row order): an assumption",
    )

    def t3_targets() -> tuple[Target, ...]:
        return (
            Target("kadid10k", (), ("kadid10k_heldout",), experiment="intra"),
            Target("synthetic", (), SYNTHETIC),
        )

    t3 = Table(
        "3",
        "Synthetic-to-synthetic, SRCC / PLCC (KADID-10k column: intra-dataset 80/20)",
        (
            Row("baseline", "baseline", "syn2syn", BASELINE, t3_targets(), _expect(False, False)),
            Row("syndr", "SynDR-IQA", "syn2syn", (), t3_targets(), _expect()),
        ),
        ("kadid10k_heldout", *SYNTHETIC),
        ("srcc", "plcc"),
        note="the paper's KADID-10k column is the median of 10 splits; ours: mean +- std",
    )
    ablation = {
        "a": ("baseline", (), _expect(False, False)),
        "b": ("ablation/b", (), {**_expect(True, False), "select_candidates": False}),
        "c": ("ablation/c", (), _expect(False, True)),
        "d": ("ablation/d", (), {**_expect(True, True), "select_candidates": False}),
        "e": ("ablation/e", (), _expect(True, False)),
        "f": ("syn2auth", (), _expect()),
    }
    labels = {
        "a": "a: baseline",
        "b": "b: + CD",
        "c": "c: + DOWN",
        "d": "d: + CD + DOWN",
        "e": "e: + CD + SEL (DDCUp)",
        "f": "f: + CD + SEL + DOWN (SynDR-IQA)",
    }
    t4 = Table(
        "4",
        "Ablation (CD: candidates added, SEL: DDCUp's selection, DOWN: DRCDown), SRCC",
        tuple(Row(r, labels[r], e, o, _authentic(), x) for r, (e, o, x) in ablation.items()),
        AUTHENTIC,
        ("srcc",),
        **auth_mean,
    )
    t5 = Table(
        "5",
        "DDCUp's k and T_ref, SRCC",
        (
            _syndr_row("k5_T_ref0.05", "k=5, T_ref=0.05 (ours)", k=5, T_ref=0.05),
            _syndr_row("k1", "k=1, T_ref=-", k=1),
            _syndr_row("k3_T_ref0.05", "k=3, T_ref=0.05", k=3, T_ref=0.05),
            _syndr_row("k5_T_ref0.1", "k=5, T_ref=0.1", k=5, T_ref=0.1),
            _syndr_row("k10_T_ref0.1", "k=10, T_ref=0.1", k=10, T_ref=0.1),
            _syndr_row("kall", "k=all, T_ref=- (no threshold)", k="all", T_ref=2.0),
        ),
        AUTHENTIC,
        ("srcc",),
    )
    pairs = [(1, 0.1), (0.5, 0.1), (1.5, 0.1), (1, 0.05), (1, 0.15), (0.5, 0.05), (1.5, 0.15)]
    t6 = Table(
        "6",
        "DRCDown's T_q and T_f, SRCC",
        tuple(
            _syndr_row(
                f"T_q{q}_T_f{f}",
                f"T_q={q}, T_f={f}" + (" (ours)" if (q, f) == (1, 0.1) else ""),
                T_q=float(q),
                T_f=f,
            )
            for q, f in pairs
        ),
        AUTHENTIC,
        ("srcc",),
    )
    t7 = Table(
        "7",
        "DRCDown's T_u, SRCC",
        tuple(
            _syndr_row(f"T_u{u}", f"T_u={u}" + (" (ours)" if u == 20 else ""), T_u=u)
            for u in (20, 10, 30)
        ),
        AUTHENTIC,
        ("srcc",),
    )
    t8_rows = []
    for bb, name in (("swin_t", "Swin-T"), ("vit_b_16", "ViT-B/16")):
        t8_rows.append(
            Row(
                f"{bb}-baseline",
                f"{name}, baseline",
                "baseline",
                _model(bb)[:2],
                _authentic(),
                _expect(False, False, backbone=bb),
            )
        )
        t8_rows.append(
            Row(
                f"{bb}-syndr",
                f"{name}, SynDR-IQA",
                "syn2auth",
                _model(bb),
                _authentic(),
                _expect(backbone=bb),
            )
        )
    t8 = Table(
        "8",
        "Other ImageNet backbones, SRCC (DDCUp's encoder = the backbone)",
        tuple(t8_rows),
        AUTHENTIC,
        ("srcc",),
        **auth_mean,
    )
    clip = "clip_vit_b_16"
    # Table 9 compares CLIP with the ImageNet ViT-B/16 of Table 8: the same runs (equal
    # experiment and overrides, so the plan shares them and trains nothing new)
    vit_rows = tuple(
        Row(
            r.id.replace("vit_b_16", "imagenet"),
            f"ViT-B/16 (ImageNet), {r.label.split(', ')[1]}",
            r.experiment,
            r.overrides,
            r.targets,
            r.expect,
        )
        for r in t8_rows
        if r.id.startswith("vit_b_16")
    )
    t9 = Table(
        "9",
        "CLIP-pretrained ViT-B/16 as the backbone, SRCC (DDCUp's encoder = the backbone)",
        (
            *vit_rows,
            Row(
                "clip-baseline",
                "ViT-B/16 (CLIP), baseline",
                "baseline",
                _model(clip)[:2],
                _authentic(),
                _expect(False, False, backbone=clip),
            ),
            Row(
                "clip-syndr",
                "ViT-B/16 (CLIP), SynDR-IQA",
                "syn2auth",
                _model(clip),
                _authentic(),
                _expect(backbone=clip),
            ),
        ),
        AUTHENTIC,
        ("srcc",),
        **auth_mean,
    )
    t10 = Table(
        "10",
        "DDCUp's encoder, backbone ViT-B/16 (ImageNet), SRCC",
        (
            Row(
                "encoder-vit_b_16",
                "ViT-B/16 (ImageNet)",
                "syn2auth",
                _model("vit_b_16"),
                _authentic(),
                _expect(backbone="vit_b_16"),
            ),
            Row(
                "encoder-clip",
                "ViT-B/16 (CLIP)",
                "syn2auth",
                _model("vit_b_16", clip),
                _authentic(),
                _expect(backbone="vit_b_16", encoder=clip),
            ),
        ),
        AUTHENTIC,
        ("srcc",),
        **auth_mean,
    )
    return {t.id: t for t in (t1, t2, t3, t4, t5, t6, t7, t8, t9, t10)}


TABLES: dict[str, Table] = _tables()


def parse_tables(text: str) -> list[str]:
    """``"1,2,5-7"`` -> ``["1", "2", "5", "6", "7"]`` (``all``: every table)."""
    from syndr_lightning.utils.errors import ConfigError

    if str(text).strip().lower() in ("all", ""):
        return list(TABLES)
    out: list[str] = []
    for part in str(text).split(","):
        part = part.strip()
        lo, _, hi = part.partition("-")
        try:
            ids = range(int(lo), int(hi or lo) + 1)
        except ValueError:
            ids = range(0)
        if not ids or any(str(i) not in TABLES for i in ids):
            raise ConfigError(
                f"--tables {text!r}: {part!r} is not a table; expected numbers 1..10, "
                f"ranges (5-7) or all, comma-separated"
            )
        out += [str(i) for i in ids if str(i) not in out]
    return out


@cache
def _paper_payload(path: str) -> dict[str, Any]:
    from syndr_lightning.utils.errors import InputError

    try:
        payload = json.loads(Path(path).read_text(encoding="utf-8"))
        rows = payload["rows"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(
            f"{path} is not a paper-results file ({exc}); expected JSON with a 'rows' list "
            f"as in syndr_lightning/paper/paper_results.json"
        ) from None
    return {"rows": rows, "assumptions": payload.get("assumptions", [])}


def paper_numbers(path: str | Path = PAPER_FILE) -> dict[tuple[str, str, str, str], dict[str, Any]]:
    """The paper file as ``{(table, row, dataset, metric): row}`` (context rows included)."""
    out = {}
    for r in _paper_payload(str(path))["rows"]:
        out[(str(r["table"]), str(r["row"]), str(r["dataset"]), str(r["metric"]))] = r
    return out
