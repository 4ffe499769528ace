"""Import speed: an internal-format CSV, end to end, against a raw executemany.

    python -m bench.import_kpis --rows 1440000

Writes a CSV of campaigns x 180 days x 4 sources (2,000 campaigns for
1,440,000 rows), then in the same run:

- baseline: a raw ``sqlite3`` executemany of the same rows, prepared as tuples
  beforehand, into an identical fresh database (same schema, indexes and
  pragmas), in a child process so its tuples do not count in our memory;
- import: ``core.services.imports.import_file`` on the file's bytes, parsing,
  matching, validation, the upsert and the commit included.

Prints rows per second of both, their ratio and the peak RSS of this process
(``resource.getrusage``). Target on a 2-core machine: ratio >= 0.5 and peak
RSS < 700 MB. Exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import insert

DAYS = 180
SOURCES = ("google_ads", "meta", "tiktok", "internal")
FIRST_DAY = date(2025, 1, 1)
TARGET_RATIO = 0.5
TARGET_RSS_MB = 700
WRITE_BATCH_CAMPAIGNS = 100
# The app's own connection settings (core.db), so both sides write alike.
SQLITE_PRAGMAS = (
    "journal_mode=WAL",
    "synchronous=NORMAL",
    "foreign_keys=ON",
    "busy_timeout=30000",
)
BASELINE_IMPORT_ID = 1
RAW_INSERT = (
    "INSERT INTO kpi_daily (campaign_id, source, day, impressions, clicks, spend, "
    "conversions, revenue, eligible_impressions, budget, import_id) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def campaign_name(index: int) -> str:
    return f"Bench campaign {index + 1:05d}"


def write_csv(path: Path, campaigns: int, seed: int = 11) -> int:
    """The internal format, written a hundred campaigns at a time."""
    rng = np.random.default_rng(seed)
    days = [(FIRST_DAY + timedelta(days=d)).isoformat() for d in range(DAYS)]
    per_campaign = DAYS * len(SOURCES)
    rows = 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write(
            "campaign,day,source,currency,impressions,clicks,spend,conversions,"
            "revenue,budget\n"
        )
        for first in range(0, campaigns, WRITE_BATCH_CAMPAIGNS):
            count = min(WRITE_BATCH_CAMPAIGNS, campaigns - first)
            size = count * per_campaign
            impressions = rng.integers(1_000, 20_000, size)
            clicks = (impressions * rng.uniform(0.002, 0.04, size)).astype(int)
            frame = pd.DataFrame(
                {
                    "campaign": np.repeat(
                        [campaign_name(first + i) for i in range(count)], per_campaign
                    ),
                    "day": np.tile(np.repeat(days, len(SOURCES)), count),
                    "source": np.tile(SOURCES, count * DAYS),
                    "currency": "USD",
                    "impressions": impressions,
                    "clicks": clicks,
                    "spend": np.round(clicks * rng.uniform(0.3, 2.5, size), 2),
                    "conversions": (clicks * rng.uniform(0.0, 0.06, size)).astype(int),
                    "revenue": np.round(clicks * rng.uniform(0.0, 3.0, size), 2),
                    "budget": 150.0,
                }
            )
            frame.to_csv(handle, header=False, index=False, lineterminator="\n")
            rows += size
    return rows


def prepare_database(url: str, campaigns: int, *, baseline: bool = False) -> int:
    """Schema by the migrations, one analyst, the campaigns; returns the user id.

    The baseline's database also gets the Import row its KPI rows point to.
    """
    from core.db import make_engine, session_scope, upgrade_schema
    from core.models import Campaign, Import, User

    upgrade_schema(url)
    engine = make_engine(url)
    with session_scope(engine) as session:
        user = User(
            username="bench",
            name="Bench Analyst",
            email="bench@example.com",
            role="analyst",
            password_hash="-",
        )
        session.add(user)
        session.flush()
        assert user.id is not None
        user_id = user.id
        last_day = FIRST_DAY + timedelta(days=DAYS - 1)
        session.execute(
            insert(Campaign),
            [
                {
                    "name": campaign_name(i),
                    "currency": "USD",
                    "start_date": FIRST_DAY,
                    "end_date": last_day,
                    "status": "completed",
                    "owner_id": user_id,
                    "external_ids": {},
                }
                for i in range(campaigns)
            ],
        )
        if baseline:
            session.add(
                Import(
                    id=BASELINE_IMPORT_ID,
                    file_name="raw",
                    format="internal",
                    sha256="-",
                    user_id=user_id,
                )
            )
    engine.dispose()
    return user_id


def _raw_row(ids: dict[str, int], cells: list[str]) -> tuple[Any, ...]:
    name, day, source, _, impressions, clicks, spend, conversions, revenue, budget = (
        cells
    )
    return (
        ids[name],
        source,
        day,
        int(impressions),
        int(clicks),
        float(spend),
        float(conversions),
        float(revenue),
        None,
        float(budget),
        BASELINE_IMPORT_ID,
    )


def baseline(database: Path, csv_path: Path) -> dict[str, Any]:
    """Raw sqlite3 executemany of the file's rows, prepared as tuples first."""
    connection = sqlite3.connect(database, isolation_level=None)
    for pragma in SQLITE_PRAGMAS:
        connection.execute(f"PRAGMA {pragma}")
    ids = dict(connection.execute("SELECT name, id FROM campaign"))
    with csv_path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        next(reader)
        rows = [_raw_row(ids, cells) for cells in reader]
    started, cpu = time.perf_counter(), cpu_seconds()
    connection.execute("BEGIN IMMEDIATE")
    connection.executemany(RAW_INSERT, rows)
    connection.execute("COMMIT")
    seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    connection.close()
    return {"rows": len(rows), "seconds": seconds, "cpu": cpu}


