"""Server-rendered SVG charts for the dashboard: the NPS trend with its 95% interval band and n bars."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from markupsafe import Markup, escape

from survey_service.core.nps import format_margin, format_nps

HEIGHT = 280
LEFT, RIGHT, TOP, BOTTOM = 44, 16, 16, 58
N_BAND = 34  # height of the response-count bars under the line
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
LEGEND = "Line: NPS · band: 95% interval · bars: responses"


@dataclass(frozen=True)
class Frame:
    """One drawing of the chart, for one range of screen widths (the stylesheet shows one of them).

    A phone does not get the wide chart scaled down (its text would be a few pixels high): it gets a
    narrow one drawn at about its own size, with fewer period labels, so text renders at 11 px or more.
    """

    name: str  # CSS class: .wide, .medium, .narrow
    width: int  # the viewBox's width
    max_labels: int  # period labels under the axis, at most
    max_values: int  # the NPS is written above each dot when there are at most this many periods
    legend: str = LEGEND
    legend_x: int = LEFT


FRAMES = (
    Frame("wide", 760, 12, 16),
    Frame("medium", 520, 7, 9),
    Frame("narrow", 300, 4, 5, legend="Line: NPS · band: 95% margin · bars: n", legend_x=4),
)


def _y(value: float) -> float:
    """Map an NPS (-100…+100) to the plot's y coordinate."""
    plot = HEIGHT - TOP - BOTTOM - N_BAND
    return TOP + (100 - max(-100.0, min(100.0, value))) / 200 * plot


def _label(period: str, interval: str) -> str:
    year, month, day = period.split("-")
    if interval == "quarter":
        return f"Q{(int(month) - 1) // 3 + 1} {year}"
    if interval == "month":
        return f"{MONTHS[int(month) - 1]} {year[2:]}"
    return f"{day}/{month}"


def trend_svg(
    series: list[dict[str, Any]], interval: str, empty: str = "No responses in this range yet."
) -> Markup:
    """The trend drawn once per Frame (the stylesheet shows the one that fits the screen): a line of NPS
    per period, a shaded 95% interval band, and bars of n underneath."""
    if not series:
        return Markup('<p class="empty">{}</p>').format(empty)
    return Markup('<div class="trend-box">{}</div>{}').format(
        Markup("").join(_trend_frame(series, interval, frame) for frame in FRAMES),
        trend_table(series, interval),
    )


def trend_table(series: list[dict[str, Any]], interval: str) -> Markup:
    """The chart's figures as a table (its text alternative): per period the NPS, n, margin and interval."""
    rows = []
    for point in series:
        margin, low, high = point["margin_of_error"], point.get("nps_low"), point.get("nps_high")
        interval_text = f"{format_nps(low)} to {format_nps(high)}" if margin is not None else "—"
        cells = (
            escape(_label(point["period"], interval)),
            escape(format_nps(point["nps"])),
            point["responses"],
            escape(f"±{format_margin(margin)}" if margin is not None else "—"),
            escape(interval_text),
        )
        rows.append(
            '<tr><th scope="row">{}</th><td class="num">{}</td><td class="num">{}</td>'
            '<td class="num">{}</td><td class="num">{}</td></tr>'.format(*cells)
        )
    return Markup(
        '<details class="trend-table"><summary>Show as table</summary>'
        '<table class="table"><caption class="visually-hidden">NPS by {}</caption>'
        '<thead><tr><th scope="col">Period</th><th scope="col" class="num">NPS</th>'
        '<th scope="col" class="num">n</th><th scope="col" class="num">Margin</th>'
        '<th scope="col" class="num">95% interval</th></tr></thead><tbody>{}</tbody></table></details>'
    ).format(escape(interval), Markup("".join(rows)))


