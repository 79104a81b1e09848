"""The commands README.md and docs/*.md show: each names a real subcommand, written the way that runs.

After `make run` the console script sits in the venv, which is not on PATH: a bare `survey-service …`
answers `command not found`. The documents therefore write `.venv/bin/survey-service …`; a bare one is
right only inside the Docker image (`docker compose run --rm web survey-service …`), where pip
installed it on PATH.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from survey_service.cli import cli_command
from tests.support.env import ROOT

DOCS = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]
VENV_FORM = ".venv/bin/survey-service"
# Where the bare name is on PATH: inside the image (Dockerfile: pip install into the system Python).
ON_PATH_CONTEXTS = ("docker compose run --rm web ", "docker run IMAGE ")
# `prefix` is what is glued to the name (a path); a subcommand is a lowercase word, `db` takes one more.
MENTION = re.compile(r"(?P<prefix>[\w./-]*)survey-service (?P<command>db [a-z][a-z-]*|[a-z][a-z-]*)")


def mentions() -> Iterator[tuple[str, str, str, str]]:
    """(document, prefix, subcommand, text before it) for every `survey-service SUBCOMMAND` shown."""
    for path in DOCS:
        # A command may wrap onto the next line (in prose, inside backticks): read lines joined.
        text = re.sub(r"[ \t]*\n[ \t]*", " ", path.read_text())
        for found in MENTION.finditer(text):
            before = text[max(found.start() - 40, 0) : found.start()]
            yield path.relative_to(ROOT).as_posix(), found["prefix"], found["command"], before


def test_the_docs_mention_commands_at_all() -> None:
    documented = {command for _, _, command, _ in mentions()}
    # A broken pattern would find nothing and pass every check below.
    assert {"start", "worker", "create-user", "db upgrade", "import-delighted"} <= documented


def test_every_documented_command_is_written_the_way_that_runs_after_make_run() -> None:
    wrong = [
        f"{doc}: {prefix}survey-service {command}"
        for doc, prefix, command, before in mentions()
        if prefix != VENV_FORM.removesuffix("survey-service")
        and not (prefix == "" and before.endswith(ON_PATH_CONTEXTS))
    ]
    assert wrong == [], f"write these as `{VENV_FORM} …` (the venv is not on PATH): {wrong}"


def test_the_venv_form_is_where_make_run_installs_the_console_script() -> None:
    makefile = (ROOT / "Makefile").read_text()
    venv = re.search(r"^VENV\s*:?=\s*(\S+)", makefile, re.MULTILINE)
    assert venv is not None and f"{venv[1]}/bin/survey-service" == VENV_FORM
    assert re.search(r"^run:.*\n\t\$\(BIN\)/survey-service start", makefile, re.MULTILINE), (
        "make run's command"
    )
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["survey-service"] == "survey_service.cli:main"


def test_the_start_banner_shows_the_console_script_as_a_path(monkeypatch: pytest.MonkeyPatch) -> None:
    venv_bin = Path(sys.executable).parent
    monkeypatch.chdir(venv_bin.parent.parent)  # where `make run` runs: the venv's parent
    assert cli_command() == f"{venv_bin.parent.name}/bin/survey-service"


def listed_commands(*args: str, instance: Path) -> set[str]:
    """The subcommands `survey-service [ARGS] --help` lists, run as the installed console script."""
    env = {**os.environ, "INSTANCE_PATH": str(instance)}
    exe = Path(sys.executable).parent / "survey-service"
    result = subprocess.run([exe, *args, "--help"], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    listing = result.stdout.partition("\nCommands:\n")[2]
    assert listing, result.stdout
    return {line.split()[0] for line in listing.splitlines() if line.startswith("  ") and line.split()}


@pytest.mark.process  # runs the CLI
def test_every_documented_subcommand_exists(tmp_path: Path) -> None:
    top = listed_commands(instance=tmp_path)
    db = listed_commands("db", instance=tmp_path)
    missing = sorted(
        f"{doc}: survey-service {command}"
        for doc, _, command, _ in mentions()
        if (command.removeprefix("db ") not in db if command.startswith("db ") else command not in top)
    )
    assert missing == [], f"not commands of survey-service (--help): {missing}"
