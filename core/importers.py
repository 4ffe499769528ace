"""Platform exports -> normalised daily KPI facts, with a data-quality report.

Pure: bytes in, pandas frames and a report out. No database and no clock (the
caller passes today's date). One parser per format (``google_ads``, ``meta``,
``tiktok``, ``internal``), each for CSV and XLSX; the format is detected from
the header row when it is not given. Files are read in chunks, so memory
stays bounded whatever the file's length.

Only raw counts leave this module. Ratios in the files (CTR, CPC, TikTok's
per-impression "CVR", ...) are dropped: the metric catalogue derives them.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from core.errors import ImportRejected
from core.models import Source

# Rows per chunk: large enough that per-chunk overhead vanishes, small enough
# that a chunk's working copies stay in the tens of megabytes.
CHUNK_ROWS = 100_000
# Exports put a title, a date range and blank lines above the header.
HEADER_SEARCH_ROWS = 50
SNIFF_BYTES = 256 * 1024
DELIMITERS = ("\t", ",", ";")
# A broken million-row file must not produce a million messages: each level
# lists this many and counts the rest.
MAX_LISTED_ISSUES = 500
# Counts above this lose precision as floats (and no campaign gets near it).
MAX_COUNT = 2**53

FORMATS: tuple[str, ...] = ("google_ads", "meta", "tiktok", "internal")

NORMALISED_COLUMNS: tuple[str, ...] = (
    "row",
    "campaign",
    "campaign_id",
    "currency",
    "source",
    "day",
    "impressions",
    "clicks",
    "spend",
    "conversions",
    "revenue",
    "eligible_impressions",
    "budget",
)

TEXT_FIELDS = frozenset(
    {
        "day",
        "campaign",
        "campaign_id",
        "currency",
        "source",
        "reporting_starts",
        "reporting_ends",
        "result_indicator",
    }
)
MONEY_FIELDS = frozenset({"spend", "revenue", "budget"})
SHARE_FIELD = "impression_share"

EMPTY_MARKERS = frozenset({"", "--", "-", "—", "–", "n/a"})
RATIO_NOTE = "ratios are computed from the counts, never taken from the file"
# Meta's "Results" count whatever the campaign optimised for; only these are ours.
CONVERSION_INDICATOR = re.compile(r"purchase|conversion", re.IGNORECASE)
CURRENCY_SUFFIX = re.compile(r"^(.*\S)\s*\(([a-z]{3})\)$")
ISO_CURRENCY = re.compile(r"^[A-Z]{3}$")


class Level(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


# -- the data-quality report --------------------------------------------------


@dataclass(frozen=True)
class Issue:
    """One finding about a file, located by row and column where it has one."""

    level: Level
    code: str
    file: str
    row: int | None
    column: str | None
    message: str

    def __str__(self) -> str:
        where = [self.file]
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column '{self.column}'")
        return f"{', '.join(where)}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "level": self.level.value,
            "code": self.code,
            "file": self.file,
            "row": self.row,
            "column": self.column,
            "message": self.message,
        }


@dataclass
class _Note:
    """A repeated, harmless finding reported once with its count."""

    level: Level
    column: str | None
    text: str
    first_row: int
    count: int = 0


class QualityReport:
    """What reading one file found: counts of rows, and the issues row by row."""

    def __init__(self, file_name: str) -> None:
        self.file_name = file_name
        self.issues: list[Issue] = []
        self.counts: Counter[str] = Counter()
        self.unlisted: Counter[str] = Counter()
        self.rows_read = 0
        self.rows_rejected = 0
        self.rows_skipped = 0
        self._notes: dict[tuple[str, str | None], _Note] = {}

    def add(
        self,
        level: Level,
        code: str,
        message: str,
        *,
        row: int | None = None,
        column: str | None = None,
    ) -> None:
        self.counts[level.value] += 1
        if self._listed(level) >= MAX_LISTED_ISSUES:
            self.unlisted[level.value] += 1
            return
        self.issues.append(Issue(level, code, self.file_name, row, column, message))

    def add_rows(
        self,
        level: Level,
        code: str,
        rows: npt.NDArray[np.int64],
        message: Callable[[int], str],
        *,
        column: str | None = None,
    ) -> None:
        """One issue per row; message(k) words the k-th. Only the listed are built."""
        room = max(MAX_LISTED_ISSUES - self._listed(level), 0)
        for k in range(min(len(rows), room)):
            self.issues.append(
                Issue(level, code, self.file_name, int(rows[k]), column, message(k))
            )
        self.counts[level.value] += len(rows)
        if len(rows) > room:
            self.unlisted[level.value] += len(rows) - room

    def note(
        self,
        level: Level,
        code: str,
        rows: npt.NDArray[np.int64],
        text: str,
        *,
        column: str | None = None,
    ) -> None:
        """Count a repeated finding; finish() turns it into one issue."""
        if len(rows) == 0:
            return
        key = (code, column)
        if key not in self._notes:
            self._notes[key] = _Note(level, column, text, int(rows[0]))
        self._notes[key].count += len(rows)

    def finish(self) -> None:
        """Turn notes into issues and order the issues by row (file-wide first)."""
        for (code, _), note in self._notes.items():
            rows = "row" if note.count == 1 else f"{note.count} rows, first"
            self.add(
                note.level,
                code,
                f"{note.text} ({rows} at row {note.first_row})",
                row=note.first_row,
                column=note.column,
            )
        self._notes.clear()
        self.issues.sort(key=lambda i: -1 if i.row is None else i.row)

    def _listed(self, level: Level) -> int:
        return self.counts[level.value] - self.unlisted[level.value]

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.level is Level.ERROR]

    @property
    def warnings(self) -> list[Issue]:
        return [i for i in self.issues if i.level is Level.WARNING]

    @property
    def error_count(self) -> int:
        return self.counts[Level.ERROR.value]

    @property
    def warning_count(self) -> int:
        return self.counts[Level.WARNING.value]

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file_name,
            "rows_read": self.rows_read,
            "rows_rejected": self.rows_rejected,
            "rows_skipped": self.rows_skipped,
            "errors": self.error_count,
            "warnings": self.warning_count,
            "unlisted": dict(self.unlisted),
            "issues": [i.to_dict() for i in self.issues],
        }


# -- formats ------------------------------------------------------------------


@dataclass(frozen=True)
class FormatSpec:
    """How one platform names its columns (headers are compared normalised)."""

    name: str
    label: str
    source: Source
    # field -> accepted header names, preferred first
    aliases: dict[str, tuple[str, ...]]
    # each group needs at least one of its fields
    required: tuple[tuple[str, ...], ...]
    # headers dropped on purpose, with the reason shown to the user
    ignored: dict[str, str] = field(default_factory=dict)


_RATIO_HEADERS = (
    "ctr",
    "avg. cpc",
    "avg. cpm",
    "cpc",
    "cpm",
    "conv. rate",
    "conversion rate",
    "cost / conv.",
    "cost per conversion",
    "roas",
)
_COMMON_REQUIRED: tuple[tuple[str, ...], ...] = (
    ("campaign", "campaign_id"),
    ("impressions",),
    ("clicks",),
    ("spend",),
)

SPECS: dict[str, FormatSpec] = {
    spec.name: spec
    for spec in (
        FormatSpec(
            name="google_ads",
            label="Google Ads",
            source=Source.GOOGLE_ADS,
            aliases={
                "day": ("day", "date"),
                "campaign": ("campaign", "campaign name"),
                "campaign_id": ("campaign id",),
                "currency": ("currency code", "currency"),
                "impressions": ("impr.", "impressions"),
                "clicks": ("clicks",),
                "spend": ("cost",),
                "conversions": ("conversions",),
                "revenue": ("conv. value", "conversion value"),
                SHARE_FIELD: (
                    "search impr. share",
                    "impr. share",
                    "search impression share",
                    "impression share",
                ),
                "budget": ("budget", "daily budget"),
            },
            required=(("day",), *_COMMON_REQUIRED),
            ignored=dict.fromkeys(_RATIO_HEADERS, RATIO_NOTE),
        ),
        FormatSpec(
            name="meta",
            label="Meta Ads Manager",
            source=Source.META,
            aliases={
                "day": ("day",),
                "reporting_starts": ("reporting starts",),
                "reporting_ends": ("reporting ends",),
                "campaign": ("campaign name",),
                "campaign_id": ("campaign id",),
                "currency": ("currency",),
                "impressions": ("impressions",),
                "clicks": ("link clicks",),
                "spend": ("amount spent",),
                "results": ("results",),
                "result_indicator": ("result indicator", "result type"),
                "purchases": ("purchases", "website purchases"),
                "revenue": (
                    "purchases conversion value",
                    "website purchases conversion value",
                    "purchase conversion value",
                ),
            },
            required=(("day", "reporting_starts"), *_COMMON_REQUIRED),
            ignored={
                **dict.fromkeys(_RATIO_HEADERS, RATIO_NOTE),
                "clicks (all)": "link clicks are the clicks counted here",
                "ctr (link click-through rate)": RATIO_NOTE,
                "cpc (cost per link click)": RATIO_NOTE,
                "cost per result": RATIO_NOTE,
            },
        ),
        FormatSpec(
            name="tiktok",
            label="TikTok Ads Manager",
            source=Source.TIKTOK,
            aliases={
                "day": ("date", "day", "by day"),
                "campaign": ("campaign name",),
                "campaign_id": ("campaign id",),
                "currency": ("currency",),
                "impressions": ("impressions", "impression"),
                "clicks": ("clicks (destination)", "destination clicks"),
                "spend": ("cost", "total cost"),
                "conversions": ("conversions",),
                "revenue": ("total purchase value", "purchase value"),
            },
            required=(("day",), *_COMMON_REQUIRED),
            ignored={
                **dict.fromkeys(_RATIO_HEADERS, RATIO_NOTE),
                "cvr": "TikTok's CVR is conversions per impression, not per click; "
                "the conversion rate is computed from clicks and conversions",
                "ctr (destination)": RATIO_NOTE,
                "cpc (destination)": RATIO_NOTE,
                "clicks (all)": "destination clicks are the clicks counted here",
            },
        ),
        FormatSpec(
            name="internal",
            label="Internal CSV",
            source=Source.INTERNAL,
            aliases={
                "campaign": ("campaign",),
                "campaign_id": ("campaign_id",),
                "day": ("day",),
                "source": ("source",),
                "currency": ("currency",),
                "impressions": ("impressions",),
                "clicks": ("clicks",),
                "spend": ("spend",),
                "conversions": ("conversions",),
                "revenue": ("revenue",),
                "eligible_impressions": ("eligible_impressions",),
                SHARE_FIELD: ("impression_share",),
                "budget": ("budget",),
            },
            required=(("day",), *_COMMON_REQUIRED),
        ),
    )
}


@dataclass(frozen=True)
class Layout:
    """Where the data sits in a file and what each used column means."""

    format: str
    kind: str  # "csv" or "xlsx"
    encoding: str | None
    delimiter: str | None
    sheet: int | None
    header_row: int  # 1-based, as a spreadsheet numbers rows
    header: tuple[str, ...]
    columns: dict[str, int]  # field -> position
    header_currency: str | None
    ignored: tuple[str, ...]

    @property
    def spec(self) -> FormatSpec:
        return SPECS[self.format]

    @property
    def decimal_comma(self) -> bool:
        # Excel writes ";"-separated CSV exactly where "," is the decimal mark.
        return self.delimiter == ";"

    def column_name(self, name: str) -> str | None:
        """The header of a field as the file writes it."""
        position = self.columns.get(name)
        return None if position is None else self.header[position]


@dataclass(frozen=True)
class _HeaderMatch:
    columns: dict[str, int]
    currencies: dict[str, str]  # money field -> code from its header
    score: int
    missing: tuple[str, ...]


def normalise_header(cell: object) -> str:
    text = unicodedata.normalize("NFKC", "" if cell is None else str(cell))
    return " ".join(text.replace("\ufeff", "").split()).casefold()


def _field_of(header: str, spec: FormatSpec) -> tuple[str, int, str | None] | None:
    """(field, alias rank, currency) for one normalised header, or None."""
    for name, aliases in spec.aliases.items():
        if header in aliases:
            return name, aliases.index(header), None
    suffix = CURRENCY_SUFFIX.match(header)
    if suffix is None:
        return None
    base, code = suffix.groups()
    for name in MONEY_FIELDS & spec.aliases.keys():
        if base in spec.aliases[name]:
            return name, spec.aliases[name].index(base), code.upper()
    return None


def match_header(cells: Sequence[object], spec: FormatSpec) -> _HeaderMatch:
    """Map header cells to fields; a field named twice takes its preferred alias."""
    best: dict[str, tuple[int, int]] = {}  # field -> (rank, position)
    currencies: dict[str, str] = {}
    known = 0
    for position, cell in enumerate(cells):
        header = normalise_header(cell)
        found = _field_of(header, spec)
        if found is None:
            known += header in spec.ignored
            continue
        name, rank, code = found
        known += 1
        if name not in best or rank < best[name][0]:
            best[name] = (rank, position)
            if code:
                currencies[name] = code
    columns = {name: position for name, (_, position) in best.items()}
    missing = tuple(
        " or ".join(spec.aliases[f][0] for f in group)
        for group in spec.required
        if not any(f in columns for f in group)
    )
    return _HeaderMatch(columns, currencies, known, missing)


# -- sniffing: encoding, delimiter, header row and format ----------------------


def detect_encoding(data: bytes) -> str:
    """UTF-8 with or without BOM, or UTF-16 (BOM, or NUL bytes in ASCII text)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    if data.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    head = data[:4096]
    if head and head.count(b"\x00") > len(head) // 4:
        odd_zero = head[1::2].count(b"\x00") > head[0::2].count(b"\x00")
        return "utf-16-le" if odd_zero else "utf-16-be"
    return "utf-8"


