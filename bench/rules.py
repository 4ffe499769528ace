"""Benchmark: batch rule evaluation against a raw GROUP BY and a per-campaign loop.

    python -m bench.rules --campaigns 2000 --days 180

Builds campaigns x days x 4 sources KPI rows in a SQLite file in a temporary
folder, then measures in the same run:

- batch: `evaluation.evaluate_campaigns`, one SQL aggregate plus vectorised
  rules over every campaign, as the services run it;
- raw: the same sums as a hand-written GROUP BY through the sqlite3 module,
  with nothing done to the rows (the floor any batch approach pays);
- loop: the naive way, one ORM query per campaign and the rules on each, over
  a sample of campaigns, scaled to all of them.

Targets: batch within 1.3x of raw, and at least 15x faster than the loop.
Exit code 0 when both are met, 1 otherwise.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import insert
from sqlmodel import Session, SQLModel, select

from core import metrics, rules
from core.db import make_engine, read_session
from core.models import Campaign, KpiDaily, User
from core.services import evaluation

SOURCES = ("google_ads", "meta", "tiktok", "internal")
FIRST_DAY = date(2026, 1, 1)
DAILY_BUDGET = 280.0
BATCH_TARGET = 1.3  # batch time / raw GROUP BY time, at most
LOOP_TARGET = 15.0  # scaled loop time / batch time, at least

RAW_SQL = """
SELECT campaign_id, source,
       SUM(impressions), SUM(clicks), SUM(spend), SUM(conversions), SUM(revenue),
       SUM(eligible_impressions), SUM(budget),
       SUM(CASE WHEN budget IS NOT NULL THEN spend ELSE 0 END),
       SUM(CASE WHEN eligible_impressions IS NOT NULL THEN impressions ELSE 0 END)
FROM kpi_daily
GROUP BY campaign_id, source
"""


def _campaign_rows(count: int, days: int, owner_id: int) -> list[dict[str, Any]]:
    end = FIRST_DAY + timedelta(days=days - 1)
    return [
        {
            "id": index + 1,
            "name": f"Bench campaign {index + 1}",
            "owner_id": owner_id,
            "currency": "EUR",
            "start_date": FIRST_DAY,
            "end_date": end,
            "budget": 1000.0 * days,
            "status": "completed",
            "external_ids": {},
        }
        for index in range(count)
    ]


def _kpi_rows(campaigns: int, days: int, seed: int) -> Iterator[tuple[Any, ...]]:
    """Daily rows with per-campaign behaviour, so every rule has work somewhere."""
    rng = np.random.default_rng(seed)
    shape = (campaigns, len(SOURCES), days)

    def per_campaign(low: float, high: float) -> np.ndarray:
        return rng.uniform(low, high, size=(campaigns, 1, 1))

    # One source in ten barely runs: its rules report "not enough data".
    volume = rng.choice([1.0, 0.002], p=[0.9, 0.1], size=(campaigns, len(SOURCES), 1))
    spend = DAILY_BUDGET * per_campaign(0.75, 1.2) * volume
    spend = spend * rng.lognormal(0.0, 0.2, shape)
    clicks = rng.poisson(spend / per_campaign(0.6, 2.4))
    impressions = np.maximum(clicks, rng.poisson(clicks / per_campaign(0.004, 0.03)))
    conversions = rng.binomial(clicks, np.broadcast_to(per_campaign(0.01, 0.06), shape))
    revenue = conversions * per_campaign(30.0, 120.0) * rng.uniform(0.7, 1.3, shape)
    share = np.clip(per_campaign(0.35, 0.95) * rng.uniform(0.85, 1.15, shape), 0.05, 1)
    eligible = np.round(impressions / share, 1)

    day_text = [(FIRST_DAY + timedelta(days=d)).isoformat() for d in range(days)]
    for c in range(campaigns):
        for s, source in enumerate(SOURCES):
            reports_share = source == "google_ads"
            for d in range(days):
                yield (
                    c + 1,
                    source,
                    day_text[d],
                    int(impressions[c, s, d]),
                    int(clicks[c, s, d]),
                    round(float(spend[c, s, d]), 2),
                    float(conversions[c, s, d]),
                    round(float(revenue[c, s, d]), 2),
                    float(eligible[c, s, d]) if reports_share else None,
                    DAILY_BUDGET,
                )


def build_database(path: Path, campaigns: int, days: int, seed: int) -> str:
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    SQLModel.metadata.create_all(engine)
    with Session(engine) as session:
        owner = User(
            username="bench",
            name="Bench",
            email="bench@example.com",
            role="analyst",
            password_hash="-",
        )
        session.add(owner)
        session.flush()
        assert owner.id is not None
        session.execute(insert(Campaign), _campaign_rows(campaigns, days, owner.id))
        session.commit()
    engine.dispose()

    # sqlite3 executemany: many times faster than any ORM path for bulk rows.
    with sqlite3.connect(path) as connection:
        connection.executemany(
            "INSERT INTO kpi_daily (campaign_id, source, day, impressions, clicks, "
            "spend, conversions, revenue, eligible_impressions, budget) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            _kpi_rows(campaigns, days, seed),
        )
        connection.execute("ANALYZE")
    return url


def timed(work: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = work()
    return time.perf_counter() - started, result


def best_interleaved(
    repeat: int, first: Callable[[], Any], second: Callable[[], Any]
) -> tuple[tuple[float, Any], tuple[float, Any]]:
    """Each one's fastest of `repeat` runs, taken in turns.

    On a shared machine the load changes from second to second; running the two
    in turns exposes both to the same conditions, and the minimum is the run
    least disturbed.
    """
    best_first, best_second = (float("inf"), None), (float("inf"), None)
    for _ in range(repeat):
        best_first = min(best_first, timed(first), key=lambda pair: pair[0])
        best_second = min(best_second, timed(second), key=lambda pair: pair[0])
    return best_first, best_second


def raw_group_by(path: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as connection:
        return connection.execute(RAW_SQL).fetchall()


def batch(url: str) -> pd.DataFrame:
    with read_session(make_cached_engine(url)) as session:
        return evaluation.evaluate_campaigns(session, rule_set=rules.BUILTIN_RULES)


_engines: dict[str, Any] = {}


def make_cached_engine(url: str) -> Any:
    # One engine for the whole run, as the app has one per process.
    if url not in _engines:
        _engines[url] = make_engine(url)
    return _engines[url]


def per_campaign_loop(url: str, campaign_ids: list[int]) -> pd.DataFrame:
    """The naive path: load each campaign's ORM rows, summarise, evaluate."""
    columns = ["source", *metrics.FACTS]
    found = []
    with read_session(make_cached_engine(url)) as session:
        for campaign_id in campaign_ids:
            query = select(KpiDaily).where(KpiDaily.campaign_id == campaign_id)
            kpis = session.exec(query).all()
            frame = pd.DataFrame(
                [[getattr(row, name) for name in columns] for row in kpis],
                columns=columns,
            )
            sums = metrics.with_overall(metrics.summarise(frame, by=["source"]))
            findings = rules.evaluate(sums, rules.BUILTIN_RULES)
            found.append(findings.assign(campaign_id=campaign_id))
    return pd.concat(found, ignore_index=True)


