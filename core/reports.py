"""The PDF of a retrospective, with fpdf2: A4, any script, charts drawn for print.

`build_pdf(report)` turns plain values (`ReportData`) into the bytes of the
document and does no I/O; `core.services.reports` gathers those values,
checks permissions and stores approved reports. The same inputs always give
the same bytes: the creation date is part of the inputs, the charts are
rendered by matplotlib's Agg backend without a time stamp, and fpdf2 derives
the file id from the content.

Contents: a cover with the sign-off block, the KPI summary overall and per
source, three charts (spend and ROAS per day by source, the sources side by
side, the impressions -> clicks -> conversions funnel), the analyst's summary,
insights by severity with their evidence and suggested actions, "not enough
data" findings in brief, and dismissed insights in brief. Every page carries
the report id and "page X of Y" in its footer, and a DRAFT mark unless the
report was approved.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from fpdf import FPDF
from fpdf.enums import TextEmphasis
from fpdf.fonts import FontFace
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from PIL import Image

from core import fonts, metrics
from core import rules as engine
from core.models import as_utc
from core.services.retrospectives import InsightRow, RetroRow

A4_WIDTH_MM = 210
MARGIN_MM = 15
BOTTOM_MARGIN_MM = 20
BODY_PT = 9.5
SMALL_PT = 7.5
LINE_MM = 4.6
# Charts: rendered at print resolution, drawn at the text width.
CHART_DPI = 130
# Day labels under the daily chart, at most.
MAX_DAY_TICKS = 8
CHART_WIDTH_IN = 7.1
MM_PER_INCH = 25.4
INK = (33, 37, 41)
MUTED = (108, 117, 125)
WATERMARK_GREY = 120
DRAFT_MARK = "DRAFT"
SEVERITY_ORDER = ("critical", "high", "medium", "low")
SEVERITY_COLOURS = {
    "critical": (176, 0, 32),
    "high": (204, 85, 0),
    "medium": (156, 120, 0),
    "low": (70, 110, 160),
}
SOURCE_COLOURS = {
    "google_ads": "#4285F4",
    "meta": "#7B61FF",
    "tiktok": "#111111",
    "internal": "#2A9D8F",
}
# The KPI table: facts first, then the catalogue's ratios, as the pages show it.
KPI_ROWS = metrics.SUMMARY_COLUMNS
HEADING_STYLE = FontFace(emphasis="BOLD", fill_color=(233, 236, 239))


@dataclass(frozen=True)
class ReportData:
    """Everything one report shows, as plain values."""

    retro: RetroRow
    # One row per source plus the whole campaign (source missing): facts and metrics.
    kpis: pd.DataFrame
    # Summed facts per source and day (at least spend and revenue).
    daily: pd.DataFrame
    insights: tuple[InsightRow, ...]
    owner: str
    # The document's date: the approval time of an approved report, so that
    # rendering it again gives the same bytes.
    generated_at: datetime
    report_id: str
    draft: bool
    # Printed in the footer of an approved report: the SHA-256 of the snapshot
    # frozen at approval (a PDF cannot contain the hash of its own bytes).
    fingerprint: str | None = None


def build_pdf(report: ReportData) -> bytes:
    """The report as PDF bytes."""
    pdf = ReportPDF(report)
    pdf.cover()
    # The analyst's summary is the first thing a reader wants: on the cover.
    pdf.analyst_notes()
    pdf.kpi_summary()
    pdf.charts()
    pdf.insights()
    return bytes(pdf.output())


def file_name(retro: RetroRow, *, draft: bool) -> str:
    """A download name that names the retrospective, safe on every file system."""
    stem = "".join(c if c.isalnum() else "-" for c in retro.campaign.lower())
    stem = "-".join(part for part in stem.split("-") if part)[:60] or "campaign"
    suffix = "-draft" if draft else ""
    return f"retrospective-{retro.id}-{stem}{suffix}.pdf"


# -- the document -------------------------------------------------------------


class ReportPDF(FPDF):
    """fpdf2 with the report's fonts, running header, footer and DRAFT mark."""

    def __init__(self, report: ReportData) -> None:
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self.report = report
        self.currency = report.retro.currency
        self._has_fallback = False
        self.set_margins(MARGIN_MM, MARGIN_MM, MARGIN_MM)
        self.set_auto_page_break(auto=True, margin=BOTTOM_MARGIN_MM)
        self.alias_nb_pages()
        self.set_creation_date(report.generated_at)
        self.set_title(f"Retrospective #{report.retro.id}: {report.retro.campaign}")
        self.set_author(report.owner)
        self.set_creator("Retrospective Engine")
        self.set_lang("en")
        self.set_text_color(*INK)
        self.set_font(fonts.FAMILY, "", BODY_PT)

    # Each font a document carries costs its subset when the document is
    # written, used or not: the styles are attached on first use.
    def set_font(
        self,
        family: str | None = None,
        style: str | TextEmphasis = "",
        size: float = 0,
    ) -> None:
        letters = style.style if isinstance(style, TextEmphasis) else style
        wanted = "".join(sorted(letters.upper().replace("U", "").replace("S", "")))
        if (
            (family or self.font_family).lower() == fonts.FAMILY
            and f"{fonts.FAMILY}{wanted}" not in self.fonts
            and wanted in fonts.PRIMARY_FILES
        ):
            fonts.attach(self, fonts.FAMILY, wanted, fonts.PRIMARY_FILES[wanted])
        super().set_font(family, style, size)

    # fpdf2 passes every text it draws through here: characters no font
    # covers become a visible mark, and the CJK fallback is loaded only for
    # reports that need it (it costs a quarter of a second).
    def normalize_text(self, text: str) -> str:
        style = self.font_style.replace("U", "")
        if not self._has_fallback and fonts.needs_fallback(text, style):
            fonts.attach(self, fonts.FALLBACK_FAMILY, "", fonts.FALLBACK_FILE)
            self.set_fallback_fonts([fonts.FALLBACK_FAMILY], exact_match=False)
            self._has_fallback = True
        return super().normalize_text(fonts.drawable(text, style))

    def header(self) -> None:
        with self.local_context(text_color=MUTED):
            self.set_font(fonts.FAMILY, "", SMALL_PT)
            self.set_xy(MARGIN_MM, 7)
            state = "DRAFT, not approved" if self.report.draft else "Approved"
            self.cell(0, 4, f"Campaign retrospective · {state}", align="L")
        self.set_xy(MARGIN_MM, MARGIN_MM)
        self.set_font(fonts.FAMILY, "", BODY_PT)

    def _watermark(self) -> None:
        # Drawn last and translucent, so charts cannot hide it.
        with self.local_context(text_color=WATERMARK_GREY, fill_opacity=0.18):
            self.set_font(fonts.FAMILY, "B", 110)
            width = self.get_string_width(DRAFT_MARK)
            x = (self.w - width) / 2
            y = self.h / 2 + 20
            with self.rotation(45, x=self.w / 2, y=self.h / 2):
                self.text(x, y, DRAFT_MARK)

    def footer(self) -> None:
        report = self.report
        if report.draft:
            self._watermark()
        self.set_y(-14)
        with self.local_context(text_color=MUTED):
            self.set_font(fonts.FAMILY, "", SMALL_PT)
            self.cell(0, 3.6, f"Report {report.report_id}", align="L")
            self.set_x(MARGIN_MM)
            self.cell(0, 3.6, f"Page {self.page_no()} of {{nb}}", align="R")
            self.ln(3.8)
            if report.fingerprint:
                line = f"Content SHA-256 (approval snapshot): {report.fingerprint}"
            else:
                line = (
                    f"{DRAFT_MARK}: not approved; rendered "
                    f"{_when(report.generated_at)}; its contents may still change."
                )
            self.cell(0, 3.6, line, align="L")

    # -- building blocks ------------------------------------------------------

    def heading(self, text: str, size: float = 14) -> None:
        # Keep a heading with the first lines after it.
        if self.will_page_break(size * 0.6 + 3 * LINE_MM):
            self.add_page()
        self.ln(2)
        self.set_font(fonts.FAMILY, "B", size)
        self.paragraph(text, height=size * 0.5)
        self.set_font(fonts.FAMILY, "", BODY_PT)
        self.ln(1)

    def paragraph(
        self, text: str, *, height: float = LINE_MM, indent: float = 0
    ) -> None:
        self.set_x(self.l_margin + indent)
        self.multi_cell(self.epw - indent, height, text, new_x="LMARGIN", new_y="NEXT")

    @contextmanager
    def styled(
        self, style: str = "", size: float = BODY_PT, colour: tuple[int, int, int] = INK
    ) -> Iterator[None]:
        with self.local_context(text_color=colour):
            self.set_font(fonts.FAMILY, style, size)
            yield
        self.set_font(fonts.FAMILY, "", BODY_PT)

    def facts_table(self, rows: Sequence[tuple[str, str]]) -> None:
        with self.table(
            col_widths=(1, 3),
            first_row_as_headings=False,
            text_align="LEFT",
            line_height=LINE_MM,
            padding=1.2,
        ) as table:
            for label, value in rows:
                row = table.row()
                row.cell(label, style=FontFace(emphasis="BOLD"))
                row.cell(value)
        self.ln(2)

    # -- sections -------------------------------------------------------------

    def cover(self) -> None:
        report, retro = self.report, self.report.retro
        self.add_page()
        with self.styled(size=11, colour=MUTED):
            self.paragraph(f"Campaign retrospective #{retro.id}")
        with self.styled("B", 20):
            self.paragraph(retro.campaign, height=9)
        self.ln(3)
        self.facts_table(
            [
                ("Campaign", retro.campaign),
                ("Period", f"{retro.period_start} to {retro.period_end}"),
                ("Owner", report.owner),
                ("Status", _status(retro.status)),
                ("Currency", retro.currency),
                ("Generated at", _when(report.generated_at)),
                ("Report id", report.report_id),
            ]
        )
        self.heading("Sign-off", 12)
        self.facts_table(
            [
                ("Submitted by", _who(retro.submitted_by, retro.submitted_at)),
                ("Approved by", _who(retro.approved_by, retro.approved_at)),
            ]
        )
        with self.styled("B"):
            self.paragraph("Approval comment")
        if report.draft:
            comment = "Not approved yet: this is a draft."
        else:
            comment = retro.decision_comment or "No comment."
        self.paragraph(comment)
        if report.fingerprint:
            self.ln(2)
            with self.styled(size=SMALL_PT, colour=MUTED):
                self.paragraph(
                    "The KPIs and insights below are those frozen at approval. Their "
                    "SHA-256, printed in every footer, is recorded in the audit log "
                    "with the approval; the SHA-256 of this file is kept with the "
                    "retrospective."
                )

    def kpi_summary(self) -> None:
        # The whole table on one page: it is short, and read as one.
        if self.will_page_break((len(KPI_ROWS) + 4) * 5.5):
            self.add_page()
        self.heading("KPI summary")
        with self.styled(size=SMALL_PT, colour=MUTED):
            self.paragraph(
                "Ratios of sums over the period, in "
                f"{self.currency}. A dash means no value (nothing to divide by)."
            )
        self.ln(1)
        records = _ordered_kpis(self.report.kpis)
        headings = ["Metric", *[_source_name(r.get("source")) for r in records]]
        values = [metrics.row_values(r) for r in records]
        with (
            self.styled(size=8),
            self.table(
                col_widths=(2.6, *[1.0] * (len(headings) - 1)),
                text_align=("LEFT", *["RIGHT"] * (len(headings) - 1)),
                headings_style=HEADING_STYLE,
                line_height=4.2,
                padding=1.0,
                # One source: two value columns would stretch across the page.
                width=self.epw if len(headings) > 3 else self.epw * 0.7,
            ) as table,
        ):
            table.row(headings)
            for key, label in KPI_ROWS:
                table.row([label, *[self._kpi_value(key, v.get(key)) for v in values]])

    def _kpi_value(self, key: str, value: float | None) -> str:
        if key in metrics.CATALOGUE:
            return metrics.format_value(key, value, self.currency)
        return metrics.format_fact(key, value, self.currency)

    def charts(self) -> None:
        report = self.report
        self.chart(
            "Spend and ROAS per day, by source",
            daily_chart(report.daily, self.currency),
        )
        self.chart("Sources side by side", sources_chart(report.kpis, self.currency))
        self.chart(
            "Funnel: impressions, clicks, conversions", funnel_chart(report.kpis)
        )

    def chart(self, title: str, chart: Chart | None) -> None:
        # The heading goes with its chart onto the next page when both do not fit.
        if chart is not None and self.will_page_break(self.epw * chart.aspect + 12):
            self.add_page()
        self.heading(title)
        if chart is None:
            self.paragraph("Nothing to draw: no figures for this chart.")
            return
        self.image(chart.image, x=self.l_margin, w=self.epw)
        self.ln(2)

    def analyst_notes(self) -> None:
        retro = self.report.retro
        self.heading("Analyst's summary")
        self.paragraph(retro.summary or "No summary written.")
        if retro.no_findings_note:
            self.ln(1)
            with self.styled("B"):
                self.paragraph("No findings note")
            with self.styled("I"):
                self.paragraph(retro.no_findings_note)

    def insights(self) -> None:
        problems, thin, dismissed = group_insights(self.report.insights)
        self.heading("Insights")
        if not problems:
            self.paragraph("No rule found a problem with enough evidence.")
        for severity, items in problems.items():
            colour = SEVERITY_COLOURS.get(severity, INK)
            with self.styled("B", 12, colour):
                self.heading(f"{severity.title()} ({len(items)})", 12)
            for insight in items:
                self.insight(insight)
        if thin:
            self.brief_table(
                f"Not enough data ({len(thin)})",
                "These rules could not judge: too little evidence. They are not "
                "problems.",
                [(i.title, self._sample(i)) for i in thin],
                ("Finding", "Evidence"),
            )
        if dismissed:
            self.dismissed(dismissed)

    def insight(self, insight: InsightRow) -> None:
        if self.will_page_break(4 * LINE_MM):
            self.add_page()
        self.ln(1.5)
        with self.styled("B", 10):
            self.paragraph(insight.title, height=4.8)
        if insight.text:
            self.paragraph(insight.text)
        with self.styled(size=SMALL_PT, colour=MUTED):
            self.paragraph(evidence_line(insight, self.currency), height=3.6)
        if insight.actions:
            # One block: every multi_cell call costs its own line breaking.
            bullets = "\n".join(f"•  {action}" for action in insight.actions)
            self.paragraph(f"Suggested actions:\n{bullets}", indent=4)

    def dismissed(self, insights: Sequence[InsightRow]) -> None:
        # Paragraphs, not a table: a reason may be longer than a page, and a
        # table row cannot span pages.
        self.heading(f"Dismissed by the analyst ({len(insights)})", 12)
        with self.styled(size=SMALL_PT, colour=MUTED):
            self.paragraph("Findings the analyst set aside, with the reason given.")
        for insight in insights:
            self.ln(1)
            with self.styled("B"):
                self.paragraph(insight.title)
            self.paragraph(
                f"Reason: {insight.dismissed_reason or 'none given.'}", indent=4
            )

    def _sample(self, insight: InsightRow) -> str:
        if insight.metric is None:
            return ""
        denominator = metrics.CATALOGUE[insight.metric].denominator
        return "sample " + metrics.describe_amount(
            denominator, insight.sample_size, self.currency
        )

    def brief_table(
        self,
        title: str,
        note: str,
        rows: Sequence[tuple[str, str]],
        headings: tuple[str, str],
    ) -> None:
        """A two-column table of short cells (titles are at most 300 characters)."""
        self.heading(title, 12)
        with self.styled(size=SMALL_PT, colour=MUTED):
            self.paragraph(note)
        self.ln(1)
        with (
            self.styled(size=8),
            self.table(
                col_widths=(3, 2),
                text_align="LEFT",
                headings_style=HEADING_STYLE,
                line_height=4.0,
                padding=1.0,
            ) as table,
        ):
            table.row(list(headings))
            for cells in rows:
                table.row(list(cells))


