"""Report speed: the PDF of a retrospective against a bare fpdf2 table.

    python -m bench.reports --count 50

Builds, in a SQLite file in a temporary folder, one campaign on four sources
over 30 days and its generated retrospective, padded with analyst insights to
20 insights, so that its report has 4 pages and 3 charts. Then, in turns,
`--count` times each:

- report: `core.services.reports.report_pdf` as a download runs it (reading
  the retrospective, its KPIs and insights, three matplotlib charts, fpdf2
  with the Unicode fonts);
- bare: a bare fpdf2 document holding the same KPI table in a core font,
  nothing else: the floor of any fpdf2 report.

Prints the median seconds of both, their ratio, and the first report on its
own (it parses the fonts once per process). Target on a 2-core machine: a
median of at most 0.5 s per report. Exit code 0 when met, 1 otherwise.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date, timedelta
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np
from fpdf import FPDF
from pypdf import PdfReader
from sqlalchemy import insert
from sqlmodel import Session, SQLModel

from core import metrics
from core.db import make_engine
from core.models import Campaign, KpiDaily, Role, User
from core.reports import KPI_ROWS
from core.services import reports, retrospectives, review
from core.services import rules as rule_service
from core.services.permissions import Actor

SOURCES = ("google_ads", "meta", "tiktok", "internal")
FIRST_DAY = date(2026, 10, 1)
DAYS = 30
INSIGHTS = 20
TARGET_SECONDS = 0.5


def _user(session: Session, username: str, role: Role) -> Actor:
    user = User(
        username=username,
        name=username.title(),
        email=f"{username}@example.com",
        role=role.value,
        password_hash="-",
    )
    session.add(user)
    session.flush()
    return Actor.of(user)


def _kpi_rows(campaign_id: int, seed: int) -> list[dict[str, Any]]:
    """Meta loses money, TikTok is thin on clicks, the others do fine."""
    rng = np.random.default_rng(seed)
    shape = {"google_ads": 1.0, "meta": 1.4, "tiktok": 0.05, "internal": 0.6}
    roas = {"google_ads": 2.1, "meta": 0.45, "tiktok": 1.2, "internal": 3.0}
    rows = []
    for source in SOURCES:
        for offset in range(DAYS):
            spend = 250.0 * shape[source] * rng.uniform(0.8, 1.2)
            clicks = int(spend / rng.uniform(0.8, 1.6))
            rows.append(
                {
                    "campaign_id": campaign_id,
                    "source": source,
                    "day": FIRST_DAY + timedelta(days=offset),
                    "impressions": int(clicks / rng.uniform(0.004, 0.02)),
                    "clicks": clicks,
                    "spend": round(spend, 2),
                    "conversions": float(rng.binomial(clicks, 0.03)),
                    "revenue": round(spend * roas[source] * rng.uniform(0.9, 1.1), 2),
                    "budget": 280.0 * shape[source],
                }
            )
    return rows


def build_retrospective(url: str, seed: int = 5) -> tuple[Actor, int]:
    """The benchmark's retrospective; returns the analyst and its id."""
    engine = make_engine(url)
    SQLModel.metadata.create_all(engine)
    with Session(engine, expire_on_commit=False) as session:
        rule_service.ensure_builtin_rules(session)
        owner = _user(session, "owner", Role.VIEWER)
        analyst = _user(session, "analyst", Role.ANALYST)
        campaign = Campaign(
            name="Benchmark autumn campaign",
            owner_id=owner.id,
            currency="EUR",
            start_date=FIRST_DAY,
            end_date=FIRST_DAY + timedelta(days=DAYS - 1),
            budget=30_000.0,
            status="completed",
        )
        session.add(campaign)
        session.flush()
        assert campaign.id is not None
        session.execute(insert(KpiDaily), _kpi_rows(campaign.id, seed))
        row = retrospectives.create_retrospective(
            session, actor=analyst, campaign_id=campaign.id
        )
        retrospectives.generate_insights(
            session, actor=analyst, retrospective_id=row.id
        )
        generated = len(
            retrospectives.get_retrospective(
                session, actor=analyst, retrospective_id=row.id
            ).insights
        )
        for number in range(generated + 1, INSIGHTS + 1):
            review.add_insight(
                session,
                actor=analyst,
                retrospective_id=row.id,
                title=f"Analyst note {number}: creative fatigue after week two",
                text="Frequency passed 6 in week three; CTR fell by a third.",
                severity=("high", "medium", "low")[number % 3],
                actions=["Rotate creatives weekly."],
            )
        review.write_summary(
            session,
            actor=analyst,
            retrospective_id=row.id,
            summary="Meta did not pay back; TikTok had too little data to judge.",
        )
        session.commit()
    engine.dispose()
    return analyst, row.id


def kpi_table_rows(session: Session, actor: Actor, retro_id: int) -> list[list[str]]:
    """The report's KPI table as text, for the bare document."""
    detail = retrospectives.get_retrospective(
        session, actor=actor, retrospective_id=retro_id
    )
    values = [metrics.row_values(r) for r in detail.kpis.to_dict("records")]
    rows = [["Metric", *[str(r.get("source") or "all") for r in values]]]
    for key, label in KPI_ROWS:
        cells = []
        for value in values:
            if key in metrics.CATALOGUE:
                cells.append(metrics.format_value(key, value[key], "EUR"))
            else:
                cells.append(metrics.format_fact(key, value[key], "EUR"))
        rows.append([label.split(" (")[0], *cells])
    # Core fonts are Latin-1: the dash for "no value" becomes a hyphen.
    return [[cell.replace(metrics.NO_VALUE, "-") for cell in row] for row in rows]


def bare_pdf(rows: list[list[str]]) -> bytes:
    pdf = FPDF(format="A4")
    pdf.add_page()
    pdf.set_font("helvetica", size=8)
    with pdf.table() as table:
        for cells in rows:
            table.row(cells)
    return bytes(pdf.output())


def timed(work: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = work()
    return time.perf_counter() - started, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reports")
    parser.add_argument("--count", type=int, default=50, help="reports to render")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench-reports-") as folder:
        url = f"sqlite:///{Path(folder) / 'bench.db'}"
        analyst, retro_id = build_retrospective(url)
        engine = make_engine(url)

        def report() -> bytes:
            with Session(engine) as session:
                return reports.report_pdf(
                    session, actor=analyst, retrospective_id=retro_id
                ).data

        with Session(engine) as session:
            rows = kpi_table_rows(session, analyst, retro_id)
        first_s, pdf = timed(report)
        bare_pdf(rows)
        report_times, bare_times = [], []
        for _ in range(args.count):
            # In turns, so that both see the same load on a shared machine.
            report_times.append(timed(report)[0])
            bare_times.append(timed(lambda: bare_pdf(rows))[0])
        engine.dispose()

    reader = PdfReader(BytesIO(pdf))
    report_s = statistics.median(report_times)
    bare_s = statistics.median(bare_times)
    print(
        f"report: {len(reader.pages)} pages, 3 charts, {INSIGHTS} insights, "
        f"{len(pdf):,} bytes"
    )
    print(f"first report (parses the fonts): {first_s:8.3f} s")
    print(f"report, median of {args.count}:      {report_s:8.3f} s per report")
    print(f"bare fpdf2 table, median:       {bare_s:8.3f} s per document")
    print(f"report / bare:                  {report_s / bare_s:8.1f}x")
    met = report_s <= TARGET_SECONDS
    print(
        f"target: at most {TARGET_SECONDS} s per report: "
        + ("met" if met else "MISSED")
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
