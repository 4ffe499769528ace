"""Importing platform exports: match campaigns, validate, write daily KPIs.

The parsing is core.importers (pure). This module adds what needs the
database: campaign matching (platform id, then exact name), the checks that
need a campaign (currency, period, one row per campaign, source and day),
the bulk upsert, and the Import record with its report.

One file is one transaction: the caller's. The KPI writes run inside a
savepoint; when the file is rejected they are rolled back and only the
Import record (status "rejected", with the report) and its audit event stay.
Nothing here opens a database or reads settings: ids and bytes in, a summary
out, so a background job can call it as the pages and the CLI do.
"""

from __future__ import annotations

import hashlib
import logging
import time
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from datetime import date
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from sqlalchemy import bindparam, text
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from core import importers
from core.db import is_sqlite
from core.errors import ImportRejected, NotFound, ValidationFailed
from core.importers import ExportReader, Level, QualityReport
from core.models import Campaign, CampaignStatus, Import, Source, User, utcnow
from core.services import audit
from core.services.permissions import Action, Actor, require

logger = logging.getLogger(__name__)

Progress = Callable[[int, int], None]

# Rows per bulk statement: bounds the Python tuples alive at once.
WRITE_CHUNK_ROWS = 100_000
# Bound parameters per IN list (SQLite allows 32766 in all, older builds 999).
IN_LIST_SIZE = 900
PREVIEW_ROWS = 20
HISTORY_ROWS = 200

FACT_COLUMNS = (
    "impressions",
    "clicks",
    "spend",
    "conversions",
    "revenue",
    "eligible_impressions",
    "budget",
)
KPI_WRITE_COLUMNS = ("campaign_id", "source", "day", *FACT_COLUMNS)
SOURCES: tuple[str, ...] = tuple(s.value for s in Source)

_UPSERT_SET = ", ".join(f"{c} = excluded.{c}" for c in (*FACT_COLUMNS, "import_id"))
_INSERT_COLUMNS = ", ".join((*KPI_WRITE_COLUMNS, "import_id"))
SQLITE_INSERT = (
    f"INSERT INTO kpi_daily ({_INSERT_COLUMNS}) "
    f"VALUES ({', '.join('?' * (len(KPI_WRITE_COLUMNS) + 1))})"
)
SQLITE_UPSERT = (
    f"{SQLITE_INSERT} "
    f"ON CONFLICT (campaign_id, source, day) DO UPDATE SET {_UPSERT_SET}"
)
POSTGRES_STAGE = (
    "CREATE TEMPORARY TABLE IF NOT EXISTS kpi_stage (campaign_id integer, "
    "source varchar(32), day date, impressions integer, clicks integer, "
    "spend float8, conversions float8, revenue float8, "
    "eligible_impressions float8, budget float8) ON COMMIT DROP"
)
POSTGRES_UPSERT = (
    f"INSERT INTO kpi_daily ({_INSERT_COLUMNS}) "
    f"SELECT {', '.join(KPI_WRITE_COLUMNS)}, %s FROM kpi_stage "
    f"ON CONFLICT (campaign_id, source, day) DO UPDATE SET {_UPSERT_SET}"
)


# -- what callers get ---------------------------------------------------------


@dataclass(frozen=True)
class ImportOptions:
    """How to import: the format (None: detect), and what to do about problems."""

    format: str | None = None
    create_campaigns: bool = False
    keep_valid: bool = False
    # Currency of campaigns created from a file that names none (internal CSV).
    currency: str | None = None


@dataclass
class UnknownCampaign:
    """A campaign named in the file that matches none in the database."""

    name: str | None
    external_id: str | None
    source: str
    currency: str | None
    first_day: date
    last_day: date
    first_row: int
    rows: int = 0
    # The campaign made for it; negative in a preview: it would be created.
    created_id: int | None = None


@dataclass
class ImportSummary:
    """What happened to one file (or would happen, for a preview)."""

    file_name: str
    sha256: str
    format: str | None
    status: str  # imported, partial, rejected or preview
    import_id: int | None = None
    rows_read: int = 0
    inserted: int = 0
    updated: int = 0
    rejected: int = 0
    skipped: int = 0
    identical_to: int | None = None
    # Written, or for a preview: would be written (no errors, or keep_valid).
    accepted: bool = False
    seconds: float = 0.0
    unknown_campaigns: list[UnknownCampaign] = field(default_factory=list)
    report: dict[str, Any] = field(default_factory=dict)
    preview: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.accepted

    @property
    def issues(self) -> list[dict[str, Any]]:
        issues: list[dict[str, Any]] = self.report.get("issues", [])
        return issues

    def messages(self, level: str = "error", limit: int | None = None) -> list[str]:
        """Issues of one level as one line each: file, row, column and message."""
        found = [i for i in self.issues if i["level"] == level][:limit]
        return [
            str(importers.Issue(**{**i, "level": Level(i["level"])})) for i in found
        ]

    def to_dict(self) -> dict[str, Any]:
        """Plain values for JSON, without the preview rows (a page shows those)."""
        values = asdict(self)
        del values["preview"]
        return values


# -- the KPI upsert (usable on its own) --------------------------------------------