# -- text ---------------------------------------------------------------------


def _when(moment: datetime | None) -> str:
    if moment is None:
        return "–"
    return f"{as_utc(moment).astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def _who(name: str | None, moment: datetime | None) -> str:
    if not name:
        return "–"
    return f"{name}, {_when(moment)}"


def _status(status: str) -> str:
    return status.replace("_", " ")


def _source_name(source: Any) -> str:
    return engine.source_label(source if isinstance(source, str) else None)


def _ordered_kpis(kpis: pd.DataFrame) -> list[dict[str, Any]]:
    """The whole campaign first, then the sources by name."""
    records = kpis.to_dict("records")
    overall = [r for r in records if not isinstance(r.get("source"), str)]
    sources = sorted(
        (r for r in records if isinstance(r.get("source"), str)),
        key=lambda r: str(r["source"]),
    )
    return overall + sources


def group_insights(
    insights: Sequence[InsightRow],
) -> tuple[dict[str, list[InsightRow]], list[InsightRow], list[InsightRow]]:
    """Open problems by severity (most severe first), not-enough-data, dismissed."""
    problems: dict[str, list[InsightRow]] = {s: [] for s in SEVERITY_ORDER}
    thin, dismissed = [], []
    for insight in insights:
        if insight.dismissed:
            dismissed.append(insight)
        elif insight.finding == engine.Finding.NOT_ENOUGH_DATA:
            thin.append(insight)
        else:
            problems.setdefault(insight.severity, []).append(insight)
    return {s: items for s, items in problems.items() if items}, thin, dismissed


