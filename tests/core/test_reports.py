"""The PDF itself, read back with pypdf: sections, scripts, marks, pagination."""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from io import BytesIO

import pandas as pd
import pytest
from pypdf import PdfReader

from core import fonts, metrics, reports
from core.reports import ReportData
from core.services.retrospectives import InsightRow, RetroRow

APPROVED_AT = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
FINGERPRINT = "ab" * 32
CJK_NAME = "東京 冬のセール 2026 · Grüße"


def retro_row(**fields: object) -> RetroRow:
    values: dict[str, object] = {
        "id": 7,
        "campaign_id": 3,
        "campaign": CJK_NAME,
        "currency": "EUR",
        "status": "approved",
        "title": "",
        "period_start": date(2026, 11, 1),
        "period_end": date(2026, 11, 14),
        "created_at": APPROVED_AT - timedelta(days=3),
        "created_by": "Ana Lyst",
        "version": 9,
        "error": None,
        "summary": "Meta did not pay back.",
        "submitted_by": "Ana Lyst",
        "submitted_at": APPROVED_AT - timedelta(days=1),
        "approved_by": "Dana Reyes",
        "approved_at": APPROVED_AT,
        "decided_by": "Dana Reyes",
        "decided_at": APPROVED_AT,
        "decision_comment": "Agreed; cut Meta next time.",
    }
    values.update(fields)
    return RetroRow(**values)  # type: ignore[arg-type]


def insight(number: int, **fields: object) -> InsightRow:
    values: dict[str, object] = {
        "id": number,
        "rule_key": "low_ctr",
        "rule_version": 2,
        "source": "meta",
        "metric": "ctr",
        "finding": "triggered",
        "severity": "medium",
        "observed": 0.0031,
        "threshold": 0.005,
        "interval": (0.0028, 0.0034),
        "sample_size": 120_000.0,
        "title": f"Low CTR number {number} on Meta",
        "text": "CTR was 0.31%, below the threshold of 0.50%.",
        "actions": ("Refresh the creatives.", "Narrow the audience."),
        "origin": "rule",
        "dismissed": False,
        "dismissed_reason": "",
        "edited_at": None,
    }
    values.update(fields)
    return InsightRow(**values)  # type: ignore[arg-type]


def kpi_frame() -> pd.DataFrame:
    daily = pd.DataFrame(
        {
            "source": ["meta", "google_ads"],
            "impressions": [120_000.0, 50_000.0],
            "clicks": [372.0, 900.0],
            "spend": [1_000.0, 500.0],
            "conversions": [10.0, 40.0],
            "revenue": [400.0, 1_500.0],
        }
    )
    return metrics.with_overall(metrics.summarise(daily, by=["source"]))


def daily_frame(days: int = 14) -> pd.DataFrame:
    rows = []
    for source, spend, revenue in (("meta", 70.0, 30.0), ("google_ads", 35.0, 100.0)):
        for offset in range(days):
            rows.append(
                {
                    "source": source,
                    "day": date(2026, 11, 1) + timedelta(days=offset),
                    "spend": spend + offset,
                    "revenue": revenue + 2 * offset,
                }
            )
    return pd.DataFrame(rows)


def report_data(**fields: object) -> ReportData:
    values: dict[str, object] = {
        "retro": retro_row(),
        "kpis": kpi_frame(),
        "daily": daily_frame(),
        "insights": (
            insight(1, severity="critical", title="Critical ROAS on Meta"),
            insight(2),
            insight(
                3,
                finding="not_enough_data",
                severity="low",
                title="Not enough data for Low CTR on TikTok",
            ),
            insight(4, dismissed=True, dismissed_reason="Known tracking gap."),
        ),
        "owner": "Vera Owner",
        "generated_at": APPROVED_AT,
        "report_id": "RETRO-7-V9",
        "draft": False,
        "fingerprint": FINGERPRINT,
    }
    values.update(fields)
    return ReportData(**values)  # type: ignore[arg-type]


def pages_text(pdf: bytes) -> list[str]:
    return [page.extract_text() for page in PdfReader(BytesIO(pdf)).pages]


def flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def test_approved_report_has_every_section_and_the_sign_off() -> None:
    pdf = reports.build_pdf(report_data())

    pages = pages_text(pdf)
    text = flat(" ".join(pages))
    assert pdf.startswith(b"%PDF")
    assert CJK_NAME in text
    for expected in (
        "Period 2026-11-01 to 2026-11-14",
        "Owner Vera Owner",
        "Status approved",
        "Generated at 2026-11-20 09:30 UTC",
        "Submitted by Ana Lyst, 2026-11-19 09:30 UTC",
        "Approved by Dana Reyes, 2026-11-20 09:30 UTC",
        "Agreed; cut Meta next time.",
        "KPI summary",
        "Spend and ROAS per day, by source",
        "Sources side by side",
        "Funnel: impressions, clicks, conversions",
        "Analyst's summary",
        "Meta did not pay back.",
        "Critical (1)",
        "Medium (1)",
        "Refresh the creatives.",
        "Not enough data (1)",
        "Not enough data for Low CTR on TikTok",
        "Dismissed by the analyst (1)",
        "Known tracking gap.",
    ):
        assert expected in text, expected
    assert "DRAFT" not in text


def test_kpis_and_evidence_are_those_of_core_metrics_in_the_campaign_currency() -> None:
    kpis = kpi_frame()
    overall = metrics.row_values(kpis[kpis["source"].isna()].iloc[0])

    text = flat(" ".join(pages_text(reports.build_pdf(report_data()))))

    assert metrics.format_value("roas", overall["roas"]) in text
    assert metrics.format_value("cpc", overall["cpc"], "EUR") in text
    assert "1,500.00 EUR" in text
    assert (
        "Observed 0.31% · threshold 0.50% · 95% interval 0.28% to 0.34% · "
        "sample 120,000 impressions" in text
    )


def test_every_page_says_page_x_of_y_and_carries_id_and_snapshot_hash() -> None:
    pages = pages_text(reports.build_pdf(report_data()))

    assert len(pages) >= 3
    for number, text in enumerate(pages, start=1):
        assert f"Page {number} of {len(pages)}" in text
        assert "Report RETRO-7-V9" in text
        assert f"Content SHA-256 (approval snapshot): {FINGERPRINT}" in flat(text)


def test_a_draft_carries_the_draft_mark_on_every_page() -> None:
    draft = report_data(
        retro=retro_row(status="in_review", approved_by=None, approved_at=None),
        draft=True,
        fingerprint=None,
    )

    pages = pages_text(reports.build_pdf(draft))

    assert len(pages) >= 3
    for text in pages:
        assert "DRAFT" in text
        assert "Campaign retrospective · DRAFT, not approved" in text
    assert "Not approved yet: this is a draft." in flat(pages[0])
    assert "Content SHA-256" not in " ".join(pages)


def test_the_same_report_gives_the_same_bytes() -> None:
    first = reports.build_pdf(report_data())
    second = reports.build_pdf(report_data())

    assert first == second


