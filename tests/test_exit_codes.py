"""One table of exit codes: docs/failures.md, README, ``utils.errors`` and the commands agree."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from inference_helpers import write_image

from syndr_lightning.cli import main as syndr
from syndr_lightning.config import REPO_ROOT
from syndr_lightning.utils import errors

FAILURES = REPO_ROOT / "docs" / "failures.md"


def _tables() -> tuple[dict[int, str], list[dict[str, str]]]:
    """(code -> meaning) and the rows of the cases table, read from docs/failures.md."""
    text = FAILURES.read_text()
    section = text.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    codes: dict[int, str] = {}
    cases: list[dict[str, str]] = []
    header: list[str] = []
    for line in section.splitlines():
        if not line.startswith("|") or set(line) <= {"|", "-", " "}:
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells[0] in ("code", "case"):
            header = cells
            continue
        if header[0] == "code":
            codes[int(cells[0])] = cells[1]
        else:
            cases.append(dict(zip(header, cells, strict=True)))
    return codes, cases


CODES, CASES = _tables()


def test_the_doc_table_is_the_code_table() -> None:
    assert set(CODES) == set(errors.EXIT_CODES)
    for code, meaning in errors.EXIT_CODES.items():
        assert CODES[code].lower().startswith(meaning), (code, CODES[code])


@pytest.mark.parametrize("case", CASES, ids=[c["case"] for c in CASES])
def test_each_case_maps_to_its_code(case: dict[str, str]) -> None:
    from syndr_lightning.utils.labels import LabelError

    cls = {"LabelError": LabelError}.get(case["error"]) or getattr(errors, case["error"])
    assert errors.exit_code(cls("x")) == int(case["code"])


def test_readme_summary_agrees_with_the_table() -> None:
    readme = " ".join(REPO_ROOT.joinpath("README.md").read_text().split())
    summary = readme.split("exit status 0 on success", 1)[1].split("`syndr --version`")[0]
    stated = {
        name.strip(): int(code)
        for code, names in re.findall(r"(\d+) (?:for|when) [^(]*\(([^)]*)\)", summary)
        for name in names.split(",")
    }
    table = {c["case"]: int(c["code"]) for c in CASES}
    assert stated == table
    assert {0, *stated.values()} == set(errors.EXIT_CODES)


def test_the_cases_with_a_command_exit_with_their_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"not a checkpoint")
    (tmp_path / "folder").mkdir()
    values = {
        "missing": str(tmp_path / "missing"),
        "junk": str(junk),
        "image": str(write_image(tmp_path / "a.png", 0)),
        "out": str(tmp_path / "out.csv"),
        "folder": str(tmp_path / "folder"),
    }
    ran = 0
    for case in CASES:
        if not case["command"]:
            continue
        argv = shlex.split(case["command"].strip("`").format(**values))
        assert argv[0] == "syndr"
        assert syndr([*argv[1:], "--no-progress"] if argv[1] == "predict" else argv[1:]) == int(
            case["code"]
        ), case
        err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        assert len(err) == 1, (case, err)
        ran += 1
    assert ran >= 3