def evidence_line(insight: InsightRow, currency: str) -> str:
    """The numbers behind an insight: value, threshold, interval, sample size."""
    if insight.origin == "manual" or insight.metric is None:
        return f"Written by an analyst · {engine.source_label(insight.source)}"
    metric = insight.metric
    interval = "none (not a rate)"
    if insight.interval is not None:
        low, high = insight.interval
        interval = (
            f"{metrics.format_value(metric, low)} to "
            f"{metrics.format_value(metric, high)}"
        )
    denominator = metrics.CATALOGUE[metric].denominator
    parts = [
        f"Observed {metrics.format_value(metric, insight.observed, currency)}",
        f"threshold {metrics.format_value(metric, insight.threshold, currency)}",
        f"95% interval {interval}",
        "sample " + metrics.describe_amount(denominator, insight.sample_size, currency),
        engine.source_label(insight.source),
        f"rule {insight.rule_key} v{insight.rule_version}",
    ]
    return " · ".join(parts)


# -- charts -------------------------------------------------------------------


def _figure(height_in: float, *, left: float = 0.09, right: float = 0.98) -> Figure:
    # Fixed margins: a layout engine measures every label and triples the cost.
    figure = Figure(figsize=(CHART_WIDTH_IN, height_in), dpi=CHART_DPI)
    figure.subplots_adjust(left=left, right=right, top=0.95, bottom=0.12)
    return figure


