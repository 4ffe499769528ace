"""How a retrospective is shown: KPI table, insights by severity, evidence lines.

Plain functions build what is shown (testable without Streamlit); `render_*`
functions draw it. Text people typed is never rendered as HTML or live markdown.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pandas as pd
import streamlit as st

from core import metrics
from core import rules as engine
from core.services.retrospectives import InsightRow, RetroRow
from ui.text import escape

SEVERITY_ORDER = ("critical", "high", "medium", "low")
SEVERITY_ICONS = {
    "critical": ":material/error:",
    "high": ":material/warning:",
    "medium": ":material/info:",
    "low": ":material/low_priority:",
}

KPI_COLUMNS = metrics.SUMMARY_COLUMNS


def pick_label(retro: RetroRow) -> str:
    """A retrospective in a picker: what never changes, so the label never goes
    stale (the status is shown beside it and changes under a kept selection)."""
    return f"#{retro.id} {retro.campaign} ({retro.period_start} – {retro.period_end})"


def kpi_table(kpis: pd.DataFrame, currency: str) -> pd.DataFrame:
    """The KPI summary as text: one row per source, the whole campaign last."""
    rows = []
    for record in kpis.to_dict("records"):
        values = metrics.row_values(record)
        source = record.get("source")
        row = {
            "Source": engine.source_label(source if isinstance(source, str) else None)
        }
        for key, label in KPI_COLUMNS:
            if key in metrics.CATALOGUE:
                row[label] = metrics.format_value(key, values[key], currency)
            else:
                row[label] = metrics.format_fact(key, values[key], currency)
        rows.append(row)
    return pd.DataFrame(rows, columns=["Source", *[label for _, label in KPI_COLUMNS]])


def evidence_line(insight: InsightRow, currency: str) -> str:
    """Where the numbers come from, in one line (plain text)."""
    if insight.origin == "manual" or insight.metric is None:
        return "Written by an analyst."
    metric = insight.metric
    parts = [
        f"Rule {insight.rule_key} v{insight.rule_version}",
        engine.source_label(insight.source),
        f"observed {metrics.format_value(metric, insight.observed, currency)}",
        f"threshold {metrics.format_value(metric, insight.threshold, currency)}",
    ]
    if insight.interval is not None:
        low, high = insight.interval
        parts.append(
            f"95% interval {metrics.format_value(metric, low)} to "
            f"{metrics.format_value(metric, high)}"
        )
    denominator = metrics.CATALOGUE[metric].denominator
    parts.append(
        "sample " + metrics.describe_amount(denominator, insight.sample_size, currency)
    )
    return " · ".join(parts)


def group_insights(
    insights: Sequence[InsightRow],
) -> tuple[dict[str, list[InsightRow]], list[InsightRow]]:
    """Problems by severity (most severe first) and the not-enough-data findings."""
    groups: dict[str, list[InsightRow]] = {s: [] for s in SEVERITY_ORDER}
    thin = []
    for insight in insights:
        if insight.finding == engine.Finding.NOT_ENOUGH_DATA:
            thin.append(insight)
        else:
            groups.setdefault(insight.severity, []).append(insight)
    return {s: items for s, items in groups.items() if items}, thin


# Draws controls for one insight (edit, dismiss) inside its box; None for none.
InsightControls = Callable[[InsightRow], None]


def edited_line(insight: InsightRow) -> str | None:
    """Who changed the insight last and when; a rule insight says it was edited."""
    if insight.edited_at is None:
        return None
    who = f" by {insight.edited_by}" if insight.edited_by else ""
    when = f"{insight.edited_at:%Y-%m-%d %H:%M} UTC"
    if insight.origin == "manual":
        return f"Added or last changed{who} on {when}."
    return f"Rule insight, edited{who} on {when}."


def render_insight(
    insight: InsightRow, currency: str, controls: InsightControls | None = None
) -> None:
    with st.container(border=True, key=f"insight_{insight.id}"):
        title = escape(insight.title)
        if insight.dismissed:
            st.markdown(f":gray[~~{title}~~]")
            st.caption("Dismissed. " + escape(insight.dismissed_reason))
        else:
            st.markdown(f"**{title}**")
        st.text(insight.text)
        st.caption(escape(evidence_line(insight, currency)))
        if insight.actions:
            st.markdown("\n".join(f"- {escape(action)}" for action in insight.actions))
        edited = edited_line(insight)
        if edited:
            st.caption(":material/edit: " + escape(edited))
        if controls is not None:
            controls(insight)


def render_insights(
    insights: Sequence[InsightRow],
    currency: str,
    controls: InsightControls | None = None,
) -> None:
    """Problems grouped by severity; "not enough data" folded away and muted."""
    groups, thin = group_insights(insights)
    if not groups:
        st.success("No rule found a problem with enough evidence.")
    for severity, items in groups.items():
        icon = SEVERITY_ICONS.get(severity, "")
        st.subheader(f"{icon} {severity.title()} ({len(items)})", anchor=False)
        for insight in items:
            render_insight(insight, currency, controls)
    if thin:
        with st.expander(f"Not enough data ({len(thin)})", expanded=False):
            st.caption(
                "These rules could not judge: too little evidence. "
                "They are not problems."
            )
            for insight in thin:
                st.caption(escape(insight.title))
                st.text(insight.text)
