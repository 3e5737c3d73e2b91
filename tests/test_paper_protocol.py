"""The paper experiments run the paper's protocol by default, record it, and compare.

Fixtures have the real structure: KADID-10k with all 81 references x 25 types x 5 levels
(32x24 images; two distinct images per reference and level, the rest hard links),
KADIS-700k with 300 references, LIVEC, KonIQ-10k and BID. The one-epoch runs replace
GenDist's pixels by links to the candidate's reference image (GenDist itself is tested in
test_distort_generate and, end to end, in test_syndr_experiments), so that seven runs fit
in seconds; everything else (pool, DDCUp selection and labels, DRCDown, training, tests,
protocol record) is the real code.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from hydra.core.global_hydra import GlobalHydra

from syndr_lightning.data import paper_protocol as proto
from syndr_lightning.data.datasets import load_dataset
from syndr_lightning.data.splits import resolve_kadid_refs, resolve_types
from syndr_lightning.evaluation import resolve_selection
from syndr_lightning.fakedata.fixtures import write_fixture
from syndr_lightning.models.backbones import weights_name
from syndr_lightning.reshape.params import ReshapeParams
from syndr_lightning.train import compose_config, train
from syndr_lightning.utils.errors import ConfigError
from syndr_lightning.utils.transforms import EvalTransform

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "compare_paper.py"
V1 = "ResNet50_Weights.IMAGENET1K_V1"
ROWS = "abcdef"


def load_script(path: Path = SCRIPT) -> Any:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------- what the paper uses
#: The DGQA distortion types per target (reference code: folders.KADID_10kFolder).
PAPER_TYPES = {
    "livec": (1, 3, 10, 17, 18, 25),
    "koniq10k": (1, 3, 16, 17, 18, 25),
    "bid": (1, 3, 9, 21, 23, 25),
    "pipal1": (1, 2, 3, 9, 17, 18, 25),
    "pipal2": (1, 2, 3, 9, 17, 23),
    "pipal3": (1, 3, 16, 17, 18, 19, 25),
    "pipal4": (1, 3, 7, 9, 10, 17, 18, 25),
    "pipal5": (1, 2, 3, 4, 9),
    "pipal6": (1, 2, 3, 9, 10, 11, 12, 16, 17, 18, 19, 21, 22, 25),
    "all": tuple(range(1, 26)),
}
#: Per paper experiment: the types' key, references, test fraction (reference code:
#: base_tools.get_db_base_info; paper Sec. 5: intra-dataset 80/20 by reference).
PAPER_DATA = {
    "syn2auth target=livec": ("target", 74, 0.0),
    "baseline target=bid": ("target", 74, 0.0),
    **{f"ablation/{r} target=koniq10k": ("target", 74, 0.0) for r in ROWS},
    "syn2alg pipal_subset=pipal4": ("pipal_subset", 74, 0.0),
    "syn2syn": ("all", 74, 0.0),
    "intra": ("all", 81, 0.2),
}
#: Training protocol of the reference code (train_test_IQA_cross.py defaults, Baseline).
PAPER_TRAINING = {
    "trainer.max_epochs": 24,
    "model.backbone": "resnet50",
    "model.weights": "IMAGENET1K_V1",
    "model.lr": 2e-5,
    "model.lr_ratio": 10.0,
    "model.weight_decay": 5e-4,
    "model.loss": "l1",
    "data.batch_size": 32,
    "data.crop_size": 224,
    "data.eval_crops": 5,
    "data.eval_crop_mode": "random",
    "data.hflip": False,
    "data.val_fraction": 0.0,
    "data.candidate_pool.size": "refset",
    "data.ddcup_reference_set": "all",
    "data.label_scaling": "authors",
    "reshape.encoder": "resnet50",
    "reshape.encoder_weights": "IMAGENET1K_V1",
    "reshape.encoder_crop": 224,
    "reshape.k": 5,
    "reshape.T_ref": 0.05,
    "reshape.T_q": 1.0,
    "reshape.T_f": 0.1,
    "reshape.T_u": 20,
    "reshape.levels": [1, 3, 5],
    "reshape.weights": "reference",
    "reshape.rule": "reference",
    "select_on_test": False,
}
#: Table 4's switches per row: (DDCUp adds content, DDCUp selects, DRCDown).
ABLATION = {"a": (False, True, False), "b": (True, False, False), "c": (False, True, True),
            "d": (True, False, True), "e": (True, True, False), "f": (True, True, True)}  # fmt: skip


def _compose(args: Sequence[str]) -> Any:
    GlobalHydra.instance().clear()
    return compose_config(list(args))


@pytest.mark.parametrize("name", sorted(PAPER_DATA))
def test_paper_experiment_configs_are_the_papers(name: str) -> None:
    exp, *rest = name.split()
    cfg = _compose([f"+experiment={exp}", *rest])
    key, n_refs, test_fraction = PAPER_DATA[name]
    data = cfg.data
    subset = cfg[key] if key != "all" else "all"
    assert resolve_types(data.train.options.types) == PAPER_TYPES[subset]
    if key != "all":  # the types follow the chosen target / PIPAL subset
        assert data.train.options.types == subset
        for other, types in PAPER_TYPES.items():
            assert resolve_types(other) == types
    assert len(resolve_kadid_refs(data.train.options.refs)) == n_refs
    assert float(data.get("test_fraction", 0.0)) == test_fraction
    if test_fraction:  # Table 3's KADID column: five random patches, as the paper
        assert data.heldout_crop_mode == "random" and data.eval_crops == 5
    from omegaconf import OmegaConf

    for key, want in PAPER_TRAINING.items():
        got = OmegaConf.select(cfg, key)
        got = OmegaConf.to_object(got) if hasattr(got, "_content") else got
        assert got == want, (name, key, got)
    assert resolve_selection(cfg) == "last" and cfg.optimized_metric is None
    assert weights_name(cfg.model.backbone, cfg.model.weights) == V1
    assert weights_name(cfg.reshape.encoder, cfg.reshape.encoder_weights) == V1
    bid = [t for t in data.test if t.name == "bid"]
    assert all(t.resize == 512 for t in bid)  # BID_512
    if exp.startswith("ablation/"):
        ddcup, select, drcdown = ABLATION[exp[-1]]
        r = cfg.reshape
        assert (r.ddcup, r.select_candidates or not r.ddcup, r.drcdown) == (
            ddcup,
            select,
            drcdown,
        )
        assert (cfg.callbacks.get("drcdown") is not None) == drcdown


def test_table_2_headline_is_the_groups_pipal_images(tmp_path: Path) -> None:
    """Each PIPAL group is its own headline: test/pipal/* = that group's class only."""
    from omegaconf import OmegaConf

    from syndr_lightning.data.datasets.tid2013 import PIPAL_GROUPS

    root = write_fixture("pipal", tmp_path / "pipal", n_refs=2, per_class=2)
    whole = load_dataset("pipal", str(root))
    assert whole["dist_class"].nunique() == 7
    for group, (dist_class, _) in PIPAL_GROUPS.items():
        cfg = _compose(
            ["+experiment=syn2alg", f"pipal_subset={group}", f"paths.data_dir={tmp_path}"]
        )
        tests = OmegaConf.to_object(cfg.data.test)
        assert [t["name"] for t in tests] == ["pipal"] and not tests[0].get("group_by")
        part = load_dataset("pipal", tests[0]["root"], **tests[0].get("options", {}))
        assert set(part["dist_class"]) == {dist_class} and len(part) == 4
        same = whole[whole["dist_class"] == dist_class]
        assert list(part["score"]) == list(same["score"])  # normalised over the whole file
    with pytest.raises(ConfigError, match="group='pipal7' is unknown"):
        load_dataset("pipal", str(root), group="pipal7")
    GlobalHydra.instance().clear()


def test_validation_split_brings_back_val_selection_and_optuna_has_one() -> None:
    cfg = _compose(["+experiment=syn2auth", "data.val_fraction=0.2"])
    assert resolve_selection(cfg) == "val"
    cfg = _compose(["+experiment=syn2auth", "+hparams_search=optuna"])
    assert cfg.data.val_fraction == 0.2 and cfg.optimized_metric == "val/srcc"
    assert resolve_selection(cfg) == "val"
    GlobalHydra.instance().clear()


def test_model_biqa_names_imagenet1k_v1_for_backbone_and_encoder() -> None:
    cfg = _compose(["+experiment=syn2auth", "target=livec", "model=biqa"])
    assert cfg.model.weights == "IMAGENET1K_V1" and cfg.reshape.encoder_weights == "IMAGENET1K_V1"
    assert weights_name("resnet50", "imagenet").endswith("IMAGENET1K_V2")  # the library default
    GlobalHydra.instance().clear()


# ------------------------------------------------------------- pool, scaling, resize
def test_pool_is_a_seeded_draw_of_the_reference_set_size() -> None:
    cands = {f"c{i:03d}": Path(f"/x/c{i:03d}.png") for i in range(300)}
    pool = proto.draw_pool(cands, "refset", 81, seed=0)
    assert len(pool) == 81 and list(pool) == sorted(pool)
    assert proto.draw_pool(dict(reversed(cands.items())), "refset", 81, 0) == pool
    assert proto.draw_pool(cands, "refset", 81, seed=1) != pool
    assert len(proto.draw_pool(cands, "all", 81, 0)) == 300
    assert len(proto.draw_pool(cands, 10, 81, 0)) == 10
    assert len(proto.draw_pool(cands, "refset", 500, 0)) == 300  # never more than there are
    for bad in (0, -3, 2.5, "many", True):
        with pytest.raises(ConfigError, match=r"data\.candidate_pool\.size"):
            proto.draw_pool(cands, bad, 81, 0)


def test_authors_scaling_and_epoch_rescale() -> None:
    raw = np.array([1.0, 2.0, 3.0, 5.0])
    assert np.allclose(proto.minmax_scores(raw, 1.0, 5.0), [0, 2.5, 5, 10])
    assert np.allclose(proto.minmax_scores(raw, 1.0, 5.0, higher_is_better=False), [10, 7.5, 5, 0])
    scores = np.array([0.0, 2.0, 4.0, 8.0, 10.0])
    out = proto.rescale_rows(scores, np.array([1, 2, 3]))
    assert np.allclose(out, [0.0, 0.0, 10 / 3, 10.0, 10.0])  # only the kept rows move


def test_test_set_resize_scales_the_shorter_side() -> None:
    image = np.random.default_rng(0).integers(0, 255, (24, 32, 3), dtype=np.uint8)
    crops = EvalTransform(8, 2, "random", 0, resize=12)(image, index=3)
    assert crops.shape == (2, 3, 8, 8)
    with pytest.raises(ConfigError, match="resize must be an integer >= the crop size"):
        EvalTransform(16, 1, "random", 0, resize=12)


# ------------------------------------------------------------- one-epoch runs
def _fast_gendist(
    paths: Sequence[str], out_dir: Path, types: Sequence[int], levels: Sequence[int], **_: Any
) -> list[dict[str, Any]]:
    """GenDist's table, each 'distorted' image a link to its reference (see module doc)."""
    rows = []
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    for p in paths:
        stem = Path(p).stem
        for t in types:
            for lv in levels:
                target = Path(out_dir) / f"{stem}_{int(t):02d}_{int(lv):02d}.png"
                try:
                    os.link(p, target)
                except OSError:
                    shutil.copyfile(p, target)
                rows.append({"ref": stem, "type": t, "level": lv, "path": str(target), "seed": 0})
    return rows


def _overrides(root: Path) -> list[str]:
    return [
        f"paths.data_dir={root / 'data'}",
        f"paths.cache_dir={root / 'cache'}",
        f"paths.log_dir={root / 'logs'}",
        "model=tiny",
        "trainer=cpu",
        "trainer.max_epochs=1",
        "+trainer.limit_train_batches=2",
        "data.crop_size=8",
        "data.eval_crops=1",
        "data.batch_size=16",
        "data.num_workers=0",
        "data.gendist_workers=0",
        "data.pin_memory=false",
        "data.feature_pass.batch_size=512",
        "reshape.encoder=tiny_cnn",  # seeded random features: a real, cheap selection
        "reshape.encoder_weights=none",
        "reshape.encoder_crop=16",
        "callbacks.rich_progress_bar=null",
        "logger=csv",
    ]


JOBS = [("syn2auth", ["select_on_test=true"])] + [(f"ablation/{r}", []) for r in ROWS]


@pytest.fixture(scope="module")
def paper_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """KADID-10k (81 x 25 x 5), KADIS-700k (300 refs), LIVEC, KonIQ-10k, BID under data/."""
    root = tmp_path_factory.mktemp("paper")
    data = root / "data"
    write_fixture("kadid10k", data / "kadid10k", ref_ids=range(81), distinct=2)
    write_fixture("kadis700k", data / "kadis700k", n_refs=300)
    for name, opts in {"livec": 8, "koniq10k": 8, "bid": 6}.items():
        write_fixture(name, data / name, n_images=opts)
    return root


@pytest.fixture(scope="module")
def multirun(paper_data: Path) -> Iterator[Path]:
    """The seven one-epoch runs (syn2auth + Table 4 rows), as a Hydra multirun folder.

    Used by ONE test only, so that xdist runs the seven runs once."""
    root = paper_data
    sweep = root / "multirun"
    import syndr_lightning.distort as distort

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(distort, "generate", _fast_gendist)
        for i, (exp, extra) in enumerate(JOBS):
            args = [f"+experiment={exp}", "target=livec", "seed=0", *extra]
            out = sweep / str(i)
            GlobalHydra.instance().clear()
            cfg = compose_config([*args, *_overrides(root)], output_dir=out)
            train(cfg)
            (out / ".hydra").mkdir()
            (out / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(args))
            shutil.copyfile(out / "config_resolved.yaml", out / ".hydra" / "config.yaml")
    GlobalHydra.instance().clear()
    yield sweep


def _protocol(run: Path) -> dict[str, Any]:
    return json.loads((run / "syndr_protocol.json").read_text())


def test_one_epoch_runs_record_the_paper_protocol_and_compare(
    multirun: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """syn2auth and every Table 4 row ran one epoch; what they recorded; the comparison."""
    _check_syn2auth(multirun)
    _check_ablation_rows(multirun)
    _check_label_scaling(multirun)
    _check_compare(multirun, tmp_path, capsys)


def _check_syn2auth(multirun: Path) -> None:
    """74 training refs, DDCUp over 81 refs, a pool of 81 (listed twice), last epoch."""
    run = multirun / "0"
    p = _protocol(run)
    assert p["n_train_refs"] == 74 and p["train_types"] == [1, 3, 10, 17, 18, 25]
    assert p["ddcup_reference_set"] == "all" and p["n_ddcup_refs"] == 81
    pool = p["candidate_pool"]
    assert (pool["size"], pool["rule"], pool["seed"], pool["source_size"]) == (81, "refset", 0, 300)
    assert p["selection"] == "last + best-on-test (labelled)"
    assert p["n_val_refs"] == 0 and p["hflip"] is False
    assert p["label_scaling"].startswith("authors") and p["test_resize"] == {"bid": 512}
    assert (p["backbone_weights"], p["encoder_weights"]) == ("none", "none")
    listed = proto.read_name_list(run / pool["file"])
    assert len(listed) == 81 and listed == sorted(listed)
    beside = multirun.parent / "cache" / "upsampled" / "ddcup" / p["upsample_key"]
    assert proto.read_name_list(beside / "candidate_pool.txt") == listed
    meta = json.loads((beside / "meta.json").read_text())
    assert meta["n_train_refs"] == 81 and set(meta["selected"]) <= set(listed)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["info"]["selection"] == "last"
    assert not any(k.startswith(("val/", "test_last/")) for k in metrics["metrics"])
    for name in ("livec", "koniq10k", "bid"):
        assert f"test/{name}/srcc" in metrics["metrics"]
        assert metrics["metrics"][f"test_best_on_test/{name}/epoch"] == 0.0
    assert not list((run / "checkpoints").glob("epoch_*.ckpt"))  # no val-selected checkpoint


def _check_ablation_rows(multirun: Path) -> None:
    n_types, n_levels = 6, 3
    for i, row in enumerate(ROWS, start=1):
        p = _protocol(multirun / str(i))
        ddcup, select, drcdown = ABLATION[row]
        assert p["n_train_refs"] == 74 and p["selection"] == "last"
        assert (p["ddcup"], p["drcdown"]) == (ddcup, drcdown)
        if ddcup:
            assert p["n_ddcup_refs"] == 81 and p["candidate_pool"]["size"] == 81
            full = 81 * n_types * n_levels
            assert (p["n_upsampled"] == full) == (not select)  # rows b, d: every candidate
        else:
            assert p["n_upsampled"] == 0 and p["candidate_pool"] is None
        history = multirun / str(i) / "drcdown_history.json"
        assert history.is_file() == drcdown
        metrics = json.loads((multirun / str(i) / "metrics.json").read_text())["metrics"]
        assert {"test/livec/srcc", "test/koniq10k/srcc", "test/bid/srcc"} <= set(metrics)


def _check_label_scaling(multirun: Path) -> None:
    kadid = multirun.parent / "data" / "kadid10k"
    every = load_dataset("kadid10k", str(kadid))  # the whole dmos.csv
    report = proto.label_scaling_report(every, resolve_types("livec"))
    assert report["n_images"] == 81 * 6 * 5
    width_all = report["raw_max_file"] - report["raw_min_file"]
    width_sub = report["raw_max_subset"] - report["raw_min_subset"]
    assert math.isclose(report["T_q_band_ratio"], width_sub / width_all)
    assert 0 <= report["label_shift_mean"] <= report["label_shift_max"]
    # the training labels of the run are on the authors' scale: 0..10 over 81 refs x types
    subset = every[every["dist_type"].isin(resolve_types("livec"))]
    lo, hi = subset["raw_score"].min(), subset["raw_score"].max()
    p = _protocol(multirun / "0")
    assert f"raw {lo:.4g}..{hi:.4g}" in p["label_scaling"]
    measured = load_script(SCRIPT.parent / "label_scaling.py").report(kadid)
    livec = measured.set_index("subset").loc["livec"]
    assert len(measured) == 10 and livec["raw_min_subset"] == lo and livec["raw_max_subset"] == hi


def _check_compare(multirun: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    script = load_script()
    assert script.main([str(multirun), "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    table = pd.read_csv(tmp_path / "paper_comparison.csv", dtype={"table": str})
    assert (tmp_path / "paper_comparison.md").read_text() == printed
    row = table[(table["experiment"] == "syn2auth") & (table["metric"] == "srcc")]
    head = row[row["rule"] == "headline"].iloc[0]
    assert head["table"] == "1" and head["paper"] == 0.713 and head["n"] == 1
    metrics = json.loads((multirun / "0" / "metrics.json").read_text())["metrics"]
    assert math.isclose(head["ours_mean"], metrics["test/livec/srcc"], rel_tol=1e-9)
    assert math.isclose(head["difference"], head["ours_mean"] - 0.713, rel_tol=1e-9)
    diffs = head["protocol_differences"]
    for text in ("selection: last", "backbone tiny_cnn", "1 epochs (paper: 24)", "crop 8"):
        assert text in diffs
    assert "training refs" not in diffs and "DDCUp over" not in diffs  # 74 refs, 81 refs
    assert "BID not resized" not in diffs and "labels scaled" not in diffs
    best = row[row["rule"] == "best-on-test"].iloc[0]
    assert "selection" not in best["protocol_differences"]


def _job(root: Path, i: int, cfg: dict[str, Any], metrics: dict[str, float]) -> None:
    job = root / str(i)
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump([f"seed={cfg['seed']}"]))
    (job / ".hydra" / "config.yaml").write_text(yaml.safe_dump(cfg))
    (job / "metrics.json").write_text(json.dumps({"metrics": metrics}))
    protocol = {"n_train_refs": 74, "selection": "last", "label_scaling": "authors",
                "backbone_weights": V1, "ddcup": False, "drcdown": False}  # fmt: skip
    (job / "syndr_protocol.json").write_text(json.dumps(protocol))


def test_compare_paper_averages_table_4_targets_per_seed(tmp_path: Path) -> None:
    values = {"livec": [0.70, 0.72], "koniq10k": [0.68, 0.70], "bid": [0.76, 0.80]}
    i = 0
    for target, per_seed in values.items():
        for seed, v in enumerate(per_seed):
            cfg = {"task_name": "ablation_a", "target": target, "seed": seed,
                   "reshape": {"ddcup": False, "drcdown": False},
                   "model": {"backbone": "resnet50"}, "trainer": {"max_epochs": 24}}  # fmt: skip
            _job(tmp_path, i, cfg, {f"test/{target}/srcc": v, f"test/{target}/plcc": v})
            i += 1
    script = load_script()
    table = script.compare(
        script.job_records(script.find_jobs(tmp_path)), script.load_paper(script.PAPER_FILE)
    )
    t4 = table[(table["table"] == "4") & (table["experiment"] == "ablation_a")]
    livec = t4[t4["dataset"] == "livec"].iloc[0]  # the per-target cells too
    assert livec["n"] == 2 and math.isclose(livec["paper"], 0.6958)
    row = t4[t4["dataset"] == "mean"].iloc[0]
    means = [np.mean([values[t][s] for t in values]) for s in (0, 1)]
    assert row["n"] == 2 and math.isclose(row["ours_mean"], float(np.mean(means)))
    assert math.isclose(row["ours_std"], float(np.std(means, ddof=1)))
    assert math.isclose(row["difference"], row["ours_mean"] - 0.7155)
    assert row["protocol_differences"] == "selection: last (authors: best epoch on the test set)"
    # each target of Table 1 is not an ablation row: only the averaged row exists
    assert set(table["experiment"]) == {"ablation_a"}
    torch.manual_seed(0)  # keep the global RNG state of later tests independent of this one


def test_authors_scaling_in_the_datamodule(tmp_path: Path) -> None:
    """Without DRCDown the served labels are the authors': 0..10 over 81 refs x the types.

    The label file's extremes (of BID's types) sit in I06, one of the 7 references
    excluded from training: a per-epoch rescale over the 74 training references (the old
    behaviour) moves every label, the authors' scaling does not."""
    from syndr_lightning.data.syndr import SynDRDataModule

    kadid = tmp_path / "kadid10k"
    types = resolve_types("bid")
    write_fixture("kadid10k", kadid, ref_ids=range(81), types=types, distinct=1, size=(8, 8))
    dmos = pd.read_csv(kadid / "dmos.csv")
    in_i06 = dmos["ref_img"].str.upper() == "I06.PNG"
    rows = dmos.index[in_i06]
    dmos.loc[rows[0], "dmos"], dmos.loc[rows[1], "dmos"] = 0.2, 6.5  # outside 1..5
    dmos.to_csv(kadid / "dmos.csv", index=False)
    train = {"name": "kadid10k", "root": str(kadid), "options": {"refs": "cross74", "types": "bid"}}
    dm = SynDRDataModule(
        train,
        reshape=ReshapeParams(ddcup=False, drcdown=False),
        protocol=proto.DataProtocol(label_scaling="authors"),
        val_fraction=0.0,
        crop_size=8,
    )
    dm.setup("fit")
    every = load_dataset("kadid10k", str(kadid), types="bid")  # 81 refs x BID's types
    lo, hi = every["raw_score"].min(), every["raw_score"].max()
    assert (lo, hi) == (0.2, 6.5)
    base = dm.original_manifest
    assert base is not None and base["ref"].nunique() == 74 and "I06" not in set(base["ref"])
    authors = (base["raw_score"] - lo) / (hi - lo) * 10
    assert np.allclose(base["score"], authors)
    for _ in (0, 1):  # every epoch serves the same, authors' labels
        served = dm.train_dataloader().dataset.dataset.scores
        assert np.allclose(served, authors, atol=1e-5)
    raw = base["raw_score"].to_numpy()
    per_epoch = (raw - raw.min()) / (raw.max() - raw.min()) * 10  # the old behaviour
    assert np.abs(per_epoch - authors.to_numpy()).max() > 1.0
    facts = dm.facts().syndr
    assert facts is not None
    label = facts.label_scaling
    assert label.startswith("authors (0..10 over all refs x 6 types") and "again" not in label


def test_compare_paper_maps_syn2syn_intra_and_sweeps(tmp_path: Path) -> None:
    plain = {"ddcup": False, "drcdown": False}
    jobs = [
        ({"task_name": "syn2syn", "reshape": plain}, {"test/live/srcc": 0.90}),
        ({"task_name": "syn2syn", "reshape": {"ddcup": True, "drcdown": True}},
         {"test/live/srcc": 0.93}),
        *[({"task_name": "intra", "reshape": {"ddcup": True, "drcdown": True}},
           {"test/kadid10k_heldout/srcc": v}) for v in (0.80, 0.90, 0.86)],
        *[({"task_name": "syn2auth", "sweep_name": "T_q", "target": t,
            "reshape": {"ddcup": True, "drcdown": True, "T_q": 1.0}}, {f"test/{t}/srcc": 0.7})
          for t in ("livec", "koniq10k", "bid")],
    ]  # fmt: skip
    for i, (cfg, metrics) in enumerate(jobs):
        seed = i if cfg["task_name"] == "intra" else 0
        _job(tmp_path, i, {**cfg, "seed": seed}, metrics)
    script = load_script()
    table = script.compare(
        script.job_records(script.find_jobs(tmp_path)), script.load_paper(script.PAPER_FILE)
    ).set_index("experiment")
    assert table.loc["syn2syn_baseline", "paper"] == 0.9173
    assert table.loc["syn2syn", "paper"] == 0.9258 and table.loc["syn2syn", "ours_mean"] == 0.93
    intra = table.loc["intra"]  # Table 3's KADID-10k column (the paper's only intra number)
    assert intra["table"] == "3" and intra["paper"] == 0.8922 and intra["n"] == 3
    assert intra["ours_median"] == pytest.approx(0.86)
    # one-key sweeps match no paper row: Tables 5-7's rows are pairs (syndr reproduce)
    assert "sweep_T_q" not in table.index
    text = script.markdown(table.reset_index())
    assert "| 0.9258 |" in text and "| n/a |" not in text  # every paper number is known


def test_demo_training_switches_are_listed_as_protocol_differences() -> None:
    """Frozen batch norms, a learning-rate schedule and the head bias at the mean label
    (the demo's) are deviations from the paper and are listed; the paper's own values
    (false, none, zero) are not."""
    from syndr_lightning.paper.compare import protocol_differences

    paper = {
        "model": {
            "backbone": "resnet50",
            "freeze_bn": False,
            "lr_schedule": "none",
            "head_bias": "zero",
        }
    }
    demo = {
        "model": {
            "backbone": "resnet50",
            "freeze_bn": True,
            "lr_schedule": "cosine",
            "head_bias": "label_mean",
        }
    }
    before = protocol_differences(paper, {}, "syn2auth", "headline")
    after = protocol_differences(demo, {}, "syn2auth", "headline")
    assert sorted(set(after) - set(before)) == [
        "backbone batch-norm statistics frozen (paper: trained)",
        "cosine learning-rate schedule (paper: constant)",
        "head bias started at label_mean (paper: 0)",
    ]


def test_compare_paper_exit_codes_follow_the_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A missing multirun folder is a data error (1), as in docs/failures.md."""
    script = load_script()
    assert script.main([str(tmp_path / "missing")]) == 1
    assert capsys.readouterr().err.startswith("error: multirun directory")
