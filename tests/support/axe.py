"""axe-core (shipped inside the axe-playwright-python package: nothing downloaded) on a Playwright page.

`check_page` runs it at the widths the issue names (1280 and 390 px) without reloading, prints one line
per run into the test output, and returns the serious and critical violations for the test to assert on.
"""

from __future__ import annotations

from typing import Any

from axe_playwright_python.sync_playwright import Axe

WIDTHS = (1280, 390)
BLOCKING = ("serious", "critical")
AXE = Axe()
# WCAG 2.0/2.1 A and AA plus axe's best practices (headings, landmarks, one h1).
OPTIONS = {"resultTypes": ["violations"], "runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]}}


def run_axe(page: Any, label: str) -> list[str]:
    """Run axe on the page as it is now; print its summary; return its serious and critical violations."""
    results = AXE.run(page, options=OPTIONS).response
    violations = results["violations"]
    by_impact = {impact: sum(1 for v in violations if v["impact"] == impact) for impact in
                 ("critical", "serious", "moderate", "minor")}
    summary = ", ".join(f"{k} {n}" for k, n in by_impact.items())
    print(f"axe {results['testEngine']['version']} {label}: {len(results['passes'])} rules passed; "
          f"violations: {summary}")
    found = []
    for v in violations:
        targets = "; ".join(" ".join(map(str, n["target"])) for n in v["nodes"][:5])
        print(f"  {v['impact']}: {v['id']} ({len(v['nodes'])} nodes: {targets}) {v['help']}")
        if v["impact"] in BLOCKING:
            found.append(f"{label}: {v['id']} ({v['impact']}) at {targets}: {v['help']}")
    return found


def check_page(page: Any, label: str, height: int = 900) -> list[str]:
    """axe at every width of WIDTHS (the page resized in place, not reloaded); serious and critical found."""
    found: list[str] = []
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": height if width > 500 else 844})
        page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
        found += run_axe(page, f"{label} @{width}px")
    return found