def _trend_frame(series: list[dict[str, Any]], interval: str, frame: Frame) -> Markup:
    """One frame: an SVG line of NPS per period, a shaded 95% interval band, bars of n underneath."""
    count = len(series)
    step = (frame.width - LEFT - RIGHT) / max(count, 1)
    xs = [LEFT + step * (i + 0.5) for i in range(count)]
    parts: list[str] = [
        f'<svg class="trend {frame.name}" viewBox="0 0 {frame.width} {HEIGHT}" role="img" '
        f'aria-label="NPS trend by {escape(interval)} (its figures: Show as table, below)" xmlns="http://www.w3.org/2000/svg">'
    ]
    parts += _axis(frame.width)
    parts += _bands_and_lines(series, xs)
    parts += _period_marks(series, xs, step, interval, frame)
    parts.append(f'<text class="legend" x="{frame.legend_x}" y="{HEIGHT - 8}">{escape(frame.legend)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _axis(width: int) -> list[str]:
    """The horizontal lines and labels of the NPS scale."""
    parts: list[str] = []
    for tick in (-100, -50, 0, 50, 100):
        y = _y(tick)
        cls = "axis zero" if tick == 0 else "axis"
        label = format_nps(tick) if tick else "0"
        parts.append(f'<line class="{cls}" x1="{LEFT}" x2="{width - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(f'<text class="tick" x="{LEFT - 8}" y="{y + 4:.1f}" text-anchor="end">{label}</text>')
    return parts


def _runs(series: list[dict[str, Any]]) -> list[list[int]]:
    """Contiguous runs of periods with responses: the line and band break over empty periods."""
    runs: list[list[int]] = []
    for i, point in enumerate(series):
        if point["nps"] is None:
            continue
        if runs and runs[-1][-1] == i - 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    return runs


def _bands_and_lines(series: list[dict[str, Any]], xs: list[float]) -> list[str]:
    """The 95% interval band (nps_low…nps_high) and the NPS line of each run of two or more periods."""
    parts: list[str] = []
    for run in _runs(series):
        upper = [f"{xs[i]:.1f},{_y(series[i]['nps_high']):.1f}" for i in run]
        lower = [f"{xs[i]:.1f},{_y(series[i]['nps_low']):.1f}" for i in reversed(run)]
        if len(run) > 1:
            parts.append(f'<polygon class="band" points="{" ".join(upper + lower)}"/>')
            line = " ".join(f"{xs[i]:.1f},{_y(series[i]['nps']):.1f}" for i in run)
            parts.append(f'<polyline class="line" points="{line}"/>')
    return parts


def _period_marks(
    series: list[dict[str, Any]], xs: list[float], step: float, interval: str, frame: Frame
) -> list[str]:
    """Per period: the bar of n, the dot (and value, when few) of its NPS, and every few a label."""
    count = len(series)
    parts: list[str] = []
    max_n = max(point["responses"] for point in series) or 1
    base = HEIGHT - BOTTOM
    every = max(1, -(-count // frame.max_labels))
    for i, point in enumerate(series):
        x = xs[i]
        bar = point["responses"] / max_n * (N_BAND - 6)
        width = max(min(step * 0.6, 28), 2)
        title = f"{_label(point['period'], interval)}: NPS {format_nps(point['nps'])}, n={point['responses']}"
        if point["margin_of_error"] is not None:
            title += f", ±{format_margin(point['margin_of_error'])}"
        parts.append(
            f'<rect class="nbar" x="{x - width / 2:.1f}" y="{base - bar:.1f}" width="{width:.1f}" '
            f'height="{bar:.1f}"><title>{escape(title)}</title></rect>'
        )
        if point["nps"] is not None:
            parts.append(
                f'<circle class="dot" cx="{x:.1f}" cy="{_y(point["nps"]):.1f}" r="4">'
                f"<title>{escape(title)}</title></circle>"
            )
            if count <= frame.max_values:
                parts.append(
                    f'<text class="value" x="{x:.1f}" y="{_y(point["nps"]) - 10:.1f}" '
                    f'text-anchor="middle">{escape(format_nps(point["nps"]))}</text>'
                )
        if i % every == 0:
            parts.append(
                f'<text class="tick" x="{x:.1f}" y="{HEIGHT - 30}" text-anchor="middle">'
                f"{escape(_label(point['period'], interval))}</text>"
            )
    return parts


def share_bar(promoters: float | None, passives: float | None, detractors: float | None) -> Markup:
    """A thin stacked bar of detractor / passive / promoter shares."""
    if promoters is None or passives is None or detractors is None:
        return Markup("")
    d, p = detractors, passives
    return Markup(
        '<svg class="share" viewBox="0 0 100 6" preserveAspectRatio="none" aria-hidden="true">'
        f'<rect class="det" x="0" y="0" width="{d:.1f}" height="6"/>'
        f'<rect class="pas" x="{d:.1f}" y="0" width="{p:.1f}" height="6"/>'
        f'<rect class="pro" x="{d + p:.1f}" y="0" width="{max(100 - d - p, 0):.1f}" height="6"/>'
        "</svg>"
    )
