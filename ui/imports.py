"""Tables and wording of the Import page, from import summaries (plain values)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from core.services.imports import ImportSummary, format_labels

ISSUE_COLUMNS = ("level", "row", "column", "message")
PREVIEW_COLUMNS = (
    "row",
    "campaign",
    "campaign_id",
    "source",
    "day",
    "currency",
    "impressions",
    "clicks",
    "spend",
    "conversions",
    "revenue",
    "eligible_impressions",
    "budget",
)
UNKNOWN_COLUMNS = (
    "campaign",
    "platform id",
    "currency",
    "first day",
    "last day",
    "rows",
    "first row",
    "state",
)
LEVEL_ORDER = {"error": 0, "warning": 1, "info": 2}


def format_label(name: str | None) -> str:
    return format_labels().get(name or "", "choose the format")


def format_choices() -> list[str]:
    return list(format_labels())


def status_line(summary: ImportSummary) -> str:
    """One sentence on what importing the file would do, or did."""
    report = summary.report
    errors, warnings = report.get("errors", 0), report.get("warnings", 0)
    rows = f"{summary.rows_read:,} rows read"
    if summary.status == "preview":
        counts = (
            f"{summary.inserted:,} new, {summary.updated:,} to update, "
            f"{summary.rejected:,} rejected"
        )
    else:
        counts = (
            f"{summary.inserted:,} inserted, {summary.updated:,} updated, "
            f"{summary.rejected:,} rejected"
        )
    return f"{rows}: {counts}; {errors:,} errors, {warnings:,} warnings."


def issues_frame(
    report: dict[str, Any], *, levels: tuple[str, ...] = ("error", "warning")
) -> pd.DataFrame:
    """The data-quality report as a table: errors first, file-wide ones on top."""
    issues = [i for i in report.get("issues", []) if i["level"] in levels]
    frame = pd.DataFrame(issues, columns=list(ISSUE_COLUMNS))
    if frame.empty:
        return frame
    frame = frame.assign(
        row=frame["row"].astype("Int64"),
        column=frame["column"].fillna(""),
        _order=frame["level"].map(LEVEL_ORDER),
    )
    frame = frame.sort_values(["_order", "row"], kind="stable", na_position="first")
    return frame.drop(columns="_order").reset_index(drop=True)


def unlisted_note(report: dict[str, Any]) -> str | None:
    unlisted = report.get("unlisted") or {}
    if not unlisted:
        return None
    parts = [f"{count:,} more {level}s" for level, count in unlisted.items()]
    return (
        f"Only the first issues of each kind are listed; {', '.join(parts)} not shown."
    )


def preview_frame(summary: ImportSummary) -> pd.DataFrame:
    frame = pd.DataFrame(summary.preview, columns=list(PREVIEW_COLUMNS))
    frame["campaign_id"] = frame["campaign_id"].astype("Int64")
    return frame


def unknown_frame(summary: ImportSummary) -> pd.DataFrame:
    """Campaigns of the file the database does not know, and what became of them."""
    rows = []
    for campaign in summary.unknown_campaigns:
        rows.append(
            (
                campaign.name or "",
                campaign.external_id or "",
                campaign.currency or "",
                campaign.first_day,
                campaign.last_day,
                campaign.rows,
                campaign.first_row,
                _fate(campaign.created_id),
            )
        )
    return pd.DataFrame(rows, columns=list(UNKNOWN_COLUMNS))


def _fate(created_id: int | None) -> str:
    if created_id is None:
        return "not in the database"
    if created_id < 0:  # a preview's stand-in id
        return "will be created"
    return f"created (id {created_id})"
