"""Precision and recall of the built-in themes on the labelled comments (tests/data/themes).

PYTHONPATH=. .venv/bin/python -m bench.themes_quality
"""

from __future__ import annotations

from pathlib import Path

from survey_service.themes import quality

LABELLED = Path(__file__).resolve().parent.parent / "tests" / "data" / "themes" / "labelled.tsv"


def main() -> None:
    """Print a Markdown table: per theme n, precision, recall, F1; then macro-F1 and language accuracy."""
    rows = quality.load(LABELLED)
    scores, macro, language_accuracy = quality.evaluate(rows)
    print(f"{len(rows)} labelled comments")
    print("| theme | n | precision | recall | F1 |\n|---|---|---|---|---|")
    for s in scores:
        print(f"| {s.key} | {s.support} | {s.precision:.2f} | {s.recall:.2f} | {s.f1:.2f} |")
    print(f"\nmacro-F1 {macro:.3f}; language detected right (no locale given) {language_accuracy:.1%}")


if __name__ == "__main__":
    main()
