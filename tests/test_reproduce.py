"""``syndr reproduce``: the plan covers every paper number; the whole loop (plan, run,
interrupt, resume without redoing finished runs, report) on official-layout fixtures.

The loop trains one cell of every table (one target, one seed, tiny model, one epoch, two
batches) through the real command: the generated per-run configs, one Hydra multirun, the
task wrapper, the report. Tables 8-10's backbones and DDCUp encoders are overridden to
``tiny_cnn`` on the command line (the runs' own configs name the real ones, and the
report labels the difference). GenDist's pixels are links to the reference (as in
test_paper_protocol), everything else is the real code.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import yaml

from syndr_lightning.cli import main as syndr_main
from syndr_lightning.fakedata.fixtures import write_fixture
from syndr_lightning.paper.plan import campaign
from syndr_lightning.paper.tables import TABLES, paper_numbers

# One cell of every table (glob over table<T>/<row>/<target>).
CELLS = [
    "table1/syndr/livec",
    "table2/pipal3-syndr/pipal3",
    "table3/baseline/*",  # the intra-dataset run and the synthetic one
    "table4/b/livec",
    "table5/kall/livec",
    "table6/T_q0.5_T_f0.05/livec",
    "table7/T_u10/livec",
    "table8/vit_b_16-syndr/livec",  # also Table 10's first row: one run
    "table9/clip-baseline/livec",
    "table10/encoder-clip/livec",
]


def test_plan_covers_every_paper_number_and_names_the_real_models(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    runs, cells = campaign(list(TABLES), 3)
    assert len(runs) == 282 and len({r.folder for r in runs}) == 282
    for (table, row, dataset, metric), number in paper_numbers().items():
        if number.get("context"):
            continue
        spec = TABLES[table]
        rows = spec.average_rows.get(row, (row,))
        want = spec.mean_of if dataset == "mean" else (dataset,)
        for r in rows:
            for seed in range(3):
                hit = [
                    cells.get((table, r, t.name, seed))
                    for t in spec.row(r).targets
                    if set(t.datasets) & set(want)
                ]
                assert hit and all(hit), (table, row, dataset, metric, seed)
    # shared: Table 1's SynDR-IQA run is Table 4 f and the first rows of Tables 5-7
    shared = cells[("5", "k5_T_ref0.05", "livec", 0)]
    assert shared is cells[("1", "syndr", "livec", 0)] is cells[("7", "T_u20", "livec", 0)]
    assert shared.folder == "table1/syndr/livec/seed0"
    assert cells[("10", "encoder-vit_b_16", "bid", 2)].folder == "table8/vit_b_16-syndr/bid/seed2"
    kall = cells[("5", "kall", "bid", 0)]
    assert {"reshape.k=all", "reshape.T_ref=2.0"} <= set(kall.overrides)
    clip = cells[("10", "encoder-clip", "livec", 0)].overrides
    assert "model.backbone=vit_b_16" in clip and "reshape.encoder=clip_vit_b_16" in clip
    assert (
        syndr_main(["reproduce", "--plan", "--out", str(tmp_path), "--epoch-minutes", "2.5"]) == 0
    )
    text = capsys.readouterr().out
    assert "total: 282 runs (0 done, 0 partial, 282 pending), 282.0 GPU-h" in text
    assert "model.backbone=swin_t model.weights=IMAGENET1K_V1" in text
    assert "+experiment=syn2alg reshape.ddcup=false" in text and "pipal_subset=pipal6" in text
    # --weights: every use of a backbone's weights (model and DDCUp encoder) -> the file
    import torch

    from syndr_lightning.paper.cli import _apply_weights

    file = tmp_path / "vit.pth"
    torch.save({"w": torch.zeros(1)}, file)
    _apply_weights(runs, [f"vit_b_16={file}"])
    over = cells[("10", "encoder-clip", "livec", 0)].overrides
    assert f"model.weights={file}" in over and "reshape.encoder_weights=clip" in over
    assert f"reshape.encoder_weights={file}" in cells[("8", "vit_b_16-syndr", "bid", 1)].overrides
    assert syndr_main(["reproduce", "--plan", "--weights", "vgg=/none"]) == 2
    assert syndr_main(["reproduce", "--tables", "11", "--plan"]) == 2
    assert "not a table" in capsys.readouterr().err


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every dataset the ten tables train or test on, official layouts, tiny images."""
    root = tmp_path_factory.mktemp("reproduce")
    data = root / "data"
    write_fixture("kadid10k", data / "kadid10k", ref_ids=range(81), distinct=2)
    write_fixture("kadis700k", data / "kadis700k", n_refs=120)
    for name, n in {"livec": 8, "koniq10k": 8, "bid": 6}.items():
        write_fixture(name, data / name, n_images=n)
    write_fixture("pipal", data / "pipal", n_refs=2, per_class=2)
    write_fixture("live", data / "live")
    write_fixture("csiq", data / "csiq")
    write_fixture("tid2013", data / "tid2013", types=(1, 2), levels=(1, 2))
    return root


