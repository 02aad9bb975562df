"""The DuckDB oracle for ooc: run SQL over a data folder, write golden CSVs, compare CSVs.

Flow::

    data dir (NAME.parquet files, NAME/ hive folders) ─► run_duckdb(sql) ─► (columns, rows)
    (columns, rows) ─► write_golden_csv ─► tests/golden/NAME.csv
    expected CSV text + ooc's CSV text ─► compare ─► list of human-readable differences

The CSV dialect is the one ooc prints with ``--format csv --null-string NULL``: a header row,
NULL as the literal ``NULL``, booleans ``true``/``false``, dates ``YYYY-MM-DD``, timestamps
``YYYY-MM-DD HH:MM:SS[.ffffff]``, floats as Python ``repr`` (``NaN``, ``inf``, ``-inf``), and
decimals as exact text. ``compare`` is tolerant where engines legitimately differ (float noise
within 1e-9, NaN/inf spellings, ``T`` in timestamps, trailing fractional zeros) and strict
elsewhere. The Rust twin of ``compare`` lives in ``tests/common/mod.rs``; keep them in step.
"""

from __future__ import annotations

import csv
import datetime
import decimal
import io
import math
import re
from pathlib import Path
from typing import Any, Sequence

NULL_TEXT = "NULL"
RELATIVE_TOLERANCE = 1e-9
ABSOLUTE_TOLERANCE = 1e-9


# ---------------------------------------------------------------------------------------------
# Running DuckDB
# ---------------------------------------------------------------------------------------------


def connect_with_views(data_dir: str | Path):
    """A DuckDB connection with one view per ``NAME.parquet`` file or ``NAME/`` folder."""
    import duckdb  # imported lazily so compare() works without DuckDB installed

    connection = duckdb.connect()
    data_dir = Path(data_dir)
    for entry in sorted(data_dir.iterdir()):
        if entry.is_file() and entry.suffix == ".parquet":
            source = f"read_parquet('{_sql_quote(entry)}')"
            name = entry.stem
        elif entry.is_dir() and not entry.name.startswith("."):
            source = f"read_parquet('{_sql_quote(entry)}/**/*.parquet', hive_partitioning=true)"
            name = entry.name
        else:
            continue
        connection.execute(f'CREATE VIEW "{name}" AS SELECT * FROM {source}')
    return connection


def run_duckdb(sql: str, data_dir: str | Path) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Runs ``sql`` in DuckDB over the tables of ``data_dir``; returns (column names, rows)."""
    connection = connect_with_views(data_dir)
    try:
        relation = connection.execute(sql)
        columns = [description[0] for description in relation.description]
        rows = relation.fetchall()
        return columns, rows
    finally:
        connection.close()


def _sql_quote(path: Path) -> str:
    return str(path.resolve()).replace("'", "''")


# ---------------------------------------------------------------------------------------------
# Writing golden CSV
# ---------------------------------------------------------------------------------------------


def format_cell(value: Any) -> str:
    """One value in the golden CSV dialect (see the module docstring)."""
    if value is None:
        return NULL_TEXT
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    if isinstance(value, datetime.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, datetime.date):
        return f"{value.year:04d}-{value.month:02d}-{value.day:02d}"
    if isinstance(value, (int, str)):
        return str(value)
    raise TypeError(f"no golden CSV format for {type(value).__name__}: {value!r}")


def golden_csv_text(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([format_cell(value) for value in row])
    return buffer.getvalue()


def write_golden_csv(path: str | Path, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Writes the CSV (header + rows) atomically to ``path``."""
    path = Path(path)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(golden_csv_text(columns, rows), encoding="utf-8")
    temporary.replace(path)


# ---------------------------------------------------------------------------------------------
# Comparing
# ---------------------------------------------------------------------------------------------

_INTEGER = re.compile(r"^[+-]?\d+$")
_TIMESTAMP = re.compile(r"^(-?\d{4,}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})(?:\.(\d+))?$")
_SPECIAL_FLOATS = {
    "nan": math.nan,
    "+nan": math.nan,
    "-nan": math.nan,
    "inf": math.inf,
    "+inf": math.inf,
    "infinity": math.inf,
    "+infinity": math.inf,
    "-inf": -math.inf,
    "-infinity": -math.inf,
}


