"""axe-core (shipped inside the axe-playwright-python package: nothing downloaded) on a Playwright page.

`check_page` runs it at the widths the issue names (1280 and 390 px) without reloading, writes one line
per run (and one per violation) to the terminal, past pytest's capture, and returns the serious and
critical violations for the test to assert on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from axe_playwright_python.base import AXE_SCRIPT
from axe_playwright_python.sync_playwright import Axe

WIDTHS = (1280, 390)
BLOCKING = ("serious", "critical")
# Scores are one or two digits: axe leaves text that short unchecked ("too short to determine if it is
# actual text") unless told to measure it too; a score badge must be as readable as a sentence.
# (axe.configure replaces a check's options: the defaults are repeated with that one changed.)
CONTRAST_OPTIONS = (
    "{ignoreUnicode: true, ignoreLength: true, ignorePseudo: false, boldValue: 700, boldTextPt: 14,"
    " largeTextPt: 18, contrastRatio: {normal: {expected: 4.5}, large: {expected: 3}},"
    " pseudoSizeThreshold: 0.25, shadowOutlineEmMax: 0.2, textStrokeEmMin: 0.03}"
)
AXE = Axe(f"{AXE_SCRIPT};axe.configure({{checks: [{{id: 'color-contrast', options: {CONTRAST_OPTIONS}}}]}});")
# WCAG 2.0/2.1 A and AA plus axe's best practices (headings, landmarks, one h1).
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]
OPTIONS = {"resultTypes": ["violations"], "runOnly": {"type": "tag", "values": TAGS}}


Report = Callable[[str], None]


def reporter(config: pytest.Config) -> Report:
    """Where the runs are reported: the terminal, whatever pytest captures (print when there is none)."""
    terminal = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if terminal is None or capture is None:
        return print

    def write(line: str) -> None:
        with capture.global_and_fixture_disabled():  # as pytest's live logging does
            terminal.write_line(line)

    return write


def run_axe(page: Any, label: str, report: Report) -> list[str]:
    """Run axe on the page as it is now; print its summary; return its serious and critical violations."""
    results = AXE.run(page, options=OPTIONS).response
    violations = results["violations"]
    by_impact = {
        impact: sum(1 for v in violations if v["impact"] == impact)
        for impact in ("critical", "serious", "moderate", "minor")
    }
    summary = ", ".join(f"{k} {n}" for k, n in by_impact.items())
    report(
        f"axe {results['testEngine']['version']} {label}: {len(results['passes'])} rules passed; "
        f"violations: {summary}"
    )
    found = []
    for v in violations:
        targets = "; ".join(" ".join(map(str, n["target"])) for n in v["nodes"][:5])
        report(f"  {v['impact']}: {v['id']} ({len(v['nodes'])} nodes: {targets}) {v['help']}")
        if v["impact"] in BLOCKING:
            found.append(f"{label}: {v['id']} ({v['impact']}) at {targets}: {v['help']}")
    return found


# Every finite animation and transition on the page, shadow trees included (the widget fades in over
# 0.25 s): axe reads colours as drawn, and mid-fade text is too faint.
SETTLED = """() => {
  const all = [...document.getAnimations()];
  for (const host of document.querySelectorAll("*")) {
    const root = host.shadowRoot;
    if (root) for (const e of root.children) all.push(...e.getAnimations({subtree: true}));
  }
  const finite = all.filter(a => a.effect?.getComputedTiming().endTime !== Infinity);
  return Promise.all(finite.map(a => a.finished));
}"""


def check_page(page: Any, label: str, report: Report, height: int = 900) -> list[str]:
    """axe at every width of WIDTHS (the page resized in place, not reloaded); serious and critical found."""
    found: list[str] = []
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": height if width > 500 else 844})
        page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
        page.evaluate(SETTLED)
        found += run_axe(page, f"{label} @{width}px", report)
    return found