@dataclass(frozen=True)
class Chart:
    """A chart as an RGB image, and its height over its width."""

    image: Image.Image
    aspect: float


def _png(figure: Figure) -> Chart:
    # Agg's pixels go to fpdf2 as they are: no PNG to encode here and decode
    # there (a tenth of a report's time), and no time stamp in them.
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    image = Image.frombuffer(
        "RGBA", canvas.get_width_height(), canvas.buffer_rgba(), "raw", "RGBA", 0, 1
    ).convert("RGB")
    width, height = figure.get_size_inches()
    return Chart(image=image, aspect=float(height / width))


def _style(axes: Any) -> None:
    # Few ticks: every tick is a text and a line for Agg to draw.
    axes.yaxis.set_major_locator(MaxNLocator(nbins=4))
    axes.spines[["top", "right"]].set_visible(False)
    axes.grid(axis="y", color="#dddddd", linewidth=0.6)
    axes.tick_params(labelsize=7)


def daily_chart(daily: pd.DataFrame, currency: str) -> Chart | None:
    """Spend per day (top) and ROAS per day (bottom), one line per source."""
    if daily.empty:
        return None
    frame = metrics.add_metrics(daily)
    # Days as positions with our own labels: matplotlib's date axis costs
    # more than the rest of the chart.
    days = sorted(set(frame["day"]))
    position = {day: index for index, day in enumerate(days)}
    frame["x"] = frame["day"].map(position)
    figure = _figure(3.6)
    spend_axes, roas_axes = figure.subplots(2, 1, sharex=True)
    figure.subplots_adjust(hspace=0.12, bottom=0.08)
    for source, rows in frame.sort_values("x").groupby("source", sort=True):
        colour = SOURCE_COLOURS.get(str(source), "#555555")
        label = engine.source_label(str(source))
        spend_axes.plot(rows["x"], rows["spend"], color=colour, lw=1.2, label=label)
        roas_axes.plot(rows["x"], rows["roas"], color=colour, lw=1.2, label=label)
    roas_axes.axhline(1.0, color="#999999", lw=0.8, ls="--")
    spend_axes.set_ylabel(f"Spend ({currency})", fontsize=8)
    roas_axes.set_ylabel("ROAS (1.0 = earned back)", fontsize=8)
    spend_axes.legend(fontsize=7, ncol=4, frameon=False, loc="upper left")
    for axes in (spend_axes, roas_axes):
        _style(axes)
    step = max(1, math.ceil(len(days) / MAX_DAY_TICKS))
    ticks = list(range(0, len(days), step))
    roas_axes.set_xticks(ticks, [f"{days[i].day} {days[i]:%b}" for i in ticks])
    return _png(figure)


