"""The layer contracts of [tool.importlinter] in pyproject.toml: they hold on this tree, and they catch
a wrong-way import added to a copy of it (so the contracts are not vacuous)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.process  # runs lint-imports as a subprocess

LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """lint-imports with root's pyproject.toml; it puts root (its working directory) first on sys.path."""
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(root / "pyproject.toml")],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_tree_keeps_every_layer_contract() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0 broken." in result.stdout
    assert "BROKEN" not in result.stdout


# A wrong-way import appended to one module of a copy, and the contract that must then break.
WRONG_WAY = [
    ("services/people.py", "import survey_service.api", "services and reporting never import a view package"),
    ("services/alerts.py", "import survey_service.delighted.serialize", "never import a feature package"),
    ("reporting/exports.py", "import survey_service.dashboard", "services and reporting never import a view"),
    ("mail/compose.py", "import survey_service.services.email_requests", "mail never imports services"),
    ("core/clock.py", "import survey_service.models", "core never imports"),
    ("delighted/views.py", "import survey_service.api", "views don't import other view packages"),
    (
        "widget/eligibility.py",
        "import survey_service.widget.identify",
        "widget/: views > identify, answers > eligibility > settings",
    ),
    ("sources/stripe.py", "import survey_service.sources.segment", "sources/: views > service > kinds"),
    ("services/events.py", "import survey_service.sources.service", "never import a feature package"),
    ("delighted/people_import.py", "import survey_service.delighted.importer", "no import cycles"),
    ("models.py", "import survey_service.services.people", "entry points > views > feature services"),
    ("reporting/reports.py", "import survey_service.themes.service", "never import a feature package"),
    ("themes/text.py", "import survey_service.themes.matching", "themes/: service > discovery, analysis"),
]


@pytest.mark.parametrize(("module", "statement", "contract"), WRONG_WAY, ids=[w[0] for w in WRONG_WAY])
def test_a_wrong_way_import_breaks_a_contract(
    tmp_path: Path, module: str, statement: str, contract: str
) -> None:
    shutil.copytree(
        ROOT / "survey_service", tmp_path / "survey_service", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    assert lint_imports(tmp_path).returncode == 0  # the copy alone is as clean as the tree

    with (tmp_path / "survey_service" / module).open("a") as fh:
        fh.write(f"\n{statement}  # noqa: E402\n")
    result = lint_imports(tmp_path)

    assert result.returncode == 1, result.stdout + result.stderr
    broken = result.stdout.split("Broken contracts", 1)[-1]
    assert contract in " ".join(broken.split()), result.stdout  # lint-imports wraps long names
    importer = "survey_service." + module.removesuffix(".py").replace("/", ".")
    assert importer in result.stdout
