"""The Import page's tables and sentences, from plain summaries."""

from __future__ import annotations

from datetime import date

from core.services.imports import ImportSummary, UnknownCampaign
from ui.imports import (
    format_choices,
    format_label,
    issues_frame,
    status_line,
    unknown_frame,
    unlisted_note,
)


def _issue(level, row, message, column=None):
    return {
        "level": level,
        "code": "x",
        "file": "f.csv",
        "row": row,
        "column": column,
        "message": message,
    }


def test_issues_are_listed_errors_first_and_file_wide_ones_on_top():
    report = {
        "issues": [
            _issue("warning", 3, "w3", "Day"),
            _issue("error", 9, "e9", "Clicks"),
            _issue("info", 2, "i2"),
            _issue("error", None, "file"),
            _issue("error", 4, "e4", "Cost"),
        ]
    }

    table = issues_frame(report)

    assert table["message"].tolist() == ["file", "e4", "e9", "w3"]
    assert table["column"].tolist() == ["", "Cost", "Clicks", "Day"]
    assert issues_frame(report, levels=("info",))["message"].tolist() == ["i2"]
    assert issues_frame({"issues": []}).empty


def test_counts_beyond_the_listed_issues_are_mentioned():
    assert unlisted_note({"unlisted": {}}) is None
    assert unlisted_note({"unlisted": {"error": 1500}}) == (
        "Only the first issues of each kind are listed; 1,500 more errors not shown."
    )


def test_status_line_for_a_preview_and_an_import():
    summary = ImportSummary(
        "f.csv",
        "0" * 64,
        "meta",
        "preview",
        rows_read=1200,
        inserted=1000,
        updated=150,
        rejected=50,
        report={"errors": 50, "warnings": 2},
    )
    assert status_line(summary) == (
        "1,200 rows read: 1,000 new, 150 to update, 50 rejected; 50 errors, 2 warnings."
    )
    summary.status = "partial"
    assert status_line(summary).startswith(
        "1,200 rows read: 1,000 inserted, 150 updated"
    )


def test_unknown_campaigns_say_what_became_of_them():
    def unknown(created_id):
        return UnknownCampaign(
            "Spring",
            "42",
            "meta",
            "EUR",
            date(2026, 11, 1),
            date(2026, 11, 7),
            2,
            rows=7,
            created_id=created_id,
        )

    summary = ImportSummary("f.csv", "0" * 64, "meta", "preview")
    summary.unknown_campaigns = [unknown(None), unknown(-1), unknown(12)]

    assert unknown_frame(summary)["state"].tolist() == [
        "not in the database",
        "will be created",
        "created (id 12)",
    ]


def test_formats_are_offered_by_their_names():
    assert format_choices() == ["google_ads", "meta", "tiktok", "internal"]
    assert format_label("tiktok") == "TikTok Ads Manager"
    assert format_label(None) == "choose the format"
