"""Build step of the wheel (pyproject.toml's [tool.setuptools.cmdclass]): copies the widget's files
(this folder, their one source) and the migrations into the built package, so an installed wheel
serves /widget.js and upgrades its database without a checkout. A checkout or an editable install
reads them in place (survey_service/widget/views.py, survey_service/extensions.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent.parent
# (source in the checkout, destination inside the built package)
COPIES = [
    (ROOT / "widget", Path("survey_service") / "widget" / "static"),
    (ROOT / "migrations", Path("survey_service") / "migrations"),
]
SKIP = shutil.ignore_patterns("*.py[co]", "__pycache__", "build.py", ".gitkeep")


class BuildPy(build_py):
    """build_py, then the widget and migrations copies next to the built modules."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return  # an editable install runs from the checkout, where both folders already are
        for source, destination in COPIES:
            target = Path(self.build_lib) / destination
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(source, target, ignore=SKIP)