def _identity(frame: pd.DataFrame) -> set[tuple[Any, ...]]:
    return {
        (int(r.campaign_id), r.source, r.rule_key, r.finding)
        for r in frame.itertuples(index=False)
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.rules")
    parser.add_argument("--campaigns", type=int, default=2000)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--sample", type=int, default=200, help="campaigns in the loop")
    parser.add_argument("--repeat", type=int, default=5, help="best of N runs")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args(argv)
    sample = min(args.sample, args.campaigns)

    with tempfile.TemporaryDirectory(prefix="bench-rules-") as folder:
        path = Path(folder) / "bench.db"
        started = time.perf_counter()
        url = build_database(path, args.campaigns, args.days, args.seed)
        rows = args.campaigns * args.days * len(SOURCES)
        print(f"built {rows:,} KPI rows in {time.perf_counter() - started:.1f} s")

        raw_group_by(path)  # warm the page cache for everyone alike
        (raw_s, raw_rows), (batch_s, findings) = best_interleaved(
            args.repeat, lambda: raw_group_by(path), lambda: batch(url)
        )
        ids = list(range(1, sample + 1))
        loop_s, looped = timed(lambda: per_campaign_loop(url, ids))
        for engine in _engines.values():
            engine.dispose()

    loop_scaled = loop_s * args.campaigns / sample
    sampled = findings[findings["campaign_id"].isin(ids)]
    agree = _identity(sampled) == _identity(looped)
    batch_ratio = batch_s / raw_s
    loop_ratio = loop_scaled / batch_s
    problems = int((findings["finding"] == rules.Finding.TRIGGERED.value).sum())
    flagged = findings.loc[findings["finding"] == "triggered", "campaign_id"].nunique()

    print(f"raw SQLite GROUP BY:   {raw_s:8.3f} s  ({len(raw_rows):,} groups)")
    print(
        f"batch evaluation:      {batch_s:8.3f} s  ({problems:,} problems in "
        f"{flagged:,} campaigns, {len(findings) - problems:,} not enough data)"
    )
    print(
        f"per-campaign ORM loop: {loop_s:8.3f} s for {sample} campaigns, "
        f"{loop_scaled:.3f} s scaled to {args.campaigns}"
    )
    print(f"batch / raw GROUP BY:  {batch_ratio:6.2f}x  (target <= {BATCH_TARGET}x)")
    print(f"loop / batch:          {loop_ratio:6.1f}x  (target >= {LOOP_TARGET}x)")
    print(f"batch and loop agree on the sampled campaigns: {agree}")
    met = batch_ratio <= BATCH_TARGET and loop_ratio >= LOOP_TARGET and agree
    print("targets met" if met else "TARGETS MISSED")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