def is_xlsx(data: bytes) -> bool:
    return data.startswith(b"PK\x03\x04")


def _head_lines(data: bytes, encoding: str) -> list[str]:
    chunk = data[:SNIFF_BYTES]
    if encoding.startswith("utf-16") and len(chunk) % 2:
        chunk = chunk[:-1]
    text = chunk.decode(encoding, errors="replace")
    lines = re.split(r"\r\n|\n|\r", text)
    if len(data) > SNIFF_BYTES:
        lines = lines[:-1]  # the last one may be cut
    return lines[:HEADER_SEARCH_ROWS]


def _split_line(line: str, delimiter: str) -> list[str]:
    return next(csv.reader([line], delimiter=delimiter), [])


@dataclass(frozen=True)
class _Found:
    """A header row some format recognises."""

    index: int  # 0-based row
    cells: Sequence[object]
    delimiter: str | None
    spec: FormatSpec
    match: _HeaderMatch


def _best_header(
    file_name: str,
    candidates: Iterator[tuple[int, Sequence[object], str | None]],
    specs: Sequence[FormatSpec],
) -> _Found | None:
    """The first row some format fully recognises, read by the best format."""
    found: list[_Found] = []
    for index, cells, delimiter in candidates:
        if found and index != found[0].index:
            break
        for spec in specs:
            match = match_header(cells, spec)
            if not match.missing:
                found.append(_Found(index, cells, delimiter, spec, match))
    if not found:
        return None
    top = max(f.match.score for f in found)
    names = sorted({f.spec.name for f in found if f.match.score == top})
    if len(names) > 1:
        raise ImportRejected(
            f"{file_name}: the header row fits more than one format "
            f"({', '.join(names)}); choose the format."
        )
    return next(f for f in found if f.match.score == top)


