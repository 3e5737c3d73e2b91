"""``--plan``'s protocol differences: each cell's remaining differences from the paper's
protocol, predicted from its composed config before anything runs.

The report's footnotes come from :func:`paper.compare.protocol_differences` over a
finished run's ``config_resolved.yaml`` and ``syndr_protocol.json``. Here the same
function reads the run's composed config and the protocol facts that config fixes
(weights, reference counts, candidate rule, label scaling, test resizing, selection);
facts known only after training (how many KADIS-700k references were available) are
written ``<at run time>``. The report's filter applies: the table's own backbone and
DDCUp encoder are not differences.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from typing import Any

from syndr_lightning.paper.plan import Run

#: Overrides that change no protocol difference (thresholds are the row's method).
_NEUTRAL = ("reshape.k=", "reshape.T_ref=", "reshape.T_q=", "reshape.T_f=", "reshape.T_u=")


def _protocol(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The ``syndr_protocol.json`` facts a config fixes before training."""
    from syndr_lightning.data.splits import resolve_kadid_refs
    from syndr_lightning.models.backbones import weights_name

    model, data, reshape = cfg.get("model") or {}, cfg.get("data") or {}, cfg.get("reshape") or {}
    options = (data.get("train") or {}).get("options") or {}
    n_refs = len(resolve_kadid_refs(options.get("refs"))) if "refs" in options else None
    pool = data.get("candidate_pool") or {}
    return {
        "backbone": model.get("backbone"),
        "backbone_weights": weights_name(str(model.get("backbone")), model.get("weights")),
        "encoder_weights": weights_name(
            str(reshape.get("encoder")), reshape.get("encoder_weights")
        ),
        "n_train_refs": n_refs,
        "n_val_refs": None,
        "ddcup": bool(reshape.get("ddcup")),
        "drcdown": bool(reshape.get("drcdown")),
        "n_ddcup_refs": 81 if data.get("ddcup_reference_set") == "all" else n_refs,
        "candidate_pool": {
            "rule": "predistorted" if data.get("predistorted") else str(pool.get("size")),
            "size": pool.get("size"),
            "seed": pool.get("seed"),
            "source_size": "<at run time>",
        },
        "label_scaling": str(data.get("label_scaling", "")),
        "test_resize": {
            str(t.get("name")): t.get("resize")
            for t in data.get("test") or []
            if isinstance(t, Mapping) and t.get("resize")
        },
    }


def run_differences(run: Run, extra: Sequence[str] = ()) -> tuple[str, ...]:
    """The report's footnote of ``run`` as its config stands (``extra``: the user's
    overrides given to every run)."""
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    from syndr_lightning.compose import compose_config
    from syndr_lightning.evaluation import resolve_selection
    from syndr_lightning.paper.compare import protocol_differences

    GlobalHydra.instance().clear()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = compose_config([f"+experiment={run.experiment}", *run.overrides, *extra], tmp)
        plain = OmegaConf.to_container(cfg, resolve=True)
    GlobalHydra.instance().clear()
    protocol = _protocol(plain)
    protocol["selection"] = resolve_selection(cfg)
    experiment = "intra" if run.experiment == "intra" else "syn2auth"
    diffs = protocol_differences(plain, protocol, experiment, "headline")
    return tuple(d for d in diffs if not d.startswith(("backbone ", "DDCUp encoder")))


def format_differences(
    cells: Mapping[tuple[str, str, str, int], Run], extra: Sequence[str] = ()
) -> str:
    """Numbered footnotes and, per table row, the footnote of each target's cells."""
    cache: dict[tuple[str, tuple[str, ...]], tuple[str, ...]] = {}
    notes: list[tuple[str, ...]] = []
    by_row: dict[tuple[str, str], dict[str, int]] = {}
    for (table, row, target, _seed), run in sorted(
        cells.items(), key=lambda kv: (int(kv[0][0]), kv[0][1:])
    ):
        key = (run.experiment, tuple(o for o in run.overrides if not o.startswith(_NEUTRAL)))
        if key not in cache:
            cache[key] = run_differences(run, extra)
        diffs = cache[key]
        if diffs not in notes:
            notes.append(diffs)
        by_row.setdefault((table, row), {})[target] = notes.index(diffs) + 1
    lines = [
        "",
        "protocol differences per cell (the report's footnotes, predicted from the configs):",
    ]
    for (table, row), targets in by_row.items():
        marks = sorted(set(targets.values()))
        text = (
            f"[{marks[0]}]"
            if len(marks) == 1
            else ", ".join(f"{t} [{n}]" for t, n in sorted(targets.items()))
        )
        lines.append(f"  table {table:>2}  {row:<20} {text}")
    for i, diffs in enumerate(notes, start=1):
        lines.append(f"[{i}] {'; '.join(diffs) if diffs else 'none'}")
    return "\n".join(lines) + "\n"