def upsert_kpis(
    session: Session, frame: pd.DataFrame, *, import_id: int | None = None
) -> tuple[int, int]:
    """Write daily KPI rows, replacing any row of the same campaign, source and day.

    `frame` has the columns of KPI_WRITE_COLUMNS (eligible_impressions and
    budget may be missing or NaN), one row per (campaign_id, source, day).
    Returns (inserted, updated). Runs in the session's transaction: bulk
    executemany on SQLite, COPY into a staging table on PostgreSQL.
    """
    if frame.empty:
        return 0, 0
    frame, keys = _writable(frame)
    if len(pd.unique(keys)) != len(keys):
        raise ValueError("upsert_kpis: a campaign, source and day appears twice")
    return _write(session, frame, keys, import_id)


def _write(
    session: Session,
    frame: pd.DataFrame,
    keys: npt.NDArray[np.int64],
    import_id: int | None,
) -> tuple[int, int]:
    """upsert_kpis without the check that keys are unique (callers made sure)."""
    stored = _stored_mask(session, frame, keys)
    connection = session.connection()
    write = _write_sqlite if is_sqlite(connection.engine) else _write_postgres
    for start in range(0, len(frame), WRITE_CHUNK_ROWS):
        part = slice(start, start + WRITE_CHUNK_ROWS)
        write(connection, frame.iloc[part], stored[part], import_id)
    existing = int(stored.sum())
    return len(frame) - existing, existing


def _writable(frame: pd.DataFrame) -> tuple[pd.DataFrame, npt.NDArray[np.int64]]:
    """The write columns, with days as dates, and their packed keys."""
    frame = frame.reindex(columns=list(KPI_WRITE_COLUMNS))
    days = frame["day"]
    if not pd.api.types.is_datetime64_any_dtype(days.dtype):
        days = pd.to_datetime(days)
    frame = frame.assign(day=days.to_numpy(dtype="datetime64[D]"))
    keys = _pack_keys(
        frame["campaign_id"].to_numpy(np.int64),
        _source_index(frame["source"]),
        frame["day"].to_numpy(dtype="datetime64[D]"),
    )
    return frame, keys


def _source_index(sources: Any) -> npt.NDArray[np.int64]:
    codes, uniques = pd.factorize(sources)
    table = np.array([SOURCES.index(s) if s in SOURCES else -1 for s in uniques])
    index: npt.NDArray[np.int64] = table[codes].astype(np.int64)
    if (index < 0).any():
        raise ValueError(f"upsert_kpis: unknown source in {sorted(set(uniques))}")
    return index


def _pack_keys(
    campaign_ids: npt.NDArray[np.int64],
    source_index: npt.NDArray[np.int64],
    days: npt.NDArray[np.datetime64],
) -> npt.NDArray[np.int64]:
    """(campaign, source, day) as one int64: 21 bits day, 2 bits source, rest id."""
    day_numbers = days.astype("datetime64[D]").astype(np.int64) + (1 << 20)
    packed: npt.NDArray[np.int64] = (campaign_ids << 23) | (source_index << 21)
    return packed | day_numbers


def count_existing(session: Session, frame: pd.DataFrame) -> int:
    """How many of the frame's (campaign_id, source, day) keys are stored already."""
    frame, keys = _writable(frame)
    return int(_stored_mask(session, frame, keys).sum())


def _stored_mask(
    session: Session, frame: pd.DataFrame, keys: npt.NDArray[np.int64]
) -> npt.NDArray[np.bool_]:
    campaign_ids = sorted(int(c) for c in pd.unique(frame["campaign_id"]) if c > 0)
    if not campaign_ids:
        return np.zeros(len(frame), dtype=bool)
    days = frame["day"].to_numpy(dtype="datetime64[D]")
    stored = _stored_keys(session, campaign_ids, days.min(), days.max())
    return np.isin(keys, stored)


def _stored_keys(
    session: Session, campaign_ids: list[int], first: Any, last: Any
) -> npt.NDArray[np.int64]:
    query = text(
        "SELECT campaign_id, source, day FROM kpi_daily "
        "WHERE campaign_id IN :ids AND day BETWEEN :first AND :last"
    ).bindparams(bindparam("ids", expanding=True))
    parts: list[npt.NDArray[np.int64]] = []
    for start in range(0, len(campaign_ids), IN_LIST_SIZE):
        ids = campaign_ids[start : start + IN_LIST_SIZE]
        params = {"ids": ids, "first": first.item(), "last": last.item()}
        rows = session.execute(query, params).all()
        if rows:
            found = pd.DataFrame(rows, columns=["campaign_id", "source", "day"])
            parts.append(
                _pack_keys(
                    found["campaign_id"].to_numpy(np.int64),
                    _source_index(found["source"]),
                    pd.to_datetime(found["day"]).to_numpy(dtype="datetime64[D]"),
                )
            )
    return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)


def _column_values(frame: pd.DataFrame, name: str) -> list[Any]:
    values = frame[name].to_numpy(dtype=np.float64)
    missing = np.isnan(values)
    if not missing.any():
        plain: list[Any] = values.tolist()
        return plain
    if missing.all():
        return [None] * len(values)
    # NaN is stored as NULL (only eligible impressions and budget may be empty).
    mixed = values.astype(object)
    mixed[missing] = None
    with_nulls: list[Any] = mixed.tolist()
    return with_nulls