def _no_header_message(
    file_name: str, rows: Sequence[Sequence[object]], specs: Sequence[FormatSpec]
) -> str:
    if len(specs) == 1:
        spec = specs[0]
        closest = min(
            (match_header(cells, spec) for cells in rows if cells),
            key=lambda m: len(m.missing),
            default=None,
        )
        missing = closest.missing if closest else ()
        return (
            f"{file_name}: no {spec.label} header row in the first "
            f"{HEADER_SEARCH_ROWS} rows; missing columns: {', '.join(missing)}."
        )
    expected = "; ".join(
        f"{s.label}: {', '.join(s.aliases[g[0]][0] for g in s.required)}" for s in specs
    )
    return (
        f"{file_name}: no known header row in the first {HEADER_SEARCH_ROWS} rows. "
        f"Expected columns: {expected}."
    )


def _specs_for(format: str | None) -> list[FormatSpec]:
    if format is None:
        return list(SPECS.values())
    if format not in SPECS:
        raise ImportRejected(
            f"Unknown format '{format}'; choose one of {', '.join(FORMATS)}."
        )
    return [SPECS[format]]


def _header_currency(file_name: str, matched: _HeaderMatch) -> str | None:
    codes = set(matched.currencies.values())
    if len(codes) > 1:
        raise ImportRejected(
            f"{file_name}: the headers name more than one currency "
            f"({', '.join(sorted(codes))}); one file must use one currency."
        )
    return codes.pop() if codes else None


def _layout(file_name: str, found: _Found, **where: Any) -> Layout:
    header = tuple(
        "" if c is None else str(c).replace("\ufeff", "").strip() for c in found.cells
    )
    used = set(found.match.columns.values())
    return Layout(
        format=found.spec.name,
        header_row=found.index + 1,
        header=header,
        columns=found.match.columns,
        header_currency=_header_currency(file_name, found.match),
        ignored=tuple(h for p, h in enumerate(header) if p not in used and h),
        **where,
    )


def sniff_csv(data: bytes, *, file_name: str, format: str | None = None) -> Layout:
    specs = _specs_for(format)
    encoding = detect_encoding(data)
    lines = _head_lines(data, encoding)

    def candidates() -> Iterator[tuple[int, Sequence[object], str | None]]:
        for index, line in enumerate(lines):
            for delimiter in DELIMITERS:
                if delimiter in line:
                    yield index, _split_line(line, delimiter), delimiter

    found = _best_header(file_name, candidates(), specs)
    if found is None:
        rows = [_split_line(line, d) for line in lines for d in DELIMITERS]
        raise ImportRejected(_no_header_message(file_name, rows, specs))
    return _layout(
        file_name,
        found,
        kind="csv",
        encoding=encoding,
        delimiter=found.delimiter,
        sheet=None,
    )


def _open_workbook(data: bytes, file_name: str) -> Any:
    import openpyxl  # loaded only for spreadsheets: it is slow to import

    try:
        return openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a damaged file
        raise ImportRejected(
            f"{file_name}: not a readable XLSX workbook ({exc})."
        ) from exc


def sniff_xlsx(data: bytes, *, file_name: str, format: str | None = None) -> Layout:
    specs = _specs_for(format)
    workbook = _open_workbook(data, file_name)
    try:
        seen: list[Sequence[object]] = []
        for sheet, worksheet in enumerate(workbook.worksheets):
            head = list(
                worksheet.iter_rows(max_row=HEADER_SEARCH_ROWS, values_only=True)
            )
            seen.extend(head)
            rows = ((i, r, None) for i, r in enumerate(head))
            found = _best_header(file_name, rows, specs)
            if found is not None:
                return _layout(
                    file_name,
                    found,
                    kind="xlsx",
                    encoding=None,
                    delimiter=None,
                    sheet=sheet,
                )
    finally:
        workbook.close()
    raise ImportRejected(_no_header_message(file_name, seen, specs))