def sources_chart(kpis: pd.DataFrame, currency: str) -> Chart | None:
    """Spend and revenue per source as bars, with each source's ROAS on top."""
    records = [r for r in _ordered_kpis(kpis) if isinstance(r.get("source"), str)]
    if not records:
        return None
    labels = [_source_name(r["source"]) for r in records]
    values = [metrics.row_values(r) for r in records]
    spend = np.array([v["spend"] or 0.0 for v in values])
    revenue = np.array([v["revenue"] or 0.0 for v in values])
    positions = np.arange(len(labels))
    figure = _figure(2.3, right=0.85)
    axes = figure.subplots()
    axes.bar(positions - 0.2, spend, 0.4, label="Spend", color="#8da0cb")
    axes.bar(positions + 0.2, revenue, 0.4, label="Revenue", color="#66c2a5")
    top = float(max(spend.max(), revenue.max(), 1.0))
    for x, value in zip(positions, values, strict=True):
        roas = metrics.format_value("roas", value["roas"])
        axes.annotate(f"ROAS {roas}", (x, top * 1.04), ha="center", fontsize=7)
    axes.set_ylim(0, top * 1.15)
    axes.set_xticks(positions, labels)
    axes.set_ylabel(currency, fontsize=8)
    axes.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1, 1))
    _style(axes)
    return _png(figure)