def run_import(url: str, user_id: int, csv_path: Path) -> dict[str, Any]:
    from core.db import make_engine, session_scope
    from core.models import Role
    from core.services.imports import import_file
    from core.services.permissions import Actor

    engine = make_engine(url)
    actor = Actor(id=user_id, username="bench", name="Bench Analyst", role=Role.ANALYST)
    started, cpu = time.perf_counter(), cpu_seconds()
    data = csv_path.read_bytes()
    with session_scope(engine) as session:
        summary = import_file(
            session,
            actor=actor,
            file_name=csv_path.name,
            data=data,
            today=date.today(),
        )
    seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    engine.dispose()
    if summary.status != "imported":
        raise SystemExit(f"import failed: {summary.messages(limit=5)}")
    return {
        "rows": summary.inserted + summary.updated,
        "seconds": seconds,
        "cpu": cpu,
    }


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mb() -> float:
    # ru_maxrss is in kilobytes on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_baseline(folder: Path, csv_path: Path, campaigns: int) -> dict[str, Any]:
    database = folder / "raw.db"
    for path in folder.glob("raw.db*"):
        path.unlink()
    prepare_database(f"sqlite:///{database}", campaigns, baseline=True)
    command = [sys.executable, "-m", "bench.import_kpis", "--baseline-only"]
    child = subprocess.run(
        [*command, str(database), str(csv_path)],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(child.stdout)
    return result


def measure_import(folder: Path, csv_path: Path, campaigns: int) -> dict[str, Any]:
    database = folder / "import.db"
    for path in folder.glob("import.db*"):
        path.unlink()
    url = f"sqlite:///{database}"
    return run_import(url, prepare_database(url, campaigns), csv_path)


def report(label: str, result: dict[str, Any]) -> float:
    rate = result["rows"] / result["seconds"]
    print(
        f"  {label:<26}{result['rows']:>11,} rows in {result['seconds']:6.2f} s "
        f"= {rate:>9,.0f} rows/s  (CPU {result['cpu']:.2f} s)",
        flush=True,
    )
    return rate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.import_kpis")
    parser.add_argument("--rows", type=int, default=1_440_000)
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="runs of each, interleaved; the best of each counts (default 3)",
    )
    parser.add_argument("--dir", type=Path, help="work folder (default: a temp one)")
    parser.add_argument("--baseline-only", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.baseline_only:
        database, csv_file = (Path(p) for p in args.baseline_only)
        print(json.dumps(baseline(database, csv_file)))
        return 0

    campaigns = max(1, args.rows // (DAYS * len(SOURCES)))
    raw_rates, our_rates = [], []
    with tempfile.TemporaryDirectory(dir=args.dir) as work:
        folder = Path(work)
        csv_path = folder / "internal_kpis_bench.csv"
        started = time.perf_counter()
        rows = write_csv(csv_path, campaigns)
        print(
            f"wrote {rows:,} rows ({campaigns:,} campaigns x {DAYS} days x "
            f"{len(SOURCES)} sources), {csv_path.stat().st_size / 1e6:.0f} MB "
            f"in {time.perf_counter() - started:.1f} s"
        )
        # Interleaved, so a busy spell on the machine hits both alike.
        for _ in range(args.repeat):
            raw_rates.append(
                report(
                    "raw sqlite3 executemany",
                    measure_baseline(folder, csv_path, campaigns),
                )
            )
            our_rates.append(
                report("import end to end", measure_import(folder, csv_path, campaigns))
            )

    ratio = max(our_rates) / max(raw_rates)
    rss = peak_rss_mb()
    print(
        f"best: import {max(our_rates):,.0f} rows/s, raw {max(raw_rates):,.0f} rows/s"
    )
    print(
        f"ratio {ratio:.2f} (target >= {TARGET_RATIO}), peak RSS of the import "
        f"process {rss:.0f} MB (target < {TARGET_RSS_MB} MB)"
    )
    met = ratio >= TARGET_RATIO and rss < TARGET_RSS_MB
    print("targets met" if met else "TARGET MISSED")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