def sniff(data: bytes, *, file_name: str, format: str | None = None) -> Layout:
    """Find the format, header row and columns of an export, or refuse the file."""
    if not data[:SNIFF_BYTES].strip(b" \t\r\n\x00\xef\xbb\xbf\xfe\xff"):
        raise ImportRejected(f"{file_name}: the file is empty.")
    if data.startswith(b"\xd0\xcf\x11\xe0"):
        raise ImportRejected(
            f"{file_name}: old Excel (.xls) files are not read; "
            "save it as .xlsx or CSV."
        )
    if is_xlsx(data):
        return sniff_xlsx(data, file_name=file_name, format=format)
    return sniff_csv(data, file_name=file_name, format=format)


# -- reading rows ----------------------------------------------------------------

_BAD_LINE = re.compile(r"Skipping line (\d+): expected (\d+) fields, saw (\d+)")


def _numeric_positions(layout: Layout) -> set[int]:
    return {p for name, p in layout.columns.items() if name not in TEXT_FIELDS}


def _csv_reader(data: bytes, layout: Layout, chunk_rows: int) -> Any:
    width = len(layout.header)
    numeric = _numeric_positions(layout)
    encoding = "utf-8-sig" if layout.encoding == "utf-8" else layout.encoding
    return pd.read_csv(
        io.BytesIO(data),
        sep=layout.delimiter,
        header=None,
        names=list(range(width)),
        index_col=False,
        skiprows=layout.header_row,
        # Text stays text ("NA" is a name, ids keep leading zeros); numbers are
        # inferred, with the platforms' empty markers read as missing.
        dtype={p: object for p in range(width) if p not in numeric},
        decimal="," if layout.decimal_comma else ".",
        thousands="." if layout.decimal_comma else None,
        keep_default_na=False,
        na_values={p: ["", "--"] for p in numeric},
        skip_blank_lines=False,
        chunksize=chunk_rows,
        on_bad_lines="warn",
        encoding=encoding,
    )


def _line_numbers(first: int, count: int, skipped: list[int]) -> npt.NDArray[np.int64]:
    """File lines of `count` parsed rows from the first-th, over skipped lines.

    Each row moves down by one for every skipped line at or above where it
    has got to, so a chunk is numbered alone, knowing only the skipped lines.
    """
    lines = np.arange(first, first + count, dtype=np.int64)
    for line in sorted(skipped):
        lines[lines >= line] += 1
    return lines


def _csv_chunks(
    data: bytes, layout: Layout, report: QualityReport, chunk_rows: int
) -> Iterator[tuple[pd.DataFrame, npt.NDArray[np.int64]]]:
    skipped: list[int] = []
    parsed = 0
    try:
        reader = _csv_reader(data, layout, chunk_rows)
        while True:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    raw = next(reader)
                except StopIteration:
                    break
            skipped.extend(_bad_lines(caught, report))
            first = layout.header_row + 1 + parsed
            yield raw, _line_numbers(first, len(raw), skipped)
            parsed += len(raw)
    except UnicodeDecodeError as exc:
        raise ImportRejected(
            f"{report.file_name}: not UTF-8 or UTF-16 text ({exc.reason} at byte "
            f"{exc.start}); save it as 'CSV UTF-8'."
        ) from exc
    except pd.errors.ParserError as exc:
        raise ImportRejected(f"{report.file_name}: unreadable CSV ({exc}).") from exc


def _bad_lines(
    caught: list[warnings.WarningMessage], report: QualityReport
) -> list[int]:
    """Rows pandas skipped for having too many fields, as errors."""
    lines: list[int] = []
    for warning in caught:
        for match in _BAD_LINE.finditer(str(warning.message)):
            line, expected, seen = (int(g) for g in match.groups())
            lines.append(line)
            report.add(
                Level.ERROR,
                "field_count",
                f"the row has {seen} fields but the header has {expected}; "
                "a value probably contains an unquoted delimiter",
                row=line,
            )
    report.rows_read += len(lines)
    report.rows_rejected += len(lines)
    return lines


def _xlsx_chunks(
    data: bytes, layout: Layout, report: QualityReport, chunk_rows: int
) -> Iterator[tuple[pd.DataFrame, npt.NDArray[np.int64]]]:
    width = len(layout.header)
    workbook = _open_workbook(data, report.file_name)
    try:
        sheet = workbook.worksheets[layout.sheet or 0]
        buffer: list[tuple[object, ...]] = []
        first = layout.header_row + 1
        for values in sheet.iter_rows(min_row=first, values_only=True):
            buffer.append(tuple(values[:width]) + (None,) * (width - len(values)))
            if len(buffer) == chunk_rows:
                yield _xlsx_frame(buffer, width, first)
                first += len(buffer)
                buffer = []
        if buffer:
            yield _xlsx_frame(buffer, width, first)
    finally:
        workbook.close()


def _xlsx_frame(
    buffer: list[tuple[object, ...]], width: int, first: int
) -> tuple[pd.DataFrame, npt.NDArray[np.int64]]:
    frame = pd.DataFrame(buffer, columns=list(range(width)), dtype=object)
    return frame, np.arange(first, first + len(buffer), dtype=np.int64)


# -- cell values ---------------------------------------------------------------------

_GROUP_SPACE = re.compile(r"(?<=\d)[\s'’](?=\d{3}(?!\d))")
_THOUSANDS_EN = re.compile(r"\d{1,3}(,\d{3})+(\.\d*)?")
_THOUSANDS_EU = re.compile(r"\d{1,3}(\.\d{3})+,\d*|\d{1,3}(\.\d{3}){2,}")
_DECIMAL_COMMA = re.compile(r"\d+,(\d{1,2}|\d{4,})")
_CURRENCY_SYMBOLS = "$€£¥₹₩₽₺"
_SLASH_DATE = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")
_DATE_FORMATS = (
    "%Y-%m-%d",
    "%Y/%m/%d",
    "%d.%m.%Y",
    "%b %d, %Y",
    "%B %d, %Y",
    "%a, %b %d, %Y",
    "%A, %B %d, %Y",
    "%d %b %Y",
    "%d %B %Y",
)

OK, EMPTY, BAD = 0, 1, 2


def _map_uniques(
    series: pd.Series, convert: Callable[[Any], Any]
) -> tuple[npt.NDArray[np.intp], list[Any]]:
    """convert() once per distinct cell: (codes, results), results[codes] per row.

    Exports repeat the same dates, names and codes on thousands of rows, so
    this keeps Python work per distinct value, not per row.
    """
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    results = [convert(u) for u in uniques]
    results.append(convert(None))  # code -1, a missing cell, takes the last
    return codes, results


