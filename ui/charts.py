"""Plotly figures for the pages, built from KPI frames by plain functions."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core import metrics

TIME_SERIES = (
    ("spend", "Spend"),
    ("clicks", "Clicks"),
    ("conversions", "Conversions"),
    ("roas", "ROAS (revenue per unit of spend)"),
)


def over_time(kpis: pd.DataFrame, *, period: str = "day") -> go.Figure:
    """Spend, clicks, conversions and ROAS per source over days or weeks."""
    frame = metrics.with_week(kpis) if period == "week" else kpis
    series = metrics.summarise(frame, by=[period, "source"])
    figure = make_subplots(
        rows=2,
        cols=2,
        shared_xaxes=True,
        subplot_titles=[title for _, title in TIME_SERIES],
        vertical_spacing=0.12,
    )
    colours = dict(zip(sorted(series["source"].unique()), _palette(), strict=False))
    for index, (column, _) in enumerate(TIME_SERIES):
        row, col = divmod(index, 2)
        for source, part in series.groupby("source", sort=True):
            figure.add_trace(
                go.Scatter(
                    x=part[period],
                    y=part[column],
                    name=str(source),
                    legendgroup=str(source),
                    showlegend=index == 0,
                    mode="lines+markers",
                    line={"color": colours[source]},
                ),
                row=row + 1,
                col=col + 1,
            )
    figure.update_layout(height=560, margin={"t": 40, "b": 20}, hovermode="x unified")
    return figure


def sources_side_by_side(kpis: pd.DataFrame) -> go.Figure:
    """Spend and revenue per source as bars, ROAS as markers on a second axis."""
    per_source = metrics.summarise(kpis, by=["source"])
    figure = make_subplots(specs=[[{"secondary_y": True}]])
    figure.add_bar(x=per_source["source"], y=per_source["spend"], name="Spend")
    figure.add_bar(x=per_source["source"], y=per_source["revenue"], name="Revenue")
    figure.add_trace(
        go.Scatter(
            x=per_source["source"],
            y=per_source["roas"],
            name="ROAS",
            mode="markers+text",
            text=[f"{v:.2f}" if pd.notna(v) else "" for v in per_source["roas"]],
            textposition="top center",
            marker={"size": 12, "symbol": "diamond"},
        ),
        secondary_y=True,
    )
    figure.update_layout(barmode="group", height=380, margin={"t": 30, "b": 20})
    figure.update_yaxes(title_text="Money", secondary_y=False)
    figure.update_yaxes(title_text="ROAS", secondary_y=True, rangemode="tozero")
    return figure


def _palette() -> list[str]:
    return ["#4C78A8", "#F58518", "#54A24B", "#E45756", "#72B7B2", "#B279A2"]