def parse_number(text: str) -> float | int | None:
    """The numeric value of a cell, or None if it is not a number."""
    stripped = text.strip()
    if not stripped:
        return None
    special = _SPECIAL_FLOATS.get(stripped.lower())
    if special is not None:
        return special
    if _INTEGER.match(stripped):
        return int(stripped)
    if not re.match(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$", stripped):
        return None
    return float(stripped)


def normalize_timestamp(text: str) -> str | None:
    """``2020-01-01T10:00:00.500000`` → ``2020-01-01 10:00:00.5``; None if not a timestamp."""
    match = _TIMESTAMP.match(text.strip())
    if not match:
        return None
    date, time, fraction = match.groups()
    fraction = (fraction or "").rstrip("0")
    return f"{date} {time}" + (f".{fraction}" if fraction else "")


def numbers_equal(left: float | int, right: float | int) -> bool:
    if isinstance(left, int) and isinstance(right, int):
        return left == right
    left, right = float(left), float(right)
    if math.isnan(left) or math.isnan(right):
        return math.isnan(left) and math.isnan(right)
    if math.isinf(left) or math.isinf(right):
        return left == right
    return abs(left - right) <= max(ABSOLUTE_TOLERANCE, RELATIVE_TOLERANCE * max(abs(left), abs(right)))


def cells_equal(expected: str, actual: str) -> bool:
    if expected == actual:
        return True
    if expected == NULL_TEXT or actual == NULL_TEXT:
        return False
    expected_number, actual_number = parse_number(expected), parse_number(actual)
    if expected_number is not None and actual_number is not None:
        return numbers_equal(expected_number, actual_number)
    expected_timestamp, actual_timestamp = normalize_timestamp(expected), normalize_timestamp(actual)
    if expected_timestamp is not None and actual_timestamp is not None:
        return expected_timestamp == actual_timestamp
    return False


def _sort_key_of_cell(cell: str) -> tuple:
    """A key that puts equal-within-tolerance cells next to each other in both results."""
    if cell == NULL_TEXT:
        return (0, 0.0, "")
    number = parse_number(cell)
    if number is not None:
        value = float(number)
        if math.isnan(value):
            return (2, 0.0, "")
        return (1, float(f"{value:.9e}") if not math.isinf(value) else value, "")
    timestamp = normalize_timestamp(cell)
    return (3, 0.0, timestamp if timestamp is not None else cell)


def parse_csv(text: str) -> list[list[str]]:
    return [row for row in csv.reader(io.StringIO(text))]


def compare(expected_csv_text: str, actual_csv_text: str, ordered: bool, max_differences: int = 10) -> list[str]:
    """Differences between two CSV results (header + rows); an empty list means they match."""
    expected, actual = parse_csv(expected_csv_text), parse_csv(actual_csv_text)
    if not expected:
        return ["expected CSV has no header row"]
    if not actual:
        return ["actual CSV is empty (no header row)"]
    expected_header, expected_rows = expected[0], expected[1:]
    actual_header, actual_rows = actual[0], actual[1:]
    if len(expected_header) != len(actual_header):
        return [f"column count: expected {len(expected_header)} {expected_header}, got {len(actual_header)} {actual_header}"]
    differences: list[str] = []
    if len(expected_rows) != len(actual_rows):
        differences.append(f"row count: expected {len(expected_rows)}, got {len(actual_rows)}")
    if not ordered:
        expected_rows = sorted(expected_rows, key=lambda row: [_sort_key_of_cell(cell) for cell in row])
        actual_rows = sorted(actual_rows, key=lambda row: [_sort_key_of_cell(cell) for cell in row])
    for index, (expected_row, actual_row) in enumerate(zip(expected_rows, actual_rows)):
        if len(expected_row) != len(actual_row):
            differences.append(f"row {index}: expected {len(expected_row)} cells, got {len(actual_row)}")
        else:
            for column, (expected_cell, actual_cell) in enumerate(zip(expected_row, actual_row)):
                if not cells_equal(expected_cell, actual_cell):
                    differences.append(
                        f"row {index}{'' if ordered else ' (after sorting)'} column {expected_header[column]!r}: "
                        f"expected {expected_cell!r}, got {actual_cell!r}"
                    )
                    break
        if len(differences) >= max_differences:
            break
    return differences


# ---------------------------------------------------------------------------------------------
# Is the result ordered?
# ---------------------------------------------------------------------------------------------


def strip_comments_and_strings(sql: str) -> str:
    """SQL text with comments removed and string literals blanked (so their contents don't count)."""
    sql = re.sub(r"--[^\n]*", " ", sql)
    sql = re.sub(r"/\*.*?\*/", " ", sql, flags=re.DOTALL)
    sql = re.sub(r"'(?:[^']|'')*'", "''", sql)
    return re.sub(r'"(?:[^"]|"")*"', '""', sql)


def has_outer_order_by(sql: str) -> bool:
    """True iff the last ``ORDER BY`` of the statement is outside all parentheses."""
    text = strip_comments_and_strings(sql)
    matches = list(re.finditer(r"\border\s+by\b", text, flags=re.IGNORECASE))
    if not matches:
        return False
    position = matches[-1].start()
    depth = 0
    for character in text[:position]:
        if character == "(":
            depth += 1
        elif character == ")":
            depth -= 1
    return depth == 0