def _take(results: list[Any], codes: Any, dtype: Any = object) -> npt.NDArray[Any]:
    """results[codes] as an array (element by element: results may be tuples)."""
    table = np.empty(len(results), dtype=dtype)
    for i, value in enumerate(results):
        table[i] = value
    taken: npt.NDArray[Any] = table[codes]
    return taken


def clean_text(value: object) -> str | None:
    """A cell as trimmed NFC text; numbers as written (ids read from XLSX)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = unicodedata.normalize("NFC", str(value)).strip()
    return text or None


def parse_day(value: object) -> date | str | None:
    """A date, None when empty, or the reason it is not a date."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = clean_text(value)
    if text is None:
        return None
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2})?", text):
        text = text[:10]
    for pattern in _DATE_FORMATS:
        try:
            return datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    return _parse_slash_date(text)


def _parse_slash_date(text: str) -> date | str:
    match = _SLASH_DATE.fullmatch(text)
    invalid = f"'{text}' is not a date; write dates as YYYY-MM-DD"
    if match is None:
        return invalid
    first, second, year = (int(g) for g in match.groups())
    if first <= 12 and second <= 12 and first != second:
        return f"'{text}' could be day/month or month/day; write dates as YYYY-MM-DD"
    month, day = (first, second) if first <= 12 else (second, first)
    try:
        return date(year, month, day)
    except ValueError:
        return invalid


def parse_number(
    value: object, *, decimal_comma: bool = False
) -> tuple[int, float, bool, int]:
    """(status, value, is_percent, bound) of a cell; bound: -1 for '<', 1 for '>'.

    With decimal_comma (semicolon-separated files, as European Excel writes
    them) "1.234,5" is 1234.5 and "1.234" is 1234.
    """
    if isinstance(value, bool):
        return BAD, np.nan, False, 0
    if isinstance(value, int | float):
        return (EMPTY, np.nan, False, 0) if np.isnan(value) else (OK, value, False, 0)
    text = clean_text(value)
    if text is None or text.casefold() in EMPTY_MARKERS:
        return EMPTY, np.nan, False, 0
    text = unicodedata.normalize("NFKC", text).replace("−", "-")
    bound = {"<": -1, ">": 1}.get(text[0], 0)
    text = text[1:].strip() if bound else text
    percent = text.endswith("%")
    text = text.removesuffix("%").strip()
    sign = text[0] if text[:1] in ("-", "+") else ""
    text = text[len(sign) :].strip().strip(_CURRENCY_SYMBOLS).strip()
    text = _GROUP_SPACE.sub("", text)
    number = _decimal_comma(text) if decimal_comma else _with_plain_separators(text)
    try:
        result = float(sign + number)
    except ValueError:
        return BAD, np.nan, False, 0
    if not np.isfinite(result):
        return BAD, np.nan, False, 0
    return OK, result, percent, bound


def _decimal_comma(text: str) -> str:
    if "," in text and "." in text.split(",", 1)[1]:
        return text  # "1,234.5" is not written in this convention: refused below
    return text.replace(".", "").replace(",", ".")


def _with_plain_separators(text: str) -> str:
    """1,234.5 and 1.234,5 and 12,5 -> 1234.5, 1234.5, 12.5 (groups are 3 digits)."""
    if _THOUSANDS_EN.fullmatch(text):
        return text.replace(",", "")
    if _THOUSANDS_EU.fullmatch(text):
        return text.replace(".", "").replace(",", ".")
    if _DECIMAL_COMMA.fullmatch(text):
        return text.replace(",", ".")
    return text


@dataclass
class _Numbers:
    """A parsed column: values (NaN when empty or bad) and what each cell was."""

    values: npt.NDArray[np.float64]
    empty: npt.NDArray[np.bool_]
    bad: npt.NDArray[np.bool_]
    percent: npt.NDArray[np.bool_]
    bound: npt.NDArray[np.int8]


def parse_numbers(series: pd.Series, *, decimal_comma: bool = False) -> _Numbers:
    size = len(series)
    dtype = series.dtype
    if getattr(dtype, "kind", "O") in "iuf":
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        flags = np.zeros(size, dtype=bool)
        return _Numbers(values, np.isnan(values), flags, flags, np.zeros(size, np.int8))
    codes, results = _map_uniques(
        series, lambda v: parse_number(v, decimal_comma=decimal_comma)
    )
    status = _take([r[0] for r in results], codes, np.int8)
    return _Numbers(
        values=_take([r[1] for r in results], codes, np.float64),
        empty=status == EMPTY,
        bad=status == BAD,
        percent=_take([r[2] for r in results], codes, bool),
        bound=_take([r[3] for r in results], codes, np.int8),
    )


# -- normalising one chunk -------------------------------------------------------


def _is_empty(series: pd.Series) -> npt.NDArray[np.bool_]:
    empty: npt.NDArray[np.bool_] = series.isna().to_numpy(dtype=bool)
    if pd.api.types.is_numeric_dtype(series.dtype):
        return empty
    blank: npt.NDArray[np.bool_] = series.to_numpy(dtype=object, na_value=None) == ""
    return empty | blank


def _says_total(value: object) -> bool:
    return isinstance(value, str) and value.lstrip().casefold().startswith("total")


def _is_conversion(value: object) -> bool:
    text = clean_text(value)
    return bool(text and CONVERSION_INDICATOR.search(text))


def _categorical(codes: npt.NDArray[np.intp], results: list[Any]) -> pd.Categorical:
    """Per-row values as a categorical: cheap to build, compare and group."""
    result_codes, categories = pd.factorize(pd.Series(results, dtype=object))
    return pd.Categorical.from_codes(result_codes[codes], categories=categories)


def _constant(value: str | None, size: int) -> pd.Categorical:
    if value is None:
        return pd.Categorical.from_codes(np.full(size, -1), categories=[])
    return pd.Categorical.from_codes(np.zeros(size, dtype=np.int8), [value])


@dataclass
class _Days:
    """Parsed dates of a chunk: NaT where missing or invalid, with the reason."""

    values: npt.NDArray[np.datetime64]
    invalid: npt.NDArray[np.bool_]
    reasons: npt.NDArray[Any]

    def without(self, mask: npt.NDArray[np.bool_]) -> _Days:
        return _Days(self.values[~mask], self.invalid[~mask], self.reasons[~mask])