def funnel_chart(kpis: pd.DataFrame) -> Chart | None:
    """Impressions, clicks and conversions of the whole campaign, on a log scale."""
    overall = [r for r in _ordered_kpis(kpis) if not isinstance(r.get("source"), str)]
    if not overall:
        return None
    values = metrics.row_values(overall[0])
    steps = [
        ("Impressions", values["impressions"] or 0.0, None),
        ("Clicks", values["clicks"] or 0.0, "ctr"),
        ("Conversions", values["conversions"] or 0.0, "conversion_rate"),
    ]
    figure = _figure(1.4, left=0.14)
    axes = figure.subplots()
    counts = [max(count, 0.0) for _, count, _ in steps]
    positions = np.arange(len(steps))[::-1]
    axes.barh(positions, [max(c, 1.0) for c in counts], color="#8da0cb", height=0.6)
    axes.set_xscale("log")
    axes.set_yticks(positions, [name for name, _, _ in steps], fontsize=8)
    for y, (_, count, rate) in zip(positions, steps, strict=True):
        text = metrics.format_fact("impressions", count)
        if rate is not None:
            label = engine.short_label(rate)
            text += f"  ({label} {metrics.format_value(rate, values[rate])})"
        axes.annotate(
            text,
            (max(count, 1.0), y),
            xytext=(4, 0),
            textcoords="offset points",
            fontsize=7,
            va="center",
        )
    # Bar lengths on a log scale, so conversions stay visible beside
    # impressions; the labels carry the numbers, so the axis is hidden.
    right = max(max(counts), 10.0)
    axes.set_xlim(0.8, right * 30 if math.isfinite(right) else 10.0)
    axes.xaxis.set_visible(False)
    axes.spines[["top", "right", "bottom"]].set_visible(False)
    return _png(figure)