def test_no_glyph_is_missing_from_a_multi_script_report(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sample = (
        "Grüße, naïve façade, Łódź, İstanbul, Ελληνικά, Привет, Ђурђевак, "
        "東京 冬のセール, 北京烤鸭, カタカナ, ひらがな, € £ ¥ – “quotes”"
    )
    assert fonts.missing_characters(sample, styles=fonts.PRIMARY_FILES) == []
    data = report_data(
        retro=retro_row(campaign=sample, summary=sample),
        insights=(insight(1, title=sample, text=sample, actions=(sample,)),),
    )

    with caplog.at_level(logging.WARNING):
        text = flat(" ".join(pages_text(reports.build_pdf(data))))

    assert sample in text
    assert fonts.REPLACEMENT not in text
    assert not [r for r in caplog.records if "missing" in r.getMessage()]


def test_a_character_no_font_covers_is_printed_as_a_visible_mark_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    hangul = "캠페인"
    assert fonts.missing_characters(f"Sale {hangul}") == list(hangul)
    data = report_data(retro=retro_row(campaign=f"Sale {hangul}"))

    with caplog.at_level(logging.WARNING):
        text = flat(" ".join(pages_text(reports.build_pdf(data))))

    assert f"Sale {fonts.REPLACEMENT * 3}" in text
    assert hangul not in text
    messages = [r.getMessage() for r in caplog.records]
    assert any("no font covers U+C778, U+CEA0, U+D398" in m for m in messages)
    # fpdf2's own warning would mean an empty box was drawn.
    assert not any("missing the following glyphs" in m for m in messages)


def test_control_characters_become_spaces() -> None:
    assert fonts.drawable("a\tb\r\nc\x00d") == "a b\nc d"


def test_fonts_are_parsed_once_per_process() -> None:
    reports.build_pdf(report_data())
    before = fonts._template.cache_info()

    reports.build_pdf(report_data())

    after = fonts._template.cache_info()
    assert after.misses == before.misses
    assert after.hits > before.hits


def test_a_huge_report_paginates_with_nothing_cut_off() -> None:
    long_name = ("Sommerschlussverkauf Nordeuropa 東京 " * 4)[:100]
    many = tuple(
        insight(
            number,
            severity=("critical", "high", "medium", "low")[number % 4],
            finding="not_enough_data" if number % 5 == 0 else "triggered",
            title=f"Insight {number:03d} on Meta",
        )
        for number in range(1, 301)
    )
    data = report_data(retro=retro_row(campaign=long_name), insights=many)

    pdf = reports.build_pdf(data)

    reader = PdfReader(BytesIO(pdf))
    pages = [page.extract_text() for page in reader.pages]
    text = " ".join(pages)
    assert len(pages) > 20
    assert long_name in flat(pages[0])
    for number in range(1, 301):
        assert f"Insight {number:03d} on Meta" in text
    # The not-enough-data table spans pages: its headings repeat on each one.
    spanning = [t for t in pages if re.search(r"Insight \d{3} on Meta sample", t)]
    assert len(spanning) >= 2
    for page_text in spanning:
        assert "Finding Evidence" in page_text
    for page in reader.pages:
        assert_text_inside(page)


def assert_text_inside(page: object) -> None:
    """Every run of text starts inside the page's printable area."""
    box = page.mediabox  # type: ignore[attr-defined]
    width, height = float(box.width), float(box.height)
    margin_pt = 14 * 72 / 25.4
    positions: list[tuple[float, float, str]] = []

    def visit(text: str, cm: list[float], tm: list[float], *_: object) -> None:
        if text.strip():
            x = tm[4] * cm[0] + tm[5] * cm[2] + cm[4]
            y = tm[4] * cm[1] + tm[5] * cm[3] + cm[5]
            positions.append((x, y, text))

    page.extract_text(visitor_text=visit)  # type: ignore[attr-defined]
    for x, y, text in positions:
        assert margin_pt <= x <= width - margin_pt, text
        assert 0 < y < height, text


def test_charts_are_skipped_with_a_note_when_there_is_no_data() -> None:
    empty = report_data(
        kpis=kpi_frame().iloc[0:0],
        daily=daily_frame().iloc[0:0],
        insights=(),
    )

    text = flat(" ".join(pages_text(reports.build_pdf(empty))))

    assert text.count("Nothing to draw: no figures for this chart.") == 3
    assert "No rule found a problem with enough evidence." in text


def test_download_names_are_safe_and_say_draft() -> None:
    row = retro_row(campaign="Winter/Sale: 東京 *2026*")

    assert reports.file_name(row, draft=True) == (
        "retrospective-7-winter-sale-東京-2026-draft.pdf"
    )
    assert reports.file_name(replace(row, campaign="***"), draft=False) == (
        "retrospective-7-campaign.pdf"
    )


def test_text_longer_than_a_page_flows_onto_the_next_pages() -> None:
    reason = " ".join(f"reason{n}" for n in range(2000))
    text = " ".join(f"text{n}" for n in range(2000))
    actions = tuple(f"action {n} " + "x" * 480 for n in range(20))
    data = report_data(
        insights=(
            insight(1, text=text, actions=actions),
            insight(2, dismissed=True, dismissed_reason=reason),
        )
    )

    pages = pages_text(reports.build_pdf(data))

    body = flat(" ".join(pages))
    assert len(pages) > 6
    assert "text0 " in body and "text1999" in body
    assert "reason0 " in body and "reason1999" in body
    assert "action 19 " in body


def test_another_fpdf2_version_gets_the_plain_add_font(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fonts, "TEMPLATE_FPDF_VERSION", "0.0")
    plain = reports.build_pdf(report_data())

    monkeypatch.undo()
    assert plain == reports.build_pdf(report_data())