def _texts(column: pd.Series) -> list[str]:
    if isinstance(column.dtype, pd.CategoricalDtype):
        categories = np.asarray(column.cat.categories, dtype=object)
        taken: list[str] = categories[column.cat.codes.to_numpy()].tolist()
        return taken
    return [str(value) for value in column.tolist()]


def _iso_days(days: npt.NDArray[np.datetime64]) -> list[str]:
    # A file has a few hundred distinct days: format each once.
    codes, uniques = pd.factorize(days)
    table = np.array([str(d) for d in np.asarray(uniques, dtype="datetime64[D]")])
    result: list[str] = table[codes].tolist()
    return result


def _rows(frame: pd.DataFrame, import_id: int | None) -> Iterator[tuple[Any, ...]]:
    columns = [
        frame["campaign_id"].to_numpy(np.int64).tolist(),
        _texts(frame["source"]),
        _iso_days(frame["day"].to_numpy(dtype="datetime64[D]")),
        frame["impressions"].to_numpy(np.int64).tolist(),
        frame["clicks"].to_numpy(np.int64).tolist(),
        *(_column_values(frame, name) for name in FACT_COLUMNS[2:]),
        [import_id] * len(frame),
    ]
    return zip(*columns, strict=True)


def _write_sqlite(
    connection: Any,
    frame: pd.DataFrame,
    stored: npt.NDArray[np.bool_],
    import_id: int | None,
) -> None:
    # The write lock is held since BEGIN IMMEDIATE, so keys found absent stay
    # absent: new rows take a plain INSERT, at half the cost of an upsert.
    cursor = connection.connection.driver_connection.cursor()
    try:
        new = frame if not stored.any() else frame.loc[~stored]
        cursor.executemany(SQLITE_INSERT, _rows(new, import_id))
        if stored.any():
            cursor.executemany(SQLITE_UPSERT, _rows(frame.loc[stored], import_id))
    finally:
        cursor.close()


def _write_postgres(
    connection: Any,
    frame: pd.DataFrame,
    stored: npt.NDArray[np.bool_],
    import_id: int | None,
) -> None:
    # Other transactions may insert the same keys meanwhile: always upsert.
    driver = connection.connection.driver_connection
    with driver.cursor() as cursor:
        cursor.execute(POSTGRES_STAGE)
        cursor.execute("TRUNCATE kpi_stage")
        columns = ", ".join(KPI_WRITE_COLUMNS)
        with cursor.copy(f"COPY kpi_stage ({columns}) FROM STDIN") as copy:
            for row in _rows(frame, None):
                copy.write_row(row[:-1])
        cursor.execute(POSTGRES_UPSERT, (import_id,))


# -- matching rows to campaigns ---------------------------------------------------


def name_key(name: str) -> str:
    """Campaign names match trimmed and case-insensitively."""
    return unicodedata.normalize("NFC", name).strip().casefold()


@dataclass
class _Known:
    id: int
    name: str
    currency: str
    start: date
    end: date
    external_ids: dict[str, str]


@dataclass(frozen=True)
class _Match:
    campaign_id: int | None = None
    error: str | None = None
    code: str = ""
    link: bool = False  # matched by name: remember the platform id
    warning: str | None = None


class _Campaigns:
    """Every campaign, by platform id and by name (a few hundred bytes each)."""

    def __init__(self, session: Session) -> None:
        self.by_id: dict[int, _Known] = {}
        self.by_external: dict[tuple[str, str], int] = {}
        self.by_name: dict[str, list[int]] = {}
        query = sa_select(
            col(Campaign.id),
            col(Campaign.name),
            col(Campaign.currency),
            col(Campaign.start_date),
            col(Campaign.end_date),
            col(Campaign.external_ids),
        )
        for id_, name, currency, start, end, external_ids in session.execute(query):
            known = _Known(id_, name, currency, start, end, dict(external_ids or {}))
            self.add(known)

    def add(self, known: _Known) -> None:
        self.by_id[known.id] = known
        self.by_name.setdefault(name_key(known.name), []).append(known.id)
        for source, external_id in known.external_ids.items():
            self.by_external[(source, str(external_id))] = known.id

    def match(
        self, name: str | None, external_id: str | None, source: str, *, internal: bool
    ) -> _Match:
        """By platform id, then by exact name; the internal id is this database's."""
        if external_id and internal:
            return self._by_own_id(external_id)
        if external_id and (source, external_id) in self.by_external:
            return _Match(self.by_external[(source, external_id)])
        candidates = self.by_name.get(name_key(name), []) if name else []
        if len(candidates) > 1:
            ids = ", ".join(str(c) for c in candidates)
            return _Match(
                error=f"the name '{name}' matches campaigns {ids}; add the "
                "platform's campaign id column to tell them apart",
                code="ambiguous_campaign",
            )
        if not candidates:
            return _Match()
        known = self.by_id[candidates[0]]
        stored = known.external_ids.get(source)
        if external_id and stored and stored != external_id:
            return _Match(
                known.id,
                warning=f"'{name}' matched campaign {known.id} by name, but the "
                f"file's {source} id {external_id} is not the stored {stored}; "
                "the stored id is kept",
            )
        return _Match(known.id, link=bool(external_id and not stored))

    def _by_own_id(self, value: str) -> _Match:
        if value.isdigit() and int(value) in self.by_id:
            return _Match(int(value))
        return _Match(
            error=f"there is no campaign with id {value} (campaign_id in the "
            "internal format is this application's campaign id)",
            code="unknown_campaign_id",
        )


