"""The dashboard's Follow-through section: the per-step report in rows and words a CS person reads."""

from __future__ import annotations

from typing import Any

from survey_service.core.nps import format_margin, format_nps


def _percent(value: float | None) -> str:
    """A rate as people read it: "40%", "7.5%" under ten, an em dash when nobody was reached."""
    if value is None:
        return "—"
    return f"{value:.0f}%" if value >= 10 or value == 0 else f"{value:.1f}%"


def _group(stats: dict[str, Any]) -> str:
    """ "+12 (n=40, ±15)"."""
    return f"{format_nps(stats['nps'])} (n={stats['responses']}, ±{format_margin(stats['margin_of_error'])})"


def comparison_sentence(cmp: dict[str, Any]) -> str:
    """Whether answers after a reminder score differently from first-ask answers, in one sentence."""
    first, reminded = cmp["first_ask"], cmp["reminded"]
    if not reminded["responses"]:
        return "No answers after a reminder yet: nothing to compare with the first ask."
    if not first["responses"]:
        return "No answers to the first ask alone yet: nothing to compare the reminded answers with."
    head = f"Reminded answers: NPS {_group(reminded)} vs first ask {_group(first)}: "
    p = f"p = {cmp['p_value']:.2f}" if cmp["p_value"] >= 0.01 else "p < 0.01"
    if not cmp["significant"]:
        return head + f"not a meaningful difference ({p})."
    direction = "lower" if (cmp["change"] or 0) < 0 else "higher"
    return head + f"a meaningful difference ({p}): people who answer only after a reminder score {direction}."


def follow_through_view(report: dict[str, Any]) -> dict[str, Any] | None:
    """The section's rows (the first ask and every reminder that reached someone or brought an answer),
    the cumulative rates and the comparison sentence; None when no email first ask was sent."""
    if not report["first_asks"]:
        return None
    cumulative = {c["after_step"]: c for c in report["cumulative"]}
    rows = []
    for step in report["steps"]:
        if step["step"] and not (step["reached"] or step["responses"]):
            continue
        after = cumulative[step["step"]]
        rows.append(
            {
                **step,
                "rate_text": _percent(step["response_rate"]),
                "interval_text": (
                    f"{_percent(step['rate_low'])}–{_percent(step['rate_high'])}"
                    if step["rate_low"] is not None
                    else "—"
                ),
                "cumulative_text": _percent(after["response_rate"]),
            }
        )
    return {
        "first_asks": report["first_asks"],
        "rows": rows,
        "total": cumulative[max(cumulative)],
        "total_text": _percent(cumulative[max(cumulative)]["response_rate"]),
        "first_text": _percent(cumulative[0]["response_rate"]),
        "sentence": comparison_sentence(report["reminded_vs_first_ask"]),
        "comparison": report["reminded_vs_first_ask"],
    }