class _Chunk:
    """Rows of one raw chunk still in play, and which of them are rejected.

    Text columns are factorised once per chunk, so every conversion runs on
    the distinct values (a few hundred dates and names), not on every row.
    """

    def __init__(
        self, raw: pd.DataFrame, rows: npt.NDArray[np.int64], layout: Layout
    ) -> None:
        self.raw = raw
        self.layout = layout
        self.keep: npt.NDArray[np.intp] = np.arange(len(raw))
        self.rows = rows
        self.bad: npt.NDArray[np.bool_] = np.zeros(len(raw), dtype=bool)
        self._factors: dict[int, tuple[npt.NDArray[np.intp], list[Any]]] = {}

    def __len__(self) -> int:
        return len(self.keep)

    def drop(self, mask: npt.NDArray[np.bool_]) -> None:
        """Forget rows that are not data at all (blank, totals)."""
        self.keep = self.keep[~mask]
        self.rows = self.rows[~mask]
        self.bad = self.bad[~mask]

    def has(self, name: str) -> bool:
        return name in self.layout.columns

    def header(self, name: str) -> str | None:
        return self.layout.column_name(name)

    def series(
        self, position: int, index: npt.NDArray[np.intp] | None = None
    ) -> pd.Series:
        """A column's cells of the kept rows (or of some of them, by index)."""
        column = self.raw[position]
        rows = self.keep if index is None else self.keep[index]
        return column if len(rows) == len(column) else column.iloc[rows]

    def cell(self, name: str, index: int) -> object:
        return self.raw[self.layout.columns[name]].iloc[self.keep[index]]

    def convert(
        self, position: int, convert: Callable[[Any], Any]
    ) -> tuple[npt.NDArray[np.intp], list[Any]]:
        """(codes, results): convert() once per distinct cell; results[codes] per row.

        Codes are for the rows still kept.
        """
        if position not in self._factors:
            codes, uniques = pd.factorize(self.raw[position], use_na_sentinel=True)
            self._factors[position] = (codes, list(uniques))
        codes, uniques = self._factors[position]
        results = [convert(u) for u in uniques]
        results.append(convert(None))  # code -1, a missing cell, takes the last
        return codes[self.keep], results