class _SeenKeys:
    """(campaign, source, day) keys met earlier in the file, with their rows.

    Kept as a few sorted numpy runs (16 bytes a row), merged now and then,
    so a million-row file costs megabytes here rather than a Python dict.
    """

    MAX_RUNS = 8

    def __init__(self) -> None:
        self.runs: list[tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]] = []

    def first_rows(self, keys: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """The earlier row of each key, 0 where the key is new."""
        found = np.zeros(len(keys), dtype=np.int64)
        for run_keys, run_rows in self.runs:
            at = np.minimum(np.searchsorted(run_keys, keys), len(run_keys) - 1)
            hit = run_keys[at] == keys
            found[hit] = run_rows[at[hit]]
        return found

    def add(self, keys: npt.NDArray[np.int64], rows: npt.NDArray[np.int64]) -> None:
        if len(keys) == 0:
            return
        self.runs.append(_sorted_run(keys, rows))
        if len(self.runs) > self.MAX_RUNS:
            merged_keys = np.concatenate([k for k, _ in self.runs])
            merged_rows = np.concatenate([r for _, r in self.runs])
            self.runs = [_sorted_run(merged_keys, merged_rows)]


def _sorted_run(
    keys: npt.NDArray[np.int64], rows: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    order = np.argsort(keys, kind="stable")
    return keys[order], rows[order]


_COMBO_COLUMNS = ("campaign", "campaign_id", "source", "currency")


def _combinations(frame: pd.DataFrame) -> tuple[pd.DataFrame, npt.NDArray[np.intp]]:
    """Distinct (campaign, id, source, currency) of a chunk, and each row's combo.

    Matching and the checks that depend only on these run once per combo.
    """
    packed = np.zeros(len(frame), dtype=np.int64)
    for name in _COMBO_COLUMNS:
        column = frame[name]
        if not isinstance(column.dtype, pd.CategoricalDtype):
            column = column.astype("category")
        codes = column.cat.codes.to_numpy(np.int64) + 1
        packed = packed * (len(column.cat.categories) + 1) + codes
    inverse, _, first = _distinct(packed)
    combos = frame.iloc[first][list(_COMBO_COLUMNS)].astype(object)
    combos = combos.where(combos.notna(), None).reset_index(drop=True)
    return combos, inverse


def _distinct(
    values: npt.NDArray[np.int64],
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.int64], npt.NDArray[np.intp]]:
    """(codes, distinct values, index of each one's first row), by hashing."""
    codes, uniques = pd.factorize(values)
    first = np.empty(len(uniques), dtype=np.intp)
    # Written back to front, so the earliest row of each value is the one kept.
    first[codes[::-1]] = np.arange(len(values) - 1, -1, -1)
    return codes, np.asarray(uniques, dtype=np.int64), first


def _error_of(
    matches: list[_Match], combo_of_row: npt.NDArray[np.intp]
) -> Callable[[int], str]:
    return lambda j: str(matches[combo_of_row[j]].error)


def _campaign_status(start: date, end: date, today: date) -> str:
    if end < today:
        return CampaignStatus.COMPLETED.value
    if start <= today:
        return CampaignStatus.ACTIVE.value
    return CampaignStatus.PLANNED.value


@dataclass(frozen=True)
class _Stats:
    rows: int
    first_row: int
    first_day: date
    last_day: date


class _ImportRun:
    """One pass over a file: parse, match, validate and (unless previewing) write."""

    def __init__(
        self,
        session: Session,
        *,
        actor: Actor,
        reader: ExportReader,
        options: ImportOptions,
        today: date,
        import_id: int | None,
        progress: Progress | None,
    ) -> None:
        self.session = session
        self.actor = actor
        self.reader = reader
        self.report: QualityReport = reader.report
        self.options = options
        self.today = today
        self.import_id = import_id
        self.write = import_id is not None
        self.progress = progress
        self.internal = reader.format == "internal"
        self.campaigns = _Campaigns(session)
        self.unknown: dict[tuple[str, str | None], UnknownCampaign] = {}
        self.created: dict[int, UnknownCampaign] = {}
        self.seen = _SeenKeys()
        self.warned: set[tuple[int, str]] = set()
        self.valid_rows = self.inserted = self.updated = 0
        self.preview: list[dict[str, Any]] = []
        self._next_provisional = -1

    @property
    def accepted(self) -> bool:
        if self.valid_rows == 0:
            return False
        return self.report.error_count == 0 or self.options.keep_valid

    def execute(self) -> None:
        total = self.reader.estimated_rows()
        for frame in self.reader.chunks():
            frame = self._checked(frame)
            self._keep_preview(frame)
            self._store(frame)
            if self.progress is not None:
                done = self.report.rows_read + self.report.rows_skipped
                self.progress(done, max(total, done))
        if self.report.rows_read == 0:
            self.report.add(
                Level.ERROR, "no_rows", "the file has a header but no data rows"
            )
        self._settle_created()

    # -- matching and checks

    def _checked(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The chunk with campaign ids, without the rows it rejects."""
        combos, inverse = _combinations(frame)
        matches = [self._match(*combo) for combo in combos.itertuples(index=False)]
        tracked = [
            k
            for k, m in enumerate(matches)
            if (m.campaign_id is None and m.error is None)
            or m.campaign_id in self.created
        ]
        stats = self._stats(frame, inverse, tracked)
        for k in tracked:
            matches[k] = self._unknown(
                *combos.iloc[k], match=matches[k], stats=stats[k]
            )

        ids = np.array([m.campaign_id or 0 for m in matches], dtype=np.int64)[inverse]
        frame = frame.assign(campaign_id=ids)
        bad = self._reject_combos(frame, inverse, matches)
        self._warn_outside_period(frame, bad)
        bad |= self._duplicates(frame, bad)
        self.report.rows_rejected += int(bad.sum())
        return frame.loc[~bad]

    def _match(
        self,
        name: str | None,
        external_id: str | None,
        source: str,
        currency: str | None,
    ) -> _Match:
        found = self.campaigns.match(name, external_id, source, internal=self.internal)
        if found.campaign_id is None:
            return found
        known = self.campaigns.by_id[found.campaign_id]
        if currency and currency != known.currency:
            return _Match(
                error=f"currency {currency} differs from the campaign's "
                f"({known.currency}); amounts in two currencies are never mixed",
                code="currency_mismatch",
            )
        if found.link and external_id:
            self._link(known, source, external_id)
        if found.warning and (known.id, source) not in self.warned:
            # Said once per campaign and source, not on every chunk.
            self.warned.add((known.id, source))
            self.report.add(Level.WARNING, "campaign_id_differs", found.warning)
        return found

    def _link(self, known: _Known, source: str, external_id: str) -> None:
        """Remember the platform id of a campaign matched by name."""
        known.external_ids[source] = external_id
        self.campaigns.by_external[(source, external_id)] = known.id
        if self.write:
            campaign = self.session.get(Campaign, known.id)
            if campaign is not None:
                campaign.external_ids = dict(known.external_ids)
        self.report.add(
            Level.INFO,
            "campaign_linked",
            f"'{known.name}' matched by name; its {source} id {external_id} "
            f"{'is now' if self.write else 'will be'} stored for future imports",
        )

    def _stats(
        self, frame: pd.DataFrame, inverse: npt.NDArray[np.intp], combos: list[int]
    ) -> dict[int, _Stats]:
        if not combos:
            return {}
        mask = np.isin(inverse, combos)
        rows = pd.DataFrame(
            {
                "k": inverse[mask],
                "row": frame["row"].to_numpy()[mask],
                "day": frame["day"].to_numpy()[mask],
            }
        )
        grouped = rows.groupby("k").agg(
            rows=("row", "size"),
            first_row=("row", "min"),
            first_day=("day", "min"),
            last_day=("day", "max"),
        )
        return {
            int(k): _Stats(
                int(g.rows), int(g.first_row), g.first_day.date(), g.last_day.date()
            )
            for k, g in grouped.iterrows()
        }

    def _unknown(
        self,
        name: str | None,
        external_id: str | None,
        source: str,
        currency: str | None,
        *,
        match: _Match,
        stats: _Stats,
    ) -> _Match:
        """Count rows of campaigns new to the database; create them when asked."""
        key = ("name", name_key(name)) if name else ("id", external_id)
        entry = self.unknown.get(key)
        if entry is None:
            entry = UnknownCampaign(
                name=name,
                external_id=None if self.internal else external_id,
                source=source,
                currency=currency or self.options.currency,
                first_day=stats.first_day,
                last_day=stats.last_day,
                first_row=stats.first_row,
            )
            self.unknown[key] = entry
        entry.rows += stats.rows
        entry.first_day = min(entry.first_day, stats.first_day)
        entry.last_day = max(entry.last_day, stats.last_day)
        entry.first_row = min(entry.first_row, stats.first_row)
        if match.campaign_id is not None:
            return match  # created from an earlier chunk
        if entry.created_id is not None:
            return _Match(entry.created_id)  # created for another source's rows
        refusal = self._refuse_creation(entry)
        if refusal is not None:
            return refusal
        return _Match(self._create(entry))

    def _refuse_creation(self, entry: UnknownCampaign) -> _Match | None:
        label = f"'{entry.name}'" if entry.name else f"with id {entry.external_id}"
        if not self.options.create_campaigns:
            return _Match(
                error=f"campaign {label} is not in the database; create it from "
                "this import or correct the name",
                code="unknown_campaign",
            )
        if not entry.name:
            return _Match(
                error=f"campaign {label} is unknown and the file gives no name to "
                "create it with",
                code="cannot_create_campaign",
            )
        if not entry.currency:
            return _Match(
                error=f"campaign {label} is new and the file gives no currency; "
                "choose a currency for new campaigns, add a currency column or "
                "create the campaign first",
                code="cannot_create_campaign",
            )
        return None

    def _create(self, entry: UnknownCampaign) -> int:
        assert entry.name is not None and entry.currency is not None
        external_ids = {entry.source: entry.external_id} if entry.external_id else {}
        if self.write:
            campaign = Campaign(
                name=entry.name,
                currency=entry.currency,
                start_date=entry.first_day,
                end_date=entry.last_day,
                status=_campaign_status(entry.first_day, entry.last_day, self.today),
                owner_id=self.actor.id,
                external_ids=external_ids,
            )
            self.session.add(campaign)
            self.session.flush()
            assert campaign.id is not None
            campaign_id = campaign.id
        else:
            campaign_id = self._next_provisional
            self._next_provisional -= 1
        entry.created_id = campaign_id
        self.created[campaign_id] = entry
        self.campaigns.add(
            _Known(
                campaign_id,
                entry.name,
                entry.currency,
                entry.first_day,
                entry.last_day,
                dict(external_ids),
            )
        )
        return campaign_id

    def _settle_created(self) -> None:
        """Give created campaigns the whole period the file covers, and audit them."""
        if not self.write:
            return
        for campaign_id, entry in self.created.items():
            campaign = self.session.get(Campaign, campaign_id)
            assert campaign is not None
            campaign.start_date = entry.first_day
            campaign.end_date = entry.last_day
            campaign.status = _campaign_status(
                entry.first_day, entry.last_day, self.today
            )
            audit.record(
                self.session,
                actor=self.actor,
                action="campaign.create",
                target_type="campaign",
                target_id=campaign_id,
                after={
                    "name": campaign.name,
                    "currency": campaign.currency,
                    "start_date": campaign.start_date.isoformat(),
                    "end_date": campaign.end_date.isoformat(),
                    "from_import": self.import_id,
                },
            )

    def _reject_combos(
        self, frame: pd.DataFrame, inverse: npt.NDArray[np.intp], matches: list[_Match]
    ) -> npt.NDArray[np.bool_]:
        bad = np.zeros(len(frame), dtype=bool)
        codes = np.array([m.code for m in matches], dtype=object)
        rows = frame["row"].to_numpy()
        for code in sorted(set(codes) - {""}):
            index = np.flatnonzero((codes == code)[inverse])
            self.report.add_rows(
                Level.ERROR,
                code,
                rows[index],
                _error_of(matches, inverse[index]),
                column=self._column_of(code),
            )
            bad[index] = True
        return bad

    def _column_of(self, code: str) -> str | None:
        layout = self.reader.layout
        if code == "currency_mismatch":
            return layout.column_name("currency") or layout.column_name("spend")
        return layout.column_name("campaign") or layout.column_name("campaign_id")

    def _warn_outside_period(
        self, frame: pd.DataFrame, bad: npt.NDArray[np.bool_]
    ) -> None:
        ids = frame["campaign_id"].to_numpy()
        days = frame["day"].to_numpy(dtype="datetime64[D]")
        codes, uniques = pd.factorize(ids)
        periods = [self.campaigns.by_id.get(int(c)) for c in uniques]
        starts = np.array(
            [np.datetime64(p.start) if p else np.datetime64("NaT") for p in periods],
            dtype="datetime64[D]",
        )[codes]
        ends = np.array(
            [np.datetime64(p.end) if p else np.datetime64("NaT") for p in periods],
            dtype="datetime64[D]",
        )[codes]
        # Campaigns created from this file take its period: never outside it.
        checked = ~bad & (ids > 0) & ~np.isin(ids, list(self.created))
        outside = ((days < starts) | (days > ends)) & checked
        index = np.flatnonzero(outside)
        self.report.add_rows(
            Level.WARNING,
            "outside_period",
            frame["row"].to_numpy()[index],
            lambda j: (
                f"{days[index[j]]} is outside the campaign's period "
                f"({starts[index[j]]} to {ends[index[j]]})"
            ),
            column=self.reader.layout.column_name("day"),
        )

    def _duplicates(
        self, frame: pd.DataFrame, bad: npt.NDArray[np.bool_]
    ) -> npt.NDArray[np.bool_]:
        """Rows repeating an earlier row's campaign, source and day (the later lose)."""
        index = np.flatnonzero(~bad)
        keys = _pack_keys(
            frame["campaign_id"].to_numpy(np.int64)[index],
            _source_index(frame["source"])[index],
            frame["day"].to_numpy(dtype="datetime64[D]")[index],
        )
        rows = frame["row"].to_numpy(np.int64)[index]
        inverse, unique, first = _distinct(keys)
        seen_before = self.seen.first_rows(unique)
        earlier = seen_before[inverse]
        earlier = np.where(earlier > 0, earlier, rows[first[inverse]])
        repeated = np.flatnonzero(earlier != rows)

        def message(j: int) -> str:
            at = int(index[repeated[j]])
            name, source, day = (
                frame[c].iat[at] for c in ("campaign", "source", "day")
            )
            return (
                f"{name or 'the campaign'} on {source}, {day.date()} is already "
                f"in row {earlier[repeated[j]]}"
            )

        self.report.add_rows(
            Level.ERROR,
            "duplicate_row",
            rows[repeated],
            message,
            column=self.reader.layout.column_name("day"),
        )
        new = seen_before == 0
        self.seen.add(unique[new], rows[first[new]])
        duplicate = np.zeros(len(frame), dtype=bool)
        duplicate[index[repeated]] = True
        return duplicate

    # -- writing

    def _store(self, frame: pd.DataFrame) -> None:
        if frame.empty:
            return
        self.valid_rows += len(frame)
        rows = frame[list(KPI_WRITE_COLUMNS)]
        if not self.write:
            existing = count_existing(self.session, rows.loc[rows["campaign_id"] > 0])
            self.updated += existing
            self.inserted += len(rows) - existing
            return
        if self.report.error_count and not self.options.keep_valid:
            return  # the file will be rejected: writing more is wasted work
        # Keys are unique: _duplicates rejected every repeat in the file.
        inserted, updated = _write(self.session, *_writable(rows), self.import_id)
        self.inserted += inserted
        self.updated += updated

    def _keep_preview(self, frame: pd.DataFrame) -> None:
        room = PREVIEW_ROWS - len(self.preview)
        if room <= 0 or frame.empty:
            return
        for row in frame.head(room).itertuples(index=False):
            self.preview.append(
                {
                    "row": int(row.row),
                    "campaign": row.campaign,
                    "campaign_id": int(row.campaign_id)
                    if row.campaign_id > 0
                    else None,
                    "source": row.source,
                    "day": row.day.date(),
                    "currency": row.currency if isinstance(row.currency, str) else None,
                    **{name: _plain(getattr(row, name)) for name in FACT_COLUMNS},
                }
            )


def _plain(value: Any) -> float | int | None:
    if value is None or value != value:
        return None
    plain = value.item() if hasattr(value, "item") else value
    return plain if isinstance(plain, int | float) else None


# -- use cases --------------------------------------------------------------------


def file_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _identical_import(session: Session, sha256: str) -> Import | None:
    query = (
        select(Import)
        .where(Import.sha256 == sha256, col(Import.status).in_(["imported", "partial"]))
        .order_by(col(Import.id).desc())
    )
    return session.exec(query).first()


def _say_identical(
    summary: ImportSummary, report: QualityReport, earlier: Import
) -> None:
    summary.identical_to = earlier.id
    report.add(
        Level.WARNING,
        "identical_file",
        f"this file is identical to import {earlier.id} of "
        f"{earlier.created_at:%Y-%m-%d %H:%M} UTC; its rows are written again "
        "(updated in place, nothing is duplicated)",
    )


def _valid_options(options: ImportOptions) -> ImportOptions:
    if options.format is not None and options.format not in importers.FORMATS:
        raise ValidationFailed(
            f"format: '{options.format}' is not one of {', '.join(importers.FORMATS)}."
        )
    if options.currency is None:
        return options
    currency = options.currency.strip().upper()
    if not importers.ISO_CURRENCY.match(currency):
        raise ValidationFailed(
            f"currency: '{options.currency}' is not a three-letter code such as EUR."
        )
    return replace(options, currency=currency)


def preview_file(
    session: Session,
    *,
    actor: Actor,
    file_name: str,
    data: bytes,
    options: ImportOptions | None = None,
    today: date | None = None,
) -> ImportSummary:
    """Everything an import would do, without writing: the report and first rows."""
    require(actor, Action.CREATE)
    options = _valid_options(options or ImportOptions())
    summary = ImportSummary(file_name, file_digest(data), options.format, "preview")
    try:
        run = _prepared_run(
            session,
            actor=actor,
            summary=summary,
            data=data,
            options=options,
            today=today or utcnow().date(),
        )
        run.execute()
    except ImportRejected as exc:
        _file_refused(summary, exc)
        return summary
    _summarise(summary, run)
    return summary


def import_file(
    session: Session,
    *,
    actor: Actor,
    file_name: str,
    data: bytes,
    options: ImportOptions | None = None,
    today: date | None = None,
    progress: Progress | None = None,
) -> ImportSummary:
    """Import one export in the session's transaction; the caller commits.

    A file with errors writes no KPI rows unless options.keep_valid; it is
    still recorded (status "rejected") with its report. progress(done, total)
    is called after each chunk of rows.
    """
    require(actor, Action.CREATE)
    options = _valid_options(options or ImportOptions())
    started = time.perf_counter()
    summary = ImportSummary(file_name, file_digest(data), options.format, "rejected")
    # The record exists first: the KPI rows written point to it.
    record = Import(
        file_name=file_name[:500],
        format=options.format or "unknown",
        sha256=summary.sha256,
        user_id=actor.id,
        status="running",
    )
    session.add(record)
    session.flush()

    savepoint = session.begin_nested()
    try:
        run = _prepared_run(
            session,
            actor=actor,
            summary=summary,
            data=data,
            options=options,
            today=today or utcnow().date(),
            import_id=record.id,
            progress=progress,
        )
        run.execute()
    except ImportRejected as exc:
        savepoint.rollback()
        _file_refused(summary, exc)
    except BaseException:
        savepoint.rollback()
        raise
    else:
        (savepoint.commit if run.accepted else savepoint.rollback)()
        _summarise(summary, run)

    summary.seconds = round(time.perf_counter() - started, 3)
    _record(session, record, summary, actor)
    return summary


def _prepared_run(
    session: Session,
    *,
    actor: Actor,
    summary: ImportSummary,
    data: bytes,
    options: ImportOptions,
    today: date,
    import_id: int | None = None,
    progress: Progress | None = None,
) -> _ImportRun:
    """The run over a file whose layout is known (refused files raise here)."""
    reader = ExportReader(
        data, file_name=summary.file_name, format=options.format, today=today
    )
    run = _ImportRun(
        session,
        actor=actor,
        reader=reader,
        options=options,
        today=today,
        import_id=import_id,
        progress=progress,
    )
    earlier = _identical_import(session, summary.sha256)
    if earlier is not None:
        _say_identical(summary, run.report, earlier)
    return run


def _file_refused(summary: ImportSummary, exc: ImportRejected) -> None:
    summary.status = "rejected"
    report = QualityReport(summary.file_name)
    report.add(
        Level.ERROR, "file_refused", str(exc).removeprefix(f"{summary.file_name}: ")
    )
    summary.report = report.to_dict()


def _summarise(summary: ImportSummary, run: _ImportRun) -> None:
    run.report.finish()
    summary.format = run.reader.format
    summary.rows_read = run.report.rows_read
    summary.skipped = run.report.rows_skipped
    summary.rejected = run.report.rows_rejected
    summary.unknown_campaigns = list(run.unknown.values())
    summary.preview = run.preview
    summary.report = run.report.to_dict()
    summary.accepted = run.accepted
    if summary.status == "preview":
        summary.inserted, summary.updated = run.inserted, run.updated
        return
    if not run.accepted:
        summary.status = "rejected"
        for entry in summary.unknown_campaigns:
            entry.created_id = None  # rolled back with the rows
        return
    summary.status = "partial" if run.report.error_count else "imported"
    summary.inserted, summary.updated = run.inserted, run.updated


def _record(
    session: Session, record: Import, summary: ImportSummary, actor: Actor
) -> None:
    summary.import_id = record.id
    record.format = summary.format or "unknown"
    record.status = summary.status
    record.rows_read = summary.rows_read
    record.rows_inserted = summary.inserted
    record.rows_updated = summary.updated
    record.rows_rejected = summary.rejected
    record.report = {
        **summary.report,
        "identical_to": summary.identical_to,
        "seconds": summary.seconds,
        "unknown_campaigns": [
            {
                **asdict(u),
                "first_day": u.first_day.isoformat(),
                "last_day": u.last_day.isoformat(),
            }
            for u in summary.unknown_campaigns
        ],
    }
    audit.record(
        session,
        actor=actor,
        action="import.kpis",
        target_type="import",
        target_id=record.id,
        after={
            "file_name": summary.file_name,
            "sha256": summary.sha256,
            "format": summary.format,
            "status": summary.status,
            "rows_read": summary.rows_read,
            "inserted": summary.inserted,
            "updated": summary.updated,
            "rejected": summary.rejected,
        },
    )
    logger.info(
        "import %s of %s: %s, %s read, %s inserted, %s updated, %s rejected in %.1f s",
        record.id,
        summary.file_name,
        summary.status,
        summary.rows_read,
        summary.inserted,
        summary.updated,
        summary.rejected,
        summary.seconds,
    )


def format_labels() -> dict[str, str]:
    """Format names and how people call them, in the order to offer them."""
    return {name: importers.SPECS[name].label for name in importers.FORMATS}


# -- history --------------------------------------------------------------------

HISTORY_COLUMNS = (
    "id",
    "created_at",
    "file_name",
    "format",
    "user",
    "status",
    "rows_read",
    "rows_inserted",
    "rows_updated",
    "rows_rejected",
    "sha256",
)


def list_imports(
    session: Session, *, actor: Actor, limit: int = HISTORY_ROWS
) -> pd.DataFrame:
    """The latest imports, newest first, without their reports."""
    require(actor, Action.CREATE)
    query = (
        select(Import, User.username)
        .join(User, col(User.id) == Import.user_id, isouter=True)
        .order_by(col(Import.id).desc())
        .limit(limit)
    )
    records = [
        {
            "id": row.id,
            "created_at": row.created_at,
            "file_name": row.file_name,
            "format": row.format,
            "user": username or "",
            "status": row.status,
            "rows_read": row.rows_read,
            "rows_inserted": row.rows_inserted,
            "rows_updated": row.rows_updated,
            "rows_rejected": row.rows_rejected,
            "sha256": row.sha256,
        }
        for row, username in session.exec(query).all()
    ]
    return pd.DataFrame(records, columns=list(HISTORY_COLUMNS))


def import_report(session: Session, *, actor: Actor, import_id: int) -> dict[str, Any]:
    """The stored data-quality report of one import."""
    require(actor, Action.CREATE)
    record = session.get(Import, import_id)
    if record is None:
        raise NotFound(f"Import {import_id} does not exist.")
    return dict(record.report or {})
