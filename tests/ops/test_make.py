"""The Makefile: `make run` installs only what running needs, `make test` the rest and Chromium; a
missing browser is a skip counted in the summary, and a failure under CI=true."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.env import ROOT

pytestmark = [
    pytest.mark.process,  # runs make and pytest
    pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed"),
]


def make(venv: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`make ARGS` in the repository, against the venv folder given (never the project's own .venv)."""
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(ROOT), f"VENV={venv}", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_make_run_installs_only_the_runtime_dependencies_with_progress(tmp_path: Path) -> None:
    planned = make(tmp_path / "venv", "-n", "run")
    assert planned.returncode == 0, planned.stderr
    lines = planned.stdout.splitlines()
    assert f"{tmp_path}/venv/bin/pip install -e ." in lines
    assert "[dev]" not in planned.stdout and "--quiet" not in planned.stdout and " -q " not in planned.stdout
    assert lines[-1] == f"{tmp_path}/venv/bin/survey-service start"


def test_make_test_adds_the_dev_dependencies_and_provisions_chromium(tmp_path: Path) -> None:
    planned = make(tmp_path / "venv", "-n", "test", CHROMIUM_PATH="/usr/bin/chromium")
    assert planned.returncode == 0, planned.stderr
    out = planned.stdout
    assert f"{tmp_path}/venv/bin/pip install -e '.[dev]'" in out and "--quiet" not in out
    assert "apt-get install -y chromium" in out and "apt-get update" in out
    assert out.index("install -y chromium") < out.index("-m pytest")  # the browser before the tests


def test_make_is_idempotent_once_installed(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").touch()
    (venv / ".installed-run").touch()
    (venv / ".installed-dev").touch()
    for stamp in (venv / ".installed-run", venv / ".installed-dev"):  # both newer than pyproject.toml
        later = (ROOT / "pyproject.toml").stat().st_mtime + 60
        os.utime(stamp, (later, later + (stamp.name == ".installed-dev")))
    assert make(venv, "-q", "all").returncode == 0  # nothing to do
    assert make(venv, "-n", "run").stdout.splitlines() == [f"{venv}/bin/survey-service start"]
    assert "pip install" not in make(venv, "-n", "test-quick").stdout


def test_the_chromium_step_says_how_when_it_cannot_install(tmp_path: Path) -> None:
    # A CHROMIUM_PATH of its own is never "fixed" by installing Debian's package: make says how instead.
    result = make(tmp_path / "venv", "chromium", CHROMIUM_PATH=str(tmp_path / "no-chromium"))
    assert result.returncode == 0, result.stderr
    assert "browser tests will skip" in result.stdout and "apt-get install chromium" in result.stdout


@pytest.mark.parametrize("ci", ["", "true"])
def test_a_missing_browser_is_a_counted_skip_or_under_ci_a_failure(tmp_path: Path, ci: str) -> None:
    probe = tmp_path / "test_probe.py"
    probe.write_text("def test_needs_the_browser(browser):\n    pass\n")
    env = {**os.environ, "CHROMIUM_PATH": str(tmp_path / "no-chromium"), "CI": ci, "PYTHONPATH": str(ROOT)}
    # The project's pytest settings (addopts -ra), its conftest's `browser` fixture, this one test.
    args = ["-c", str(ROOT / "pyproject.toml"), "--rootdir", str(ROOT), "-p", "tests.conftest"]
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args, str(probe)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = result.stdout
    if ci:
        assert result.returncode == 1 and "1 error" in out and "CI=true requires it" in out, (
            out
        )  # fixture fails
    else:
        assert result.returncode == 0 and "1 skipped" in out, out
        assert "SKIPPED [1]" in out and "apt-get install chromium" in out, out  # -ra: the reason, visible
