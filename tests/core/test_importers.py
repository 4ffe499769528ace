"""Parsing platform exports: pure, on files the tests write and on the samples."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from pathlib import Path

import numpy as np
import openpyxl
import pytest

from core import importers
from core.errors import ImportRejected
from core.importers import ExportReader, Level, parse_export, parse_number

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
TODAY = date(2026, 12, 1)

GOOGLE_HEADER = (
    "Day,Campaign,Campaign ID,Currency code,Impr.,Clicks,Cost,Conversions,"
    "Conv. value,Search impr. share"
)


def _csv(*lines: str, encoding: str = "utf-8") -> bytes:
    return ("\n".join(lines) + "\n").encode(encoding)


def _parse(data: bytes, name: str = "export.csv", **kwargs):
    return parse_export(data, file_name=name, today=TODAY, **kwargs)


def _codes(parsed, level=None):
    return [i.code for i in parsed.report.issues if level is None or i.level is level]


# -- the samples -------------------------------------------------------------


@pytest.mark.parametrize(
    ("file_name", "format", "spend_column", "impressions_column"),
    [
        ("google_ads_campaigns_by_day.csv", "google_ads", "Cost", "Impr."),
        ("meta_ads_campaigns_by_day.csv", "meta", "Amount spent (USD)", "Impressions"),
        ("tiktok_ads_campaigns_by_day.csv", "tiktok", "Cost", "Impressions"),
        ("internal_kpis.csv", "internal", "spend", "impressions"),
    ],
)
def test_samples_are_detected_and_read_without_errors(
    file_name, format, spend_column, impressions_column
):
    data = (SAMPLES / file_name).read_bytes()
    expected = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))

    parsed = _parse(data, file_name)

    assert parsed.layout.format == format
    assert parsed.report.error_count == 0
    assert parsed.report.rows_read == len(expected) == len(parsed.frame) == 14
    assert set(parsed.frame["source"]) == {format}
    assert parsed.frame["spend"].sum() == pytest.approx(
        sum(float(r[spend_column]) for r in expected)
    )
    assert parsed.frame["impressions"].sum() == sum(
        int(r[impressions_column]) for r in expected
    )
    assert set(parsed.frame["campaign"]) == {
        "Winter Sale 2026",
        "Café Lumière – Launch",
    }
    assert list(parsed.frame["row"]) == list(range(2, 16))


def test_google_sample_keeps_ids_currency_and_eligible_impressions():
    parsed = _parse((SAMPLES / "google_ads_campaigns_by_day.csv").read_bytes())
    first = parsed.frame.iloc[0]

    assert first["campaign_id"] == "9876543210"
    assert first["currency"] == "USD"
    assert first["day"] == datetime(2026, 11, 1)
    assert first["revenue"] == pytest.approx(23.42)
    # 10,057 impressions at an 83.77% share
    assert first["eligible_impressions"] == pytest.approx(10057 / 0.8377)


def test_meta_sample_takes_currency_from_the_spend_header_and_purchases_as_results():
    parsed = _parse((SAMPLES / "meta_ads_campaigns_by_day.csv").read_bytes())

    assert parsed.layout.header_currency == "USD"
    assert set(parsed.frame["currency"]) == {"USD"}
    assert parsed.frame["conversions"].iloc[:3].tolist() == [5, 24, 13]
    assert parsed.frame["clicks"].iloc[0] == 141  # link clicks


def test_tiktok_cvr_is_ignored_and_said_so():
    parsed = _parse((SAMPLES / "tiktok_ads_campaigns_by_day.csv").read_bytes())

    assert "CVR" in parsed.layout.ignored
    notes = [i for i in parsed.report.issues if i.column == "CVR"]
    assert notes and "per impression" in notes[0].message
    first = parsed.frame.iloc[0]
    assert (first["clicks"], first["conversions"]) == (352, 14)
    assert first["revenue"] == pytest.approx(622.63)


# -- layout: title lines, encodings, delimiters, column order ------------------


def test_title_and_date_range_lines_above_the_header_are_skipped():
    data = _csv(
        "Campaign report",
        '"November 1, 2026 - November 7, 2026"',
        "",
        GOOGLE_HEADER,
        "2026-11-01,Spring,111,USD,1000,10,5.00,1,9.00,50%",
        "2026-11-02,Spring,111,USD,oops,10,5.00,1,9.00,50%",
    )
    parsed = _parse(data)

    assert parsed.layout.header_row == 4
    assert len(parsed.frame) == 1
    error = parsed.report.errors[0]
    assert (error.row, error.column) == (6, "Impr.")
    assert str(error) == "export.csv, row 6, column 'Impr.': 'oops' is not a number"


def test_utf8_with_bom_reads_like_without():
    plain = (SAMPLES / "internal_kpis.csv").read_bytes()
    with_bom = b"\xef\xbb\xbf" + plain

    parsed = _parse(with_bom)

    assert parsed.layout.header[0] == "campaign"
    assert parsed.frame.equals(_parse(plain).frame)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le"])
def test_utf16_tab_separated_google_export(encoding):
    lines = [
        "Campaign report",
        "November 1, 2026 - November 2, 2026",
        GOOGLE_HEADER.replace(",", "\t"),
        "2026-11-01\tCafé Lumière\t42\tEUR\t1,200\t30\t45.50\t2.00\t90.00\t< 10%",
        "2026-11-02\tCafé Lumière\t42\tEUR\t800\t20\t30.00\t1.00\t--\t> 90%",
        "Total: Account\t--\t--\t--\t2,000\t50\t75.50\t3.00\t90.00\t--",
    ]
    data = "\r\n".join(lines).encode(encoding)

    parsed = _parse(data)

    assert parsed.layout.delimiter == "\t"
    assert parsed.layout.encoding.startswith("utf-16")
    assert parsed.frame["campaign"].tolist() == ["Café Lumière"] * 2
    assert parsed.frame["impressions"].tolist() == [1200, 800]
    assert parsed.frame["eligible_impressions"].tolist() == pytest.approx(
        [1200 / 0.10, 800 / 0.90]
    )
    assert parsed.report.rows_skipped == 1  # the totals row


def test_extra_columns_in_any_order_are_mapped_by_name():
    data = _csv(
        "Clicks,Notes,Cost,Campaign,Impr.,Avg. CPC,Day",
        "10,hello,5.00,Spring,1000,0.50,2026-11-01",
    )
    parsed = _parse(data)

    row = parsed.frame.iloc[0]
    assert (row["clicks"], row["spend"], row["impressions"]) == (10, 5.0, 1000)
    assert parsed.layout.format == "google_ads"
    messages = [i.message for i in parsed.report.issues]
    assert "columns not used: Notes" in messages
    assert any("ratios are computed" in m for m in messages)


def test_semicolon_delimiter_with_decimal_commas():
    data = _csv(
        "campaign;day;impressions;clicks;spend;conversions;revenue",
        "Spring;2026-11-01;1.234.567;1.234;1.234,50;3;12,5",
    )
    row = _parse(data).frame.iloc[0]

    assert (row["impressions"], row["clicks"]) == (1234567, 1234)
    assert (row["spend"], row["revenue"]) == (1234.5, 12.5)


# -- messy cells ----------------------------------------------------------------


def test_totals_rows_are_skipped_but_a_campaign_called_total_is_kept():
    data = _csv(
        "campaign,day,impressions,clicks,spend",
        "Total Recall,2026-11-01,100,1,1.00",
        "Spring,2026-11-01,100,1,1.00",
        "Total: 2 campaigns,,200,2,2.00",
        "Totals,--,200,2,2.00",
    )
    parsed = _parse(data)

    assert parsed.frame["campaign"].tolist() == ["Total Recall", "Spring"]
    assert parsed.report.rows_skipped == 2
    assert parsed.report.rows_read == 2
    assert "totals_row" in _codes(parsed, Level.INFO)


def test_dashes_and_empty_cells_are_zero_counts_and_unknown_budget_or_share():
    data = _csv(
        GOOGLE_HEADER + ",Budget",
        "2026-11-01,Spring,111,USD,1000,10,5.00,--,,--,",
        "2026-11-02,Spring,111,USD,1000,10,5.00,1,2.00,50%,20.00",
    )
    parsed = _parse(data)
    first, second = parsed.frame.iloc[0], parsed.frame.iloc[1]

    assert (first["conversions"], first["revenue"]) == (0, 0)
    assert np.isnan(first["eligible_impressions"]) and np.isnan(first["budget"])
    assert (second["eligible_impressions"], second["budget"]) == (2000, 20)
    empties = [i for i in parsed.report.issues if i.code == "empty_as_zero"]
    assert {i.column for i in empties} == {"Conversions", "Conv. value"}
    assert all(i.level is Level.INFO and i.row == 2 for i in empties)


def test_thousands_separators_and_quoted_numbers():
    data = _csv(
        "campaign,day,impressions,clicks,spend,conversions,revenue",
        'Spring,2026-11-01,"12,345","1,001","$1,234.56",2,"€ 2,000.00"',
        "Spring,2026-11-02,\"1 234\",12,'7.5',1,0",
    )
    parsed = _parse(data)

    assert parsed.frame["impressions"].tolist() == [12345]
    assert parsed.frame["clicks"].tolist() == [1001]
    assert parsed.frame["spend"].tolist() == [1234.56]
    assert parsed.frame["revenue"].tolist() == [2000.0]
    assert parsed.report.errors[0].row == 3  # '7.5' in quotes of the wrong kind


def test_impression_share_bounds_are_used_and_flagged():
    data = _csv(
        GOOGLE_HEADER,
        "2026-11-01,Spring,111,USD,500,10,5.00,1,9.00,< 10%",
        "2026-11-02,Spring,111,USD,9000,10,5.00,1,9.00,> 90%",
        "2026-11-03,Spring,111,USD,9000,10,5.00,1,9.00,0.5",
        "2026-11-04,Spring,111,USD,9000,10,5.00,1,9.00,120%",
    )
    parsed = _parse(data)

    assert parsed.frame["eligible_impressions"].tolist() == pytest.approx(
        [5000, 10000, 18000]
    )
    warnings = parsed.report.warnings
    assert [(w.row, w.code) for w in warnings] == [
        (2, "share_bound"),
        (3, "share_bound"),
    ]
    assert "10% used" in warnings[0].message
    assert [(e.row, e.code) for e in parsed.report.errors] == [
        (5, "share_out_of_range")
    ]


def test_non_numeric_negative_and_fractional_counts_are_row_errors():
    data = _csv(
        "campaign,day,impressions,clicks,spend",
        "A,2026-11-01,abc,1,1.00",
        "A,2026-11-02,100,-1,1.00",
        "A,2026-11-03,100,1,-5.00",
        "A,2026-11-04,100.5,1,1.00",
        "A,2026-11-05,100,1,1.00",
    )
    parsed = _parse(data)

    assert [(e.row, e.column, e.code) for e in parsed.report.errors] == [
        (2, "impressions", "not_a_number"),
        (3, "clicks", "negative"),
        (4, "spend", "negative"),
        (5, "impressions", "not_whole"),
    ]
    assert parsed.report.rows_rejected == 4
    assert parsed.frame["row"].tolist() == [6]


def test_clicks_above_impressions_is_an_error():
    data = _csv(
        "campaign,day,impressions,clicks,spend",
        "A,2026-11-01,10,11,1.00",
    )
    error = _parse(data).report.errors[0]

    assert (error.row, error.column, error.code) == (
        2,
        "clicks",
        "clicks_above_impressions",
    )
    assert error.message == "clicks (11) exceed impressions (10)"


def test_dates_in_the_future_are_warnings_and_bad_dates_errors():
    data = _csv(
        "campaign,day,impressions,clicks,spend",
        "A,2026-12-02,10,1,1.00",
        "A,2026-02-30,10,1,1.00",
        "A,01/02/2026,10,1,1.00",
        "A,13/02/2026,10,1,1.00",
        "A,,10,1,1.00",
    )
    parsed = _parse(data)

    assert [w.row for w in parsed.report.warnings if w.code == "future_date"] == [2]
    assert [(e.row, e.code) for e in parsed.report.errors] == [
        (3, "bad_date"),
        (4, "bad_date"),
        (6, "no_date"),
    ]
    assert "day/month or month/day" in parsed.report.errors[1].message
    assert parsed.frame["day"].tolist() == [
        datetime(2026, 12, 2),
        datetime(2026, 2, 13),
    ]


def test_rows_with_too_many_fields_are_errors_and_later_rows_keep_their_numbers():
    data = _csv(
        "campaign,day,impressions,clicks,spend",
        "A,2026-11-01,10,1,1.00",
        "Sale, spring,2026-11-02,10,1,1.00",
        "A,2026-11-03,xx,1,1.00",
    )
    parsed = _parse(data)

    assert [(e.row, e.code) for e in parsed.report.errors] == [
        (3, "field_count"),
        (4, "not_a_number"),
    ]
    assert parsed.report.rows_read == 3 and parsed.report.rows_rejected == 2


def test_row_numbers_continue_across_chunks():
    lines = ["campaign,day,impressions,clicks,spend"]
    lines += [f"A,2026-10-{d:02d},10,1,1.00" for d in range(1, 31)]
    lines[17] = "A,2026-10-17,bad,1,1.00"
    lines[25] = "A,2026-10-25,10,1,1.00,extra"
    reader = ExportReader(_csv(*lines), file_name="x.csv", chunk_rows=7)

    frames = list(reader.chunks())

    assert len(frames) == 5
    rows = np.concatenate([f["row"].to_numpy() for f in frames]).tolist()
    assert rows == [r for r in range(2, 32) if r not in (18, 26)]
    assert [e.row for e in reader.report.errors] == [18, 26]


def test_listed_issues_are_capped_but_all_counted(monkeypatch):
    monkeypatch.setattr(importers, "MAX_LISTED_ISSUES", 5)
    lines = ["campaign,day,impressions,clicks,spend"]
    lines += [f"A,2026-10-{d:02d},x,1,1.00" for d in range(1, 21)]

    report = _parse(_csv(*lines)).report

    assert report.error_count == 20 and len(report.errors) == 5
    assert report.to_dict()["unlisted"] == {"error": 15}


# -- meta ---------------------------------------------------------------------------

META_HEADER = (
    "Reporting starts,Reporting ends,Campaign name,Amount spent (EUR),Impressions,"
    "Link clicks,Results,Result indicator,Purchases conversion value"
)


def test_meta_rows_covering_a_range_are_rejected_with_a_daily_breakdown_hint():
    data = _csv(
        META_HEADER,
        "2026-11-01,2026-11-01,Spring,10.00,1000,10,2,actions:offsite_conversion."
        "fb_pixel_purchase,20.00",
        "2026-11-01,2026-11-07,Spring,70.00,7000,70,14,actions:offsite_conversion."
        "fb_pixel_purchase,140.00",
    )
    parsed = _parse(data)

    assert parsed.frame["day"].tolist() == [datetime(2026, 11, 1)]
    assert parsed.frame["currency"].tolist() == ["EUR"]
    error = parsed.report.errors[0]
    assert (error.row, error.column) == (3, "Reporting starts")
    assert "daily breakdown" in error.message and "2026-11-07" in error.message


def test_meta_results_count_as_conversions_only_for_purchases():
    data = _csv(
        META_HEADER,
        "2026-11-01,2026-11-01,Spring,10.00,1000,10,2,actions:offsite_conversion."
        "fb_pixel_purchase,20.00",
        "2026-11-02,2026-11-02,Spring,10.00,1000,10,9,actions:link_click,0",
    )
    parsed = _parse(data)

    assert parsed.frame["conversions"].tolist() == [2, 0]
    warning = parsed.report.warnings[0]
    assert warning.code == "results_not_conversions" and warning.row == 3
    assert "actions:link_click" in warning.message


def test_currency_column_must_agree_with_the_header():
    data = _csv(
        META_HEADER + ",Currency",
        "2026-11-01,2026-11-01,Spring,10.00,1000,10,2,purchase,20.00,EUR",
        "2026-11-02,2026-11-02,Spring,10.00,1000,10,2,purchase,20.00,USD",
        "2026-11-03,2026-11-03,Spring,10.00,1000,10,2,purchase,20.00,",
    )
    parsed = _parse(data)

    assert parsed.frame["currency"].tolist() == ["EUR", "EUR"]
    error = parsed.report.errors[0]
    assert (error.row, error.code) == (3, "currency_conflict")


def test_two_currencies_in_the_headers_reject_the_file():
    data = _csv(
        "Day,Campaign,Impr.,Clicks,Cost (USD),Conv. value (EUR)",
        "2026-11-01,A,10,1,1.00,2.00",
    )
    with pytest.raises(ImportRejected, match="more than one currency"):
        _parse(data)


# -- internal format --------------------------------------------------------------


def test_internal_format_takes_optional_source_currency_and_campaign_id():
    data = _csv(
        "campaign_id,campaign,day,source,currency,impressions,clicks,spend,"
        "conversions,revenue,budget,eligible_impressions",
        "C-1,Spring,2026-11-01,meta,eur,100,1,1.00,0,0,,200",
        "C-1,Spring,2026-11-01,,EUR,100,1,1.00,0,0,,",
        "C-1,Spring,2026-11-01,bing,EUR,100,1,1.00,0,0,,",
        "C-1,Spring,2026-11-01,Meta,EURO,100,1,1.00,0,0,,",
        "C-1,Spring,2026-11-01,tiktok,EUR,100,1,1.00,0,0,,50",
    )
    parsed = _parse(data)

    assert parsed.frame["source"].tolist() == ["meta", "internal"]
    assert parsed.frame["currency"].tolist() == ["EUR", "EUR"]
    assert parsed.frame["campaign_id"].tolist() == ["C-1", "C-1"]
    assert parsed.frame["eligible_impressions"].iloc[0] == 200
    assert [(e.row, e.code) for e in parsed.report.errors] == [
        (4, "bad_source"),
        (5, "bad_currency"),
        (6, "eligible_below_impressions"),
    ]


def test_missing_conversion_and_revenue_columns_are_warned_about():
    data = _csv("campaign,day,impressions,clicks,spend", "A,2026-11-01,10,1,1.00")
    codes = _codes(_parse(data), Level.WARNING)

    assert {"no_conversions", "no_revenue"} <= set(codes)


def test_text_stays_text():
    data = _csv(
        "campaign,campaign_id,day,impressions,clicks,spend",
        "NA,007,2026-11-01,10,1,1.00",
    )
    row = _parse(data).frame.iloc[0]

    assert (row["campaign"], row["campaign_id"]) == ("NA", "007")


# -- detecting the format -------------------------------------------------------------


def test_a_given_format_that_does_not_fit_names_the_missing_columns():
    data = (SAMPLES / "internal_kpis.csv").read_bytes()
    with pytest.raises(ImportRejected, match="missing columns: cost"):
        _parse(data, format="google_ads")


def test_an_unknown_header_lists_what_each_format_expects():
    with pytest.raises(ImportRejected, match="no known header row") as caught:
        _parse(_csv("a,b,c", "1,2,3"))
    assert "Meta Ads Manager" in str(caught.value)


def test_unknown_format_name_is_refused():
    with pytest.raises(ImportRejected, match="choose one of"):
        _parse(_csv("campaign,day"), format="bing")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"\xef\xbb\xbf\r\n", "empty"),
        (b"\xd0\xcf\x11\xe0rest", "old Excel"),
        (b"PK\x03\x04broken", "not a readable XLSX"),
    ],
)
def test_unreadable_files_are_refused(data, message):
    with pytest.raises(ImportRejected, match=message):
        _parse(data)


def test_a_file_that_is_not_utf8_is_refused_with_advice():
    data = "campaign,day,impressions,clicks,spend\nCafé,2026-11-01,1,1,1\n".encode(
        "latin-1"
    )
    with pytest.raises(ImportRejected, match="CSV UTF-8"):
        _parse(data)


# -- XLSX ----------------------------------------------------------------------------


def _xlsx(rows) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def test_xlsx_with_title_rows_dates_numbers_and_dashes():
    data = _xlsx(
        [
            ["Campaign performance"],
            [],
            [
                "Campaign name",
                "Campaign ID",
                "Date",
                "Currency",
                "Cost",
                "Impressions",
                "Clicks (destination)",
                "Conversions",
                "CVR",
                "Total purchase value",
            ],
            [
                "Spring",
                9876543210,
                datetime(2026, 11, 1),
                "USD",
                12.5,
                1000,
                10,
                1,
                "0.10%",
                20,
            ],
            [
                "Spring",
                9876543210,
                "2026-11-02",
                "USD",
                "1,012.50",
                "2,000",
                20,
                "--",
                "0.00%",
                "--",
            ],
            ["Total", None, None, None, 1025, 3000, 30, 1, None, 20],
        ]
    )
    parsed = _parse(data, "tiktok.xlsx")

    assert parsed.layout.kind == "xlsx" and parsed.layout.format == "tiktok"
    assert parsed.layout.header_row == 3
    assert parsed.frame["campaign_id"].tolist() == ["9876543210"] * 2
    assert parsed.frame["day"].tolist() == [
        datetime(2026, 11, 1),
        datetime(2026, 11, 2),
    ]
    assert parsed.frame["spend"].tolist() == [12.5, 1012.5]
    assert parsed.frame["impressions"].tolist() == [1000, 2000]
    assert parsed.frame["conversions"].tolist() == [1, 0]
    assert parsed.frame["row"].tolist() == [4, 5]
    assert parsed.report.rows_skipped == 1 and parsed.report.error_count == 0


def test_xlsx_errors_name_the_spreadsheet_row():
    data = _xlsx(
        [
            ["campaign", "day", "impressions", "clicks", "spend"],
            ["A", date(2026, 11, 1), 10, 1, 1.0],
            ["A", date(2026, 11, 2), "ten", 1, 1.0],
        ]
    )
    report = _parse(data, "internal.xlsx").report

    assert [(e.row, e.column) for e in report.errors] == [(3, "impressions")]


def test_estimated_rows_counts_data_lines():
    data = (SAMPLES / "google_ads_campaigns_by_day.csv").read_bytes()
    assert ExportReader(data, file_name="g.csv").estimated_rows() == 14
    for encoded in (
        data.decode().encode("utf-16"),
        data.decode().encode("utf-16-be"),
        b"\xef\xbb\xbf" + data,
    ):
        assert ExportReader(encoded, file_name="g.csv").estimated_rows() == 14


# -- single cells --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("1,234", (importers.OK, 1234.0, False, 0)),
        ("1,234.5", (importers.OK, 1234.5, False, 0)),
        ("1.234,5", (importers.OK, 1234.5, False, 0)),
        ("12,5", (importers.OK, 12.5, False, 0)),
        ("1\u00a0234", (importers.OK, 1234.0, False, 0)),
        ("83.77%", (importers.OK, 83.77, True, 0)),
        ("< 10%", (importers.OK, 10.0, True, -1)),
        (">90%", (importers.OK, 90.0, True, 1)),
        ("-$5.00", (importers.OK, -5.0, False, 0)),
        ("--", (importers.EMPTY, None, False, 0)),
        ("", (importers.EMPTY, None, False, 0)),
        (7, (importers.OK, 7.0, False, 0)),
        ("abc", (importers.BAD, None, False, 0)),
        ("inf", (importers.BAD, None, False, 0)),
        (True, (importers.BAD, None, False, 0)),
    ],
)
def test_parse_number(cell, expected):
    status, value, percent, bound = parse_number(cell)
    assert status == expected[0]
    if expected[1] is None:
        assert np.isnan(value)
    else:
        assert value == pytest.approx(expected[1])
    assert (percent, bound) == expected[2:]


def test_blank_lines_between_data_rows_are_skipped_and_rows_keep_their_numbers():
    data = _csv(
        "campaign,day,impressions,clicks,spend",
        "A,2026-11-01,10,1,1.00",
        "",
        ",,,,",
        "A,2026-11-02,x,1,1.00",
    )
    parsed = _parse(data)

    assert parsed.report.rows_skipped == 2 and parsed.report.rows_read == 2
    assert [(e.row, e.column) for e in parsed.report.errors] == [(5, "impressions")]