def _overrides(root: Path) -> list[str]:
    return [
        f"paths.data_dir={root / 'data'}",
        f"paths.cache_dir={root / 'cache'}",
        f"paths.log_dir={root / 'logs'}",
        "model=tiny",
        "model.backbone=tiny_cnn",  # Tables 8-10 name other backbones: tiny here
        "model.weights=none",
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
        "reshape.encoder=tiny_cnn",
        "reshape.encoder_weights=none",
        "reshape.encoder_crop=16",
        "callbacks.rich_progress_bar=null",
        "check_images=false",
        "logger=csv",
    ]


@pytest.fixture()
def counted(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, list[str]]]:
    """Counts the trainings; interrupts (KeyboardInterrupt) the one numbered ``stop``."""
    from test_paper_protocol import _fast_gendist

    import syndr_lightning.distort as distort
    from syndr_lightning import train as train_module

    real = train_module.train
    calls: dict[str, list] = {"runs": [], "stop": []}

    def train(cfg):
        calls["runs"].append(str(cfg.reproduce.folder))
        if calls["stop"] and len(calls["runs"]) == calls["stop"][0]:
            raise KeyboardInterrupt  # a preemption: the whole multirun stops here
        return real(cfg)

    monkeypatch.setattr(distort, "generate", _fast_gendist)
    monkeypatch.setattr(train_module, "train", train)
    yield calls