class _Normaliser:
    """Turns raw chunks of one file into normalised facts, reporting as it goes."""

    def __init__(
        self, layout: Layout, report: QualityReport, today: date | None
    ) -> None:
        self.layout = layout
        self.report = report
        self.today = np.datetime64(today, "D") if today else None

    def __call__(self, raw: pd.DataFrame, rows: npt.NDArray[np.int64]) -> pd.DataFrame:
        chunk = _Chunk(raw, rows, self.layout)
        days = self._skip_non_data(chunk)
        self.report.rows_read += len(chunk)

        columns: dict[str, Any] = {"row": chunk.rows}
        columns.update(self._campaigns(chunk))
        columns["currency"] = self._currencies(chunk)
        columns["source"] = self._sources(chunk)
        columns["day"] = self._checked_days(chunk, days)
        columns.update(self._facts(chunk))

        rejected = int(chunk.bad.sum())
        self.report.rows_rejected += rejected
        frame = pd.DataFrame(columns, columns=list(NORMALISED_COLUMNS))
        return frame.loc[~chunk.bad].reset_index(drop=True) if rejected else frame

    # -- rows that are not data

    def _skip_non_data(self, chunk: _Chunk) -> _Days:
        """Drop blank and totals rows; returns the parsed days of the rest."""
        blank = self._blank(chunk)
        chunk.drop(blank)
        days = self._days(chunk)
        totals = self._totals(chunk) & np.isnat(days.values)
        self.report.note(
            Level.INFO, "totals_row", chunk.rows[totals], "totals row skipped"
        )
        chunk.drop(totals)
        self.report.rows_skipped += int(blank.sum() + totals.sum())
        return days.without(totals)

    def _blank(self, chunk: _Chunk) -> npt.NDArray[np.bool_]:
        """Rows with no value in any used column (numeric columns first: cheap)."""
        blank = np.ones(len(chunk), dtype=bool)
        positions = {0, *self.layout.columns.values()}
        numeric = _numeric_positions(self.layout)
        for position in sorted(positions, key=lambda p: p not in numeric):
            candidates = np.flatnonzero(blank)
            if len(candidates) == 0:
                break
            blank[candidates] = _is_empty(chunk.series(position, candidates))
        return blank

    def _totals(self, chunk: _Chunk) -> npt.NDArray[np.bool_]:
        """Rows labelled 'Total...' in the first, campaign or day column."""
        labelled = np.zeros(len(chunk), dtype=bool)
        columns = self.layout.columns
        for position in {0, columns.get("campaign", 0), columns.get("day", 0)}:
            codes, results = chunk.convert(position, _says_total)
            labelled |= _take(results, codes, bool)
        return labelled

    # -- dates

    def _days(self, chunk: _Chunk) -> _Days:
        days = self._parse_days(chunk, "day")
        if not chunk.has("reporting_starts"):
            return days
        # Meta: without a Day column, a row is one day only if its range is.
        starts = self._parse_days(chunk, "reporting_starts").values
        ends = self._parse_days(chunk, "reporting_ends").values
        undated = np.isnat(days.values) & ~np.isnat(starts) & ~days.invalid
        one_day = undated & (starts == ends)
        days.values[one_day] = starts[one_day]
        for index in np.flatnonzero(undated & ~one_day & ~np.isnat(ends)):
            days.invalid[index] = True
            days.reasons[index] = (
                f"the row covers {starts[index]} to {ends[index]}; export the "
                "report with a daily breakdown (Breakdown > By time > Day) so "
                "each row is one day"
            )
        return days

    def _parse_days(self, chunk: _Chunk, name: str) -> _Days:
        if not chunk.has(name):
            size = len(chunk)
            return _Days(
                np.full(size, np.datetime64("NaT"), "datetime64[D]"),
                np.zeros(size, dtype=bool),
                np.full(size, None, dtype=object),
            )
        codes, results = chunk.convert(self.layout.columns[name], parse_day)
        days = [np.datetime64(r, "D") if isinstance(r, date) else None for r in results]
        return _Days(
            _take(days, codes, "datetime64[D]"),
            _take([isinstance(r, str) for r in results], codes, bool),
            _take([r if isinstance(r, str) else None for r in results], codes),
        )

    def _checked_days(self, chunk: _Chunk, parsed: _Days) -> npt.NDArray[np.datetime64]:
        name = "day" if chunk.has("day") else "reporting_starts"
        days, invalid, reasons = parsed.values, parsed.invalid, parsed.reasons
        self._reject(chunk, invalid, "bad_date", name, lambda i: str(reasons[i]))
        self._reject(
            chunk,
            np.isnat(days) & ~invalid,
            "no_date",
            name,
            lambda i: "the row has no date",
        )
        if self.today is not None:
            self._warn(
                chunk,
                days > self.today,
                "future_date",
                name,
                lambda i: f"{days[i]} is in the future",
            )
        return days

    # -- what the row is about

    def _campaigns(self, chunk: _Chunk) -> dict[str, pd.Categorical]:
        found: dict[str, pd.Categorical] = {}
        missing = np.ones(len(chunk), dtype=bool)
        for name in ("campaign", "campaign_id"):
            if not chunk.has(name):
                found[name] = _constant(None, len(chunk))
                continue
            codes, results = chunk.convert(self.layout.columns[name], clean_text)
            found[name] = _categorical(codes, results)
            missing &= _take([r is None for r in results], codes, bool)
        label = "campaign" if chunk.has("campaign") else "campaign_id"
        self._reject(
            chunk, missing, "no_campaign", label, lambda i: "the row names no campaign"
        )
        return found

    def _sources(self, chunk: _Chunk) -> pd.Categorical:
        default = self.layout.spec.source.value
        if not chunk.has("source"):
            return _constant(default, len(chunk))
        known = sorted(s.value for s in Source)
        codes, results = chunk.convert(
            self.layout.columns["source"],
            lambda v: (clean_text(v) or default).casefold(),
        )
        self._reject(
            chunk,
            _take([r not in known for r in results], codes, bool),
            "bad_source",
            "source",
            lambda i: (
                f"unknown source '{chunk.cell('source', i)}'; "
                f"expected one of {', '.join(known)}"
            ),
        )
        return _categorical(codes, results)

    def _currencies(self, chunk: _Chunk) -> pd.Categorical:
        header = self.layout.header_currency
        if not chunk.has("currency"):
            return _constant(header, len(chunk))
        codes, results = chunk.convert(
            self.layout.columns["currency"], lambda v: (clean_text(v) or "").upper()
        )
        self._reject(
            chunk,
            _take(
                [bool(r) and not ISO_CURRENCY.match(r) for r in results], codes, bool
            ),
            "bad_currency",
            "currency",
            lambda i: (
                f"'{chunk.cell('currency', i)}' is not a currency code "
                "(three letters, e.g. EUR)"
            ),
        )
        if header is not None:
            self._reject(
                chunk,
                _take([bool(r) and r != header for r in results], codes, bool),
                "currency_conflict",
                "currency",
                lambda i: (
                    f"currency {chunk.cell('currency', i)} differs from the "
                    f"header's ({header})"
                ),
            )
        return _categorical(codes, [r or header for r in results])

    # -- facts

    def _facts(self, chunk: _Chunk) -> dict[str, npt.NDArray[Any]]:
        impressions = self._whole(chunk, "impressions")
        clicks = self._whole(chunk, "clicks")
        self._reject(
            chunk,
            clicks > impressions,
            "clicks_above_impressions",
            "clicks",
            lambda i: f"clicks ({clicks[i]:,}) exceed impressions ({impressions[i]:,})",
        )
        return {
            "impressions": impressions,
            "clicks": clicks,
            "spend": self._amount(chunk, "spend"),
            "conversions": self._conversions(chunk),
            "revenue": self._amount(chunk, "revenue"),
            "eligible_impressions": self._eligible(chunk, impressions),
            "budget": self._amount(chunk, "budget", empty=np.nan),
        }

    def _numbers(self, chunk: _Chunk, name: str, *, share: bool = False) -> _Numbers:
        """Parsed cells of a numeric column; text, negatives, stray % rejected."""
        numbers = parse_numbers(
            chunk.series(self.layout.columns[name]),
            decimal_comma=self.layout.decimal_comma,
        )
        self._reject(
            chunk,
            numbers.bad,
            "not_a_number",
            name,
            lambda i: f"'{chunk.cell(name, i)}' is not a number",
        )
        if not share:
            self._reject(
                chunk,
                numbers.percent | (numbers.bound != 0),
                "not_a_number",
                name,
                lambda i: f"'{chunk.cell(name, i)}' is not a plain number",
            )
        self._reject(
            chunk,
            numbers.values < 0,
            "negative",
            name,
            lambda i: f"negative value ({chunk.cell(name, i)}) is not allowed",
        )
        return numbers

    def _whole(self, chunk: _Chunk, name: str) -> npt.NDArray[np.int64]:
        numbers = self._numbers(chunk, name)
        values = numbers.values
        self._note_empty(chunk, name, numbers)
        with np.errstate(invalid="ignore"):
            fraction = (values != np.floor(values)) | (values >= MAX_COUNT)
        fraction &= ~np.isnan(values)
        self._reject(
            chunk,
            fraction,
            "not_whole",
            name,
            lambda i: f"'{chunk.cell(name, i)}' is not a whole number of {name}",
        )
        return np.where(np.isnan(values) | fraction, 0, values).astype(np.int64)

    def _amount(
        self, chunk: _Chunk, name: str, *, empty: float = 0.0
    ) -> npt.NDArray[np.float64]:
        if not chunk.has(name):
            return np.full(len(chunk), empty)
        numbers = self._numbers(chunk, name)
        if empty == 0.0:
            self._note_empty(chunk, name, numbers)
        return np.where(np.isnan(numbers.values), empty, numbers.values)

    def _note_empty(self, chunk: _Chunk, name: str, numbers: _Numbers) -> None:
        self.report.note(
            Level.INFO,
            "empty_as_zero",
            chunk.rows[numbers.empty & ~chunk.bad],
            "empty or '--' cells taken as 0",
            column=chunk.header(name),
        )

    def _conversions(self, chunk: _Chunk) -> npt.NDArray[np.float64]:
        """Conversions; Meta's Results count only when they are purchases."""
        for name in ("conversions", "purchases"):
            if chunk.has(name):
                return self._amount(chunk, name)
        results = self._amount(chunk, "results")
        if not chunk.has("results"):
            return results
        counted = np.zeros(len(chunk), dtype=bool)
        if chunk.has("result_indicator"):
            codes, flags = chunk.convert(
                self.layout.columns["result_indicator"], _is_conversion
            )
            counted = _take(flags, codes, bool)
        other = np.flatnonzero(~counted & (results > 0) & ~chunk.bad)
        if len(other):
            indicator = (
                chunk.cell("result_indicator", int(other[0]))
                if chunk.has("result_indicator")
                else "unknown"
            )
            self.report.note(
                Level.WARNING,
                "results_not_conversions",
                chunk.rows[other],
                f"Results count '{indicator}', not purchases or conversions; "
                "conversions stored as 0",
                column=chunk.header("results"),
            )
        return np.where(counted, results, 0.0)

    def _eligible(
        self, chunk: _Chunk, impressions: npt.NDArray[np.int64]
    ) -> npt.NDArray[np.float64]:
        """Impressions the campaign could have had: impressions / reported share."""
        if chunk.has(SHARE_FIELD):
            return self._eligible_from_share(chunk, impressions)
        eligible = self._amount(chunk, "eligible_impressions", empty=np.nan)
        self._reject(
            chunk,
            eligible < impressions,
            "eligible_below_impressions",
            "eligible_impressions",
            lambda i: (
                f"eligible impressions ({eligible[i]:,.0f}) are fewer than "
                f"impressions ({impressions[i]:,})"
            ),
        )
        return eligible

    def _eligible_from_share(
        self, chunk: _Chunk, impressions: npt.NDArray[np.int64]
    ) -> npt.NDArray[np.float64]:
        numbers = self._numbers(chunk, SHARE_FIELD, share=True)
        share = np.where(numbers.percent, numbers.values / 100, numbers.values)
        self._reject(
            chunk,
            share > 1,
            "share_out_of_range",
            SHARE_FIELD,
            lambda i: f"impression share '{chunk.cell(SHARE_FIELD, i)}' is above 100%",
        )
        self._warn(
            chunk,
            numbers.bound != 0,
            "share_bound",
            SHARE_FIELD,
            lambda i: (
                f"'{chunk.cell(SHARE_FIELD, i)}' is a bound, not a value: "
                f"{share[i]:.0%} used"
            ),
        )
        self.report.note(
            Level.WARNING,
            "zero_share",
            chunk.rows[(share == 0) & (impressions > 0) & ~chunk.bad],
            "0% impression share beside impressions; eligible impressions left empty",
            column=chunk.header(SHARE_FIELD),
        )
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(share > 0, impressions / share, np.nan)

    # -- reporting

    def _reject(
        self,
        chunk: _Chunk,
        mask: npt.NDArray[np.bool_],
        code: str,
        name: str,
        message: Callable[[int], str],
    ) -> None:
        """An error on each masked row not rejected already; the row is dropped."""
        index = np.flatnonzero(mask & ~chunk.bad)
        if len(index) == 0:
            return
        self.report.add_rows(
            Level.ERROR,
            code,
            chunk.rows[index],
            lambda k: message(int(index[k])),
            column=chunk.header(name),
        )
        chunk.bad[index] = True

    def _warn(
        self,
        chunk: _Chunk,
        mask: npt.NDArray[np.bool_],
        code: str,
        name: str,
        message: Callable[[int], str],
    ) -> None:
        index = np.flatnonzero(mask & ~chunk.bad)
        self.report.add_rows(
            Level.WARNING,
            code,
            chunk.rows[index],
            lambda k: message(int(index[k])),
            column=chunk.header(name),
        )


