"""The ``syndr`` commands behave alike: eval, --json, --out -, progress on stderr only,
one progress flag (old spellings as hidden aliases), exit codes 1 (data) / 2 (usage),
scoring a folder from Python, ``--version``, and subcommand modules free of torch."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from inference_helpers import CROP, make_checkpoint, write_image

from syndr_lightning import load_model
from syndr_lightning.cli import SUBCOMMANDS, build_parser
from syndr_lightning.cli import main as syndr_main
from syndr_lightning.metrics import iqa_metrics


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.ckpt")


def test_eval_prints_and_saves_the_four_metrics_with_the_protocol(
    ckpt: Path, authentic_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "eval.json"
    args = ["eval", "--ckpt", str(ckpt), "--data", "csv", str(authentic_csv)]
    assert syndr_main([*args, "--crops", "2", "--crop-size", str(CROP), "--out", str(out)]) == 0
    printed = capsys.readouterr()
    assert "SRCC" in printed.out and "PLCC-log" in printed.out and "selection:" in printed.out
    saved = json.loads(out.read_text())
    assert set(saved["metrics"]) == {"srcc", "plcc", "krcc", "plcc_logistic"}
    proto = saved["protocol"]
    assert proto["dataset"] == "csv" and proto["images"] == proto["scored"] == 12
    assert proto["eval"].startswith("2 random crops of 32 px")
    assert proto["checkpoint"] == str(ckpt.resolve())
    # The numbers are those of the scores the Python API gives for the same crops.
    labels = pd.read_csv(authentic_csv)
    model = load_model(ckpt, crops=2, crop_size=CROP)
    root = authentic_csv.parent
    preds = [model.score(str(root / p)) for p in labels["path"]]
    expected = iqa_metrics(preds, labels["score"].to_numpy() * 10 / labels["score"].max())
    assert saved["metrics"]["srcc"] == pytest.approx(expected["srcc"], abs=1e-6)

    # --out -: the JSON alone on stdout (progress went to stderr).
    assert syndr_main([*args, "--crops", "1", "--crop-size", str(CROP), "--out", "-"]) == 0
    streams = capsys.readouterr()
    assert json.loads(streams.out)["protocol"]["images"] == 12
    # Bad data is exit status 1, a usage mistake 2.
    assert syndr_main(["eval", "--ckpt", str(ckpt), "--data", "csv", str(tmp_path / "no.csv")]) == 1
    assert syndr_main(["eval", "--ckpt", str(ckpt), "--data", "nosuch", str(tmp_path)]) == 2


def test_predict_out_dash_json_and_progress_on_stderr(
    ckpt: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "imgs"
    for i in range(3):
        write_image(folder / f"{i}.png", i)
    (folder / "broken.png").write_bytes(b"not an image")
    base = ["predict", "--ckpt", str(ckpt), str(folder), "--crops", "1", "--crop-size", str(CROP)]
    assert syndr_main([*base, "--out", "-"]) == 0
    streams = capsys.readouterr()
    lines = streams.out.strip().splitlines()
    assert lines[0] == "path,score,error" and len(lines) == 5
    assert "scoring" in streams.err and "4/4" in streams.err  # the bar, on stderr
    assert "scored 3 of 4" in streams.err
    assert syndr_main([*base, "--out", "-", "--json", "--no-progress"]) == 0
    streams = capsys.readouterr()
    rows = json.loads(streams.out)["scores"]
    assert len(rows) == 4 and sum(r["score"] is None for r in rows) == 1
    assert "scoring" not in streams.err
    # The old spelling still hides the bar (hidden alias, not in --help).
    assert syndr_main([*base, "--out", str(tmp_path / "s.csv"), "--quiet"]) == 0
    assert "scoring" not in capsys.readouterr().err
    with pytest.raises(SystemExit):
        syndr_main(["predict", "--help"])
    assert "--quiet" not in capsys.readouterr().out

    # Python: a folder is scored file by file, unreadable files as NaN.
    scores = load_model(ckpt, crops=1, crop_size=CROP).score(folder)
    assert isinstance(scores, dict) and len(scores) == 4
    assert math.isnan(scores[str(folder / "broken.png")])
    assert all(0 <= v <= 10 for k, v in scores.items() if not k.endswith("broken.png"))


def test_every_subcommand_shares_the_progress_flag_and_help_is_light() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name in ("predict", "distort", "eval"):
        flags = {o: a.dest for a in sub.choices[name]._actions for o in a.option_strings}
        assert flags["--no-progress"] == flags["--quiet"] == "no_progress", name
    assert "train" in sub.choices
    # Registering every subcommand imports neither torch nor matplotlib nor scipy.
    code = (
        "import sys; from syndr_lightning.cli import build_parser; build_parser(); "
        "print(sorted(m for m in ('torch', 'matplotlib', 'scipy', 'pandas') if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]", proc.stdout
    assert set(SUBCOMMANDS) >= {"data", "distort", "reshape", "predict", "export", "umap", "eval"}


def test_version_flags(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        syndr_main(["--version"])
    assert exit_info.value.code == 0 and capsys.readouterr().out.startswith("syndr-lightning ")
    proc = subprocess.run(
        [sys.executable, "-m", "syndr_lightning", "--version"], capture_output=True, text=True
    )
    assert proc.returncode == 0 and proc.stdout.startswith("syndr-lightning ")


def test_data_commands_progress_and_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from syndr_lightning.fakedata.fixtures import write_fixture

    root = write_fixture("livec", tmp_path / "livec", n_images=3)
    assert syndr_main(["data", "check", "livec", str(root), "--full", "--json"]) == 0
    streams = capsys.readouterr()
    assert json.loads(streams.out)["images"] == 3  # stdout: the JSON alone
    assert "decoding 3 images" in streams.err and "3/3" in streams.err
    assert syndr_main(["data", "check", "livec", str(root), "--full", "--no-progress"]) == 0
    assert capsys.readouterr().err == ""
    assert syndr_main(["data", "list", "--json"]) == 0
    names = {row["name"] for row in json.loads(capsys.readouterr().out)}
    assert {"kadid10k", "livec", "koniq10k"} <= names
    out = tmp_path / "split.json"
    assert syndr_main(["data", "split", "livec", str(root), str(out), "--json"]) == 0
    assert sum(json.loads(capsys.readouterr().out)["counts"].values()) == 3
    # Missing data: 1; unknown dataset (usage): 2.
    assert syndr_main(["data", "check", "livec", str(tmp_path / "none")]) == 1
    assert syndr_main(["data", "check", "nosuch", str(root)]) == 2


def test_syndr_train_forwards_to_hydra(tmp_path: Path) -> None:
    env_cmd = [sys.executable, "-m", "syndr_lightning.cli", "train"]
    proc = subprocess.run(
        [*env_cmd, "--cfg", "job", "--package", "reshape", "reshape.T_f=0.05"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "T_f: 0.05" in proc.stdout and "ddcup: true" in proc.stdout
    proc = subprocess.run([*env_cmd, "--help"], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.startswith("syndr-train is powered by Hydra")