def test_the_whole_loop_plans_runs_resumes_and_reports(
    fixtures: Path, counted: dict[str, list], capsys: pytest.CaptureFixture[str]
) -> None:
    out = fixtures / "campaign"
    only = [a for c in CELLS for a in ("--only", c)]
    base = ["reproduce", "--seeds", "1", "--out", str(out), *only]
    over = _overrides(fixtures)
    # plan: 11 runs (Table 8's ViT-B/16 run is also Table 10's), nothing done
    assert syndr_main([*base, "--plan", *over]) == 0
    plan = capsys.readouterr().out
    assert "total: 11 runs (0 done, 0 partial, 11 pending)" in plan
    # no run finished yet: the per-backbone default estimate (paper/cost.py)
    assert "GPU-h" in plan and "default rates" in plan and " ?  " not in plan
    # run, interrupted at the 4th training
    counted["stop"].append(4)
    assert syndr_main([*base, *over]) == 130  # Ctrl-C: one line, no report
    said = capsys.readouterr()
    assert "reproduce: interrupted (Ctrl-C); 3 of 11 runs done" in said.err
    assert "Traceback" not in said.err and "Table" not in said.out
    first = list(counted["runs"])
    finished = first[:3]
    assert len(first) == 4
    stamps = {f: (out / f / "metrics.json").stat().st_mtime_ns for f in finished}
    # the same command resumes: only the 8 unfinished runs train
    counted["runs"].clear()
    counted["stop"].clear()
    assert syndr_main([*base, *over]) == 0
    assert len(counted["runs"]) == 8 and not set(counted["runs"]) & set(finished)
    assert stamps == {f: (out / f / "metrics.json").stat().st_mtime_ns for f in finished}
    capsys.readouterr()
    # the real override path: the runs' own configs name the table's models
    run_cfg = yaml.safe_load(
        (out / "table10/encoder-clip/livec/seed0/.hydra/config.yaml").read_text()
    )
    assert run_cfg["reproduce"]["overrides"][:4] == [
        "model.backbone=vit_b_16",
        "model.weights=IMAGENET1K_V1",
        "reshape.encoder=clip_vit_b_16",
        "reshape.encoder_weights=clip",
    ]
    assert run_cfg["sweep_group"] == "syndr-table10" and run_cfg["model"]["backbone"] == "tiny_cnn"
    # report (again: nothing left to run); numbers = the metric files
    counted["runs"].clear()
    assert syndr_main([*base, *over]) == 0 and counted["runs"] == []
    report = pd.read_csv(out / "paper_report.csv", dtype={"table": str})
    md = (out / "paper_report.md").read_text()
    assert set(report["table"]) == set(TABLES) and md.count("## Table ") == 10
    filled = report[report["n"] > 0]
    assert set(filled["table"]) == set(TABLES)
    for r in filled.itertuples():
        folder = out / r.runs.split()[0]
        metrics = json.loads((folder / "metrics.json").read_text())["metrics"]
        assert math.isclose(r.ours_mean, metrics[f"test/{r.dataset}/{r.metric}"], rel_tol=1e-12)
        assert math.isclose(r.difference, r.ours_mean - r.paper, rel_tol=1e-9)
    t10 = filled[(filled["table"] == "10") & (filled["row"] == "encoder-clip")].iloc[0]
    assert "DDCUp encoder tiny_cnn (table: clip_vit_b_16)" in t10["protocol_differences"]
    assert "backbone tiny_cnn (table: vit_b_16)" in t10["protocol_differences"]
    assert "1 epochs (paper: 24)" in t10["protocol_differences"]
    intra = filled[(filled["table"] == "3") & (filled["dataset"] == "kadid10k_heldout")]
    assert len(intra) == 2  # SRCC and PLCC of the intra-dataset run
    missing = report[(report["table"] == "1") & (report["row"] == "baseline")]
    assert (missing["status"] == "no runs yet").all()  # cells the selection left out
    shared = report[
        (report["table"] == "4") & (report["row"] == "f") & (report["dataset"] == "livec")
    ]
    assert (shared["n"] == 1).all()  # Table 1's SynDR-IQA run fills Table 4 row f
    assert "paper 0.584" in md  # Table 1's other methods, as context
    # a run stopped mid-training (a checkpoint, no test metrics) resumes from last.ckpt
    victim = out / "table4/b/livec/seed0"
    (victim / "metrics.json").unlink()
    assert syndr_main([*base, "--plan", *over]) == 0
    assert "(10 done, 1 partial, 0 pending)" in capsys.readouterr().out
    counted["runs"].clear()
    assert syndr_main([*base, *over]) == 0 and counted["runs"] == ["table4/b/livec/seed0"]
    record = json.loads((victim / "reproduce_run.json").read_text())
    assert record["resumed_from"] == str(victim / "checkpoints" / "last.ckpt")
    # a run recorded under another method than its row's is refused, never averaged in
    proto = out / "table7/T_u10/livec/seed0/syndr_protocol.json"
    payload = json.loads(proto.read_text())
    proto.write_text(json.dumps({**payload, "T_u": 20}))
    assert syndr_main([*base, "--report"]) == 0
    report = pd.read_csv(out / "paper_report.csv", dtype={"table": str})
    t7 = report[
        (report["table"] == "7") & (report["row"] == "T_u10") & (report["dataset"] == "livec")
    ]
    assert t7.iloc[0]["n"] == 0 and "T_u=20 (row: 10)" in t7.iloc[0]["status"]
    # the plan now knows a per-epoch time (recorded by the finished runs)
    assert syndr_main([*base, "--plan", *over]) == 0
    assert "total: 11 runs (11 done, 0 partial, 0 pending)" in capsys.readouterr().out
    # a hand-edited metrics.json (SRCC 0.99) is refused in one line; --plan agrees
    edited = out / "table1/syndr/livec/seed0/metrics.json"
    payload = json.loads(edited.read_text())
    payload["metrics"]["test/livec/srcc"] = 0.99
    edited.write_text(json.dumps(payload))
    assert syndr_main([*base, "--report"]) == 0
    report = pd.read_csv(out / "paper_report.csv", dtype={"table": str})
    t1 = report[(report["table"] == "1") & (report["row"] == "syndr")]
    t1 = t1[t1["dataset"] == "livec"].iloc[0]
    assert t1["n"] == 0 and f"{edited} does not match its digest" in t1["status"]
    assert syndr_main([*base, "--plan", *over]) == 0
    assert "(10 done, 0 partial, 0 pending, 1 refused)" in capsys.readouterr().out