# -- the public entry points ----------------------------------------------------------


class ExportReader:
    """One export file, read chunk by chunk into normalised daily KPI facts.

    The layout (format, header row, columns) is known on construction, which
    refuses files it cannot read at all (ImportRejected). chunks() yields
    frames with NORMALISED_COLUMNS; rows with errors are left out and listed
    in the report, which is complete once chunks() is exhausted.
    """

    def __init__(
        self,
        data: bytes,
        *,
        file_name: str,
        format: str | None = None,
        today: date | None = None,
        chunk_rows: int | None = None,
    ) -> None:
        self.data = data
        self.file_name = file_name
        self.layout = sniff(data, file_name=file_name, format=format)
        self.report = QualityReport(file_name)
        self.chunk_rows = chunk_rows or CHUNK_ROWS
        self._normalise = _Normaliser(self.layout, self.report, today)
        self._describe_columns()

    @property
    def format(self) -> str:
        return self.layout.format

    def estimated_rows(self) -> int:
        """Data rows, counted cheaply (for progress bars); may include blank ones."""
        if self.layout.kind == "xlsx":
            return max(
                _xlsx_max_row(self.data, self.layout) - self.layout.header_row, 0
            )
        newline = _newline(self.data, self.layout.encoding or "utf-8")
        lines = self.data.count(newline) + (not self.data.endswith(newline))
        return max(lines - self.layout.header_row, 0)

    def chunks(self) -> Iterator[pd.DataFrame]:
        read = _xlsx_chunks if self.layout.kind == "xlsx" else _csv_chunks
        for raw, rows in read(self.data, self.layout, self.report, self.chunk_rows):
            yield self._normalise(raw, rows)
        self.report.finish()

    def _describe_columns(self) -> None:
        spec = self.layout.spec
        unused: list[str] = []
        for header in self.layout.ignored:
            reason = spec.ignored.get(normalise_header(header))
            if reason:
                self.report.add(
                    Level.INFO, "column_ignored", f"ignored: {reason}", column=header
                )
            else:
                unused.append(header)
        if unused:
            self.report.add(
                Level.INFO, "columns_unused", f"columns not used: {', '.join(unused)}"
            )
        columns = self.layout.columns
        if not {"conversions", "purchases", "results"} & columns.keys():
            self.report.add(
                Level.WARNING,
                "no_conversions",
                "no conversions column: conversions are stored as 0",
            )
        if "revenue" not in columns:
            self.report.add(
                Level.WARNING,
                "no_revenue",
                "no revenue (conversion value) column: revenue is stored as 0",
            )
        if "results" in columns and "result_indicator" not in columns:
            self.report.add(
                Level.WARNING,
                "no_result_indicator",
                "no Result indicator column, so Results may not be purchases: "
                "conversions are stored as 0",
            )


def _newline(data: bytes, encoding: str) -> bytes:
    if not encoding.startswith("utf-16"):
        return b"\n"
    big_endian = encoding == "utf-16-be" or data.startswith(b"\xfe\xff")
    return b"\x00\n" if big_endian else b"\n\x00"


def _xlsx_max_row(data: bytes, layout: Layout) -> int:
    workbook = _open_workbook(data, "")
    try:
        return int(workbook.worksheets[layout.sheet or 0].max_row or 0)
    finally:
        workbook.close()


@dataclass
class ParsedExport:
    """A whole file read at once (small files, previews and tests)."""

    layout: Layout
    frame: pd.DataFrame
    report: QualityReport


def parse_export(
    data: bytes,
    *,
    file_name: str,
    format: str | None = None,
    today: date | None = None,
) -> ParsedExport:
    reader = ExportReader(data, file_name=file_name, format=format, today=today)
    frames = list(reader.chunks())
    frame = (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame(columns=list(NORMALISED_COLUMNS))
    )
    return ParsedExport(reader.layout, frame, reader.report)
