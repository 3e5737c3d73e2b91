"""Atomic writes never leave half-written files and give files the usual permissions."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from syndr_lightning.utils.io import atomic_dir, atomic_open, git_sha


def test_atomic_open_replaces_only_on_success(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_open(target) as fh:
        fh.write("half")
        raise RuntimeError("crash mid-write")
    assert target.read_text() == "old"
    assert list(tmp_path.iterdir()) == [target]  # no temp file left behind
    with atomic_open(target) as fh:
        fh.write("new")
    assert target.read_text() == "new"


def test_atomic_files_and_dirs_get_umask_permissions(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        with atomic_open(tmp_path / "f.csv") as fh:
            fh.write("a,b\n")
        with atomic_dir(tmp_path / "d") as d:
            (d / "x").write_text("1")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "f.csv").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "d").stat().st_mode) == 0o755
    assert (tmp_path / "d" / "x").read_text() == "1"


def test_atomic_dir_leaves_nothing_on_failure(tmp_path: Path) -> None:
    with pytest.raises(ValueError), atomic_dir(tmp_path / "cache") as d:
        (d / "part").write_text("1")
        raise ValueError("killed midway")
    assert list(tmp_path.iterdir()) == []


def test_git_sha_names_a_commit_or_unknown(tmp_path: Path) -> None:
    assert git_sha(tmp_path) == "unknown"  # not a repository
    sha = git_sha()
    assert sha == "unknown" or len(sha.removesuffix("-dirty")) == 40


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_git_sha_is_the_head_commit_and_marks_changes(tmp_path: Path) -> None:
    """In a temporary repository: HEAD as `git rev-parse` prints it, then `-dirty`."""

    def git(*args: str) -> str:
        env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
        ident = ["-c", "user.name=t", "-c", "user.email=t@example.org"]
        proc = subprocess.run(
            ["git", *ident, *args], cwd=tmp_path, env=env, capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.strip()

    git("init", "-q")
    (tmp_path / "a.txt").write_text("one\n")
    git("add", "a.txt")
    git("commit", "-q", "-m", "first")
    first = git("rev-parse", "HEAD")
    assert git_sha(tmp_path) == first
    (tmp_path / "b.txt").write_text("untracked files do not count\n")
    assert git_sha(tmp_path) == first
    (tmp_path / "a.txt").write_text("two\n")
    assert git_sha(tmp_path) == f"{first}-dirty"
    git("commit", "-q", "-am", "second")
    second = git("rev-parse", "HEAD")
    assert second != first and git_sha(tmp_path) == second