def test_paper_task_skips_finished_runs_and_fails_one_run_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A finished run is not trained again (e.g. a SLURM requeue); a user-facing error
    fails that run only (one line, a run_status.json record), so Hydra goes on with the
    campaign's others."""
    from omegaconf import OmegaConf

    from syndr_lightning import train as train_module
    from syndr_lightning.paper.runner import paper_task
    from syndr_lightning.utils.errors import DatasetError

    cfg = OmegaConf.create(
        {"paths": {"output_dir": str(tmp_path)}, "ckpt_path": None, "seed": 0,
         "trainer": {"max_epochs": 1}, "reproduce": {"folder": "table2/pipal1-syndr/pipal1/seed0"}}
    )  # fmt: skip

    def missing(_cfg):
        raise DatasetError("pipal: root '/d/pipal' does not exist")

    monkeypatch.setattr(train_module, "train", missing)
    assert paper_task(cfg) is None
    assert "table2/pipal1-syndr/pipal1/seed0: error: pipal: root" in capsys.readouterr().err
    status = json.loads((tmp_path / "run_status.json").read_text())
    assert status["status"] == "failed" and status["exit_code"] == 1
    # the same command retries it; a success replaces the earlier attempt's record
    import os

    os.utime(tmp_path / "run_status.json", (1, 1))  # written by an earlier attempt

    def trained(_cfg):
        metrics = {"test/pipal/srcc": 0.5}
        (tmp_path / "metrics.json").write_text(json.dumps({"metrics": metrics}))
        return metrics

    monkeypatch.setattr(train_module, "train", trained)
    assert paper_task(cfg) == {"test/pipal/srcc": 0.5}
    assert json.loads((tmp_path / "run_status.json").read_text())["status"] == "finished"
    monkeypatch.setattr(train_module, "train", missing)
    assert paper_task(cfg) == {"test/pipal/srcc": 0.5}  # not trained again


CELL = ["reproduce", "--tables", "1", "--only", "table1/syndr/livec"]


@pytest.fixture(scope="module")
def uninterrupted(fixtures: Path) -> Path:
    """One cell, seeds 0 and 1, trained without interruption (the reference campaign)."""
    from test_paper_protocol import _fast_gendist

    import syndr_lightning.distort as distort

    out = fixtures / "uninterrupted"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(distort, "generate", _fast_gendist)
        assert syndr_main([*CELL, "--seeds", "2", "--out", str(out), *_overrides(fixtures)]) == 0
    return out


@pytest.fixture()
def sigterm_in(counted: dict[str, list], monkeypatch: pytest.MonkeyPatch) -> dict[str, list]:
    """SIGTERM to this process at the end of the training epoch of the runs (by number)
    listed in ``kill``: Lightning stops, ``preempted.ckpt`` is saved (the real path)."""
    import os
    import signal

    from lightning.pytorch import Callback

    from syndr_lightning import train as train_module

    real = train_module.build_callbacks
    counted["kill"] = []

    class Kill(Callback):
        def on_train_epoch_end(self, trainer, pl_module):
            os.kill(os.getpid(), signal.SIGTERM)

    def build_callbacks(*args, **kwargs):
        callbacks = real(*args, **kwargs)
        return [*callbacks, Kill()] if len(counted["runs"]) in counted["kill"] else callbacks

    monkeypatch.setattr(train_module, "build_callbacks", build_callbacks)
    return counted


