"""Summaries that vouch for their inputs (issue 29, campaign half; issue 32's sweep and
report items; issue 33's ``sweep intra`` item), on hand-made run folders.

* ``sweep collect`` / ``sweep intra`` / ``reproduce --report`` count diverged and failed
  jobs as such (``run_status.json``) and never rank them; summaries over seeds refuse
  jobs that differ in anything but the seed, naming the key;
* metrics.json: strict JSON (null + a flag, never a bare NaN), a digest over the metrics
  and the run's identity; an edited, malformed or foreign file is refused in one line,
  and ``--plan`` says what the report does;
* ``syndr reproduce``: seed / ckpt_path / hydra.sweep.dir overrides refused, numbers
  range-checked, ``--weights`` files checked, the campaign folder locked.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from syndr_lightning.cli import main as syndr_main
from syndr_lightning.paper.plan import campaign
from syndr_lightning.reporting import find_jobs, save_job_metrics

CELL = ["--tables", "1", "--seeds", "1", "--only", "table1/syndr/livec"]


def _job(
    root: Path,
    name: str,
    overrides: list[str],
    metrics: dict[str, float] | None,
    status: str | None = None,
) -> Path:
    """A Hydra job folder: overrides.yaml, config.yaml, metrics.json, run_status.json."""
    job = root / name
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    (job / ".hydra" / "config.yaml").write_text(yaml.safe_dump({"seed": 0, "data": {}}))
    if metrics is not None:
        save_job_metrics(metrics, job, extra={"selection": "last"})
    if status is not None:
        record = {"status": status, "exit_code": 1, "reason": "loss 9.8e6", "epoch": 1, "step": 9}
        (job / "run_status.json").write_text(json.dumps(record))
    return job


def _m(srcc: float) -> dict[str, float]:
    return {
        "val/srcc": srcc,
        "test/livec/srcc": srcc,
        "test/livec/plcc": srcc,
        "test_last/livec/srcc": srcc,
        "test_last/livec/plcc": srcc,
    }


def test_collect_counts_a_diverged_job_and_never_bolds_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "sweep"
    _job(root, "0", ["model.lr=0.001", "seed=0"], _m(0.5))
    _job(root, "1", ["model.lr=0.001", "seed=1"], _m(0.6))
    _job(root, "2", ["model.lr=1000", "seed=0"], _m(0.9), status="diverged")  # logged, diverged
    _job(root, "3", ["model.lr=1000", "seed=1"], None)  # crashed: no metrics, no status
    assert syndr_main(["sweep", "collect", str(root)]) == 0
    out, err = capsys.readouterr()
    assert f"{root / '2'}: diverged (loss 9.8e6); not counted" in err
    assert f"{root / '3'}: failed (no metrics.json); not counted" in err
    table = pd.read_csv(root / "sweep_table.csv")
    bad = table[table["model.lr"] == 1000].iloc[0]
    assert bad["n"] == 0 and bad["diverged"] == 1 and bad["failed"] == 1
    assert pd.isna(bad["val/srcc/mean"])  # the diverged job's 0.9 is in no cell
    assert "0.9000" not in out and "**" not in out  # nothing ranked above the finished row
    assert "1 diverged, 1 failed or unfinished" in out


def test_collect_never_bolds_a_row_with_a_failed_job(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "sweep"
    _job(root, "0", ["model.lr=0.1", "seed=0"], _m(0.5))
    _job(root, "1", ["model.lr=0.2", "seed=0"], _m(0.7))
    _job(root, "2", ["model.lr=0.2", "seed=1"], None, status="failed")
    assert syndr_main(["sweep", "collect", str(root)]) == 0
    assert "**" not in capsys.readouterr().out  # 0.7 is one seed of two: not the best


def test_summaries_over_seeds_refuse_jobs_that_differ_in_another_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "sweep"
    for i, (tf, seed) in enumerate([(0.05, 0), (0.2, 0), (0.05, 1), (0.2, 1)]):
        _job(root, str(i), [f"reshape.T_f={tf}", f"seed={seed}"], _m(0.5 + i / 10))
    assert syndr_main(["sweep", "intra", str(root)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "reshape.T_f" in err and "0.05, 0.2" in err
    assert not (root / "intra_results.md").exists()
    # collect groups by T_f; --keys that leave T_f out would pool it as seeds: refused
    assert syndr_main(["sweep", "collect", str(root), "--keys", "seed"]) == 2
    assert "reshape.T_f" in capsys.readouterr().err


def test_intra_counts_diverged_jobs_and_leaves_them_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "sweep"
    _job(root, "0", ["seed=0"], _m(0.5))
    _job(root, "1", ["seed=1"], _m(0.7))
    _job(root, "2", ["seed=2"], _m(0.99), status="diverged")
    assert syndr_main(["sweep", "intra", str(root)]) == 0
    out, err = capsys.readouterr()
    assert "0.9900" not in out and "| 2 |" in out and "1 diverged" in out
    assert "diverged (loss 9.8e6); not counted" in err


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("metrics.json", b"\xff\xfe{}"),
        ("metrics.json", b"[1, 2]"),
        ("metrics.json", b"null"),
        (".hydra/overrides.yaml", b"\xff\xfeseed: 1"),
        (".hydra/overrides.yaml", b"seed: 1"),
        ("run_status.json", b'{"status": "done?"}'),
    ],
)
def test_malformed_job_files_are_one_line_in_sweep_commands(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, content: bytes
) -> None:
    root = tmp_path / "sweep"
    _job(root, "0", ["seed=0"], _m(0.5))
    job = _job(root, "1", ["seed=1"], _m(0.6))
    (job / name).write_bytes(content)
    for tool in ("collect", "intra"):
        assert syndr_main(["sweep", tool, str(root)]) == 1
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and str(job / name) in err, err


def test_metrics_json_is_strict_json_with_a_digest_and_an_edit_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    identity = {"task": "t", "data": {"train": "kadid10k"}, "seed": 0}
    file = save_job_metrics({"val/srcc": float("nan"), "val/plcc": 0.5}, tmp_path, {}, identity)

    def bare(name: str) -> Any:
        raise AssertionError(f"bare {name} in metrics.json")

    payload = json.loads(file.read_text(), parse_constant=bare)
    assert payload["metrics"]["val/srcc"] is None and payload["info"]["nonfinite"] == ["val/srcc"]
    assert payload["digest"].startswith("sha256:") and payload["identity"] == identity
    root = tmp_path / "sweep"
    job = _job(root, "0", ["seed=0"], None)
    save_job_metrics(_m(0.5), job, {}, identity)
    assert find_jobs(root)[0].metrics == _m(0.5)
    edited = json.loads((job / "metrics.json").read_text())
    edited["metrics"]["test/livec/srcc"] = 0.99
    (job / "metrics.json").write_text(json.dumps(edited))
    assert syndr_main(["sweep", "collect", str(root)]) == 1
    err = capsys.readouterr().err
    assert "does not match its digest" in err and str(job / "metrics.json") in err


# ----------------------------------------------------------------------------- reproduce
def _campaign_run(out: Path) -> Any:
    runs, _ = campaign(["1"], 1, ["table1/syndr/livec"])
    (run,) = runs
    folder = out / run.folder
    folder.mkdir(parents=True)
    (folder / "reproduce_run.json").write_text(json.dumps({"id": run.id}))
    return run, folder


def _identity(seed: int = 0) -> dict[str, Any]:
    return {"task": "syndr_lightning.paper.runner.paper_task", "data": {}, "seed": seed}


def _plan_and_report(out: Path, capsys: pytest.CaptureFixture[str]) -> tuple[str, str, str]:
    assert syndr_main(["reproduce", *CELL, "--out", str(out), "--plan"]) == 0
    plan = capsys.readouterr().out
    assert syndr_main(["reproduce", *CELL, "--out", str(out), "--report"]) == 0
    capsys.readouterr()
    report = pd.read_csv(out / "paper_report.csv", dtype={"table": str})
    cell = report[(report["row"] == "syndr") & (report["dataset"] == "livec")].iloc[0]
    return plan, str(cell["status"]), str(cell["n"])


@pytest.mark.parametrize(
    ("case", "why"),
    [
        ("edited", "does not match its digest"),
        ("out of range", "does not match its digest"),
        ("null", "holds a NoneType, not a mapping"),
        ("string", "holds a str, not a mapping"),
        ("non-UTF-8", "is not UTF-8 text"),
        ("foreign", "holds no test/livec/* metrics"),
        ("no digest", "carries no metrics with identity and digest"),
        ("other seed", "is seed 3's, not seed 0's"),
        ("no run record", "reproduce_run.json is missing"),
    ],
)
def test_the_report_refuses_a_file_it_cannot_vouch_for_and_the_plan_agrees(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str, why: str
) -> None:
    out = tmp_path / "campaign"
    run, folder = _campaign_run(out)
    file = folder / "metrics.json"
    save_job_metrics(
        {"test/livec/srcc": 0.4}, folder, {}, _identity(3 if case == "other seed" else 0)
    )
    payload = json.loads(file.read_text())
    if case in ("edited", "out of range"):
        payload["metrics"]["test/livec/srcc"] = 0.99 if case == "edited" else 7.5
        file.write_text(json.dumps(payload))
    elif case in ("null", "string"):
        file.write_text("null" if case == "null" else '"0.99"')
    elif case == "non-UTF-8":
        file.write_bytes(b"\xff" + file.read_bytes())
    elif case == "foreign":
        save_job_metrics({"test/koniq10k/srcc": 0.4}, folder, {}, _identity())
    elif case == "no digest":
        file.write_text(json.dumps({"metrics": payload["metrics"]}))
    elif case == "no run record":
        (folder / "reproduce_run.json").unlink()
    from syndr_lightning.paper.plan import run_metrics

    state, reason = run_metrics(out, run)
    assert state == "refused" and why in str(reason) and "rerun" in str(reason)
    assert str(folder) in str(reason)
    plan, status, n = _plan_and_report(out, capsys)
    assert "refused" in plan and "0 done" in plan  # --plan says what the report does
    assert status.startswith("refused") and why in status and n == "0"
    # training refuses to start on it (one line, the file named, how to rerun)
    assert syndr_main(["reproduce", *CELL, "--out", str(out), "paths.data_dir=/none"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("syndr reproduce: error: ") and why in err and len(err.splitlines()) == 1


def test_a_diverged_campaign_run_is_counted_as_failed_not_pending(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "campaign"
    run, folder = _campaign_run(out)
    record = {"status": "diverged", "exit_code": 1, "reason": "loss 9.8e6", "epoch": 0, "step": 3}
    (folder / "run_status.json").write_text(json.dumps(record))
    assert run.status(out) == "failed"
    plan, status, n = _plan_and_report(out, capsys)
    assert "1 failed" in plan
    assert status.startswith("failed") and "diverged: loss 9.8e6" in status and n == "0"


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        (["seed=7"], "'seed=7' is refused under `syndr reproduce`"),
        (["+seed=7"], "is refused under `syndr reproduce`"),
        (["ckpt_path=/x/last.ckpt"], "one run's checkpoint to every run"),
        (["hydra.sweep.dir=/elsewhere"], "pass --out instead"),
        (["--epoch-minutes", "-5"], "--epoch-minutes -5.0: expected"),
        (["--epoch-minutes", "nan"], "--epoch-minutes nan: expected"),
        (["--seeds", "1000000"], "--seeds 1000000: expected a number of seeds in 1..100"),
        (["--out", "/tmp/it's"], "a quote, backslash"),
    ],
)
def test_reproduce_refuses_per_run_overrides_and_out_of_range_numbers(
    capsys: pytest.CaptureFixture[str], argument: list[str], message: str
) -> None:
    for mode in ("--plan", None):
        args = ["reproduce", "--tables", "1", *argument] + ([mode] if mode else [])
        assert syndr_main(args) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err


def test_reproduce_checks_weights_files_before_launching(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch

    for name, body in [("notes.pth", b"not a torch file"), ("list.pth", None)]:
        file = tmp_path / name
        if body is None:
            torch.save([1, 2, 3], file)
        else:
            file.write_bytes(body)
        args = ["reproduce", *CELL, "--out", str(tmp_path / "c"), "--weights", f"resnet50={file}"]
        assert syndr_main(args) == 2
        err = capsys.readouterr().err.strip()
        assert f"--weights 'resnet50={file}'" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "c").exists()  # nothing launched


def test_a_second_reproduce_on_one_folder_is_refused_while_the_first_trains(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from syndr_lightning.paper.cli import _campaign_lock

    out = tmp_path / "campaign"
    lock = _campaign_lock(out)
    with lock.held(wait=False) as got:
        assert got
        assert syndr_main(["reproduce", *CELL, "--out", str(out), "paths.data_dir=/x"]) == 1
        err = capsys.readouterr().err.strip()
        assert "another `syndr reproduce`" in err and len(err.splitlines()) == 1
    assert not list(out.glob("table1/*"))  # nothing trained or written by the second


def test_a_null_metric_the_run_vouches_for_is_counted_not_reported_as_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A finished run whose SRCC is non-finite (constant predictions) wrote null: the plan
    says done, the report says why there is no number (not "no runs yet")."""
    from syndr_lightning.paper.plan import run_metrics
    from syndr_lightning.paper.report import RunResult, _values

    out = tmp_path / "campaign"
    run, folder = _campaign_run(out)
    save_job_metrics({"test/livec/srcc": float("nan")}, folder, {}, _identity())
    state, metrics = run_metrics(out, run)
    assert state == "done" and run.status(out) == "done"
    assert isinstance(metrics, dict)
    cell = _values({run.id: RunResult(run, metrics)}, [(0, [(run, "livec")])], "srcc")
    assert cell.values == [] and "test/livec/srcc is not a finite number" in cell.failed[0]