def test_sigterm_stops_the_campaign_and_the_rerun_resumes_each_run_from_its_own_checkpoint(
    fixtures: Path,
    uninterrupted: Path,
    sigterm_in: dict[str, list],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Issue 29's acceptance: a SIGTERM'd ``syndr reproduce`` exits 143 within one job (no
    next run, no traceback, no "ckpt_path=" advice); the same command resumes the stopped
    run from its own preempted.ckpt and finishes the campaign; the report equals the
    uninterrupted campaign's. Two runs (one cell, seeds 0 and 1)."""
    over = _overrides(fixtures)
    cell = [*CELL, "--seeds", "2"]
    capsys.readouterr()
    out = fixtures / "preempted"
    sigterm_in["kill"].append(1)  # the first run
    assert syndr_main([*cell, "--out", str(out), *over]) == 143
    err = capsys.readouterr().err
    assert sigterm_in["runs"] == ["table1/syndr/livec/seed0"]  # stopped within that job
    assert "Traceback" not in err and "ckpt_path=" not in err
    assert "rerun the same `syndr reproduce` command" in err
    first = out / "table1/syndr/livec/seed0"
    assert (first / "checkpoints" / "preempted.ckpt").is_file()
    assert not (first / "metrics.json").exists() and not (out / "paper_report.csv").exists()
    # the same command: the stopped run resumes from ITS preempted.ckpt, the other trains
    sigterm_in["runs"].clear()
    sigterm_in["kill"].clear()
    assert syndr_main([*cell, "--out", str(out), *over]) == 0
    assert sigterm_in["runs"] == ["table1/syndr/livec/seed0", "table1/syndr/livec/seed1"]
    record = json.loads((first / "reproduce_run.json").read_text())
    assert record["resumed_from"] == str(first / "checkpoints" / "preempted.ckpt")
    second = json.loads((out / "table1/syndr/livec/seed1/reproduce_run.json").read_text())
    assert second["resumed_from"] is None
    keep = ["table", "row", "dataset", "metric", "ours_mean", "ours_std", "n", "status"]
    a = pd.read_csv(uninterrupted / "paper_report.csv", dtype={"table": str})[keep]
    b = pd.read_csv(out / "paper_report.csv", dtype={"table": str})[keep]
    assert (a["n"] == 2).any()
    pd.testing.assert_frame_equal(a, b)


def test_a_requeue_pointer_never_sends_one_runs_checkpoint_to_another(
    fixtures: Path,
    uninterrupted: Path,
    counted: dict[str, list],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Under SLURM, a requeued job's pointer names the checkpoint preempted under the same
    job id and command line: under a campaign, every run's command line. A run without a
    checkpoint of its own trains from scratch, never from the pointer's (here: seed 1's)."""
    from syndr_lightning.paper.runner import hydra_args

    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    over = _overrides(fixtures)
    out = (fixtures / "requeued").resolve()
    runs, _ = campaign(["1"], 1, ["table1/syndr/livec"])
    pointer = fixtures / "logs" / ".preempted" / "4242.json"
    pointer.parent.mkdir(parents=True, exist_ok=True)
    other = uninterrupted / "table1/syndr/livec/seed1/checkpoints/last.ckpt"
    pointer.write_text(json.dumps({"ckpt": str(other), "argv": hydra_args(out, runs, over)}))
    assert syndr_main([*CELL, "--seeds", "1", "--out", str(out), *over]) == 0
    assert not pointer.exists()

    def srcc(root: Path) -> float:
        file = root / "table1/syndr/livec/seed0/metrics.json"
        return json.loads(file.read_text())["metrics"]["test/livec/srcc"]

    assert srcc(out) == srcc(uninterrupted)  # seed 0's own training, not seed 1's weights


def test_an_unknown_key_stops_the_campaign_with_exit_2_and_no_resume_advice(
    fixtures: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = fixtures / "typo"
    over = [*_overrides(fixtures), "model.lrr=1"]
    assert syndr_main([*CELL, "--seeds", "1", "--out", str(out), *over]) == 2
    err = capsys.readouterr().err
    assert "model.lrr" in err and "resumes" not in err and "Traceback" not in err


def test_a_non_ascii_campaign_folder_trains_and_reports(
    fixtures: Path, counted: dict[str, list]
) -> None:
    out = fixtures / "kampagne_é_漢字"
    assert syndr_main([*CELL, "--seeds", "1", "--out", str(out), *_overrides(fixtures)]) == 0
    assert (out / "table1/syndr/livec/seed0/metrics.json").is_file()
    assert "livec" in (out / "paper_report.md").read_text(encoding="utf-8")
