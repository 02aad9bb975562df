"""Compare a query's result between ooc and DuckDB inside DuckDB, for results too large for
`compare.py` (which holds both results as Python rows).

    compare_large.py --data DIR [--ooc target/release/ooc] [--memory-limit SIZE] FILE.sql...

ooc writes the result to a temporary Parquet file; DuckDB computes its own result and the two
are compared as multisets with `EXCEPT ALL` in both directions (floating-point columns rounded
to 9 significant digits). Prints PASS/FAIL per file; exit 1 on any failure.
"""

import argparse
import os
import subprocess
import sys
import tempfile

from oracle import connect_with_views  # same folder


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--ooc", default="target/release/ooc")
    parser.add_argument("--memory-limit", help="ooc's --memory-limit, e.g. 256MB")
    parser.add_argument("queries", nargs="+")
    args = parser.parse_args()
    limit = ["--memory-limit", args.memory_limit] if args.memory_limit else []
    failures = 0
    for query in args.queries:
        sql = open(query).read().strip().rstrip(";")
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "ooc.parquet")
            proc = subprocess.run([args.ooc, "query", "--data", args.data, "--file", query, "-o", out, *limit],
                                  capture_output=True, text=True)
            if proc.returncode != 0:
                print(f"FAIL {query}: ooc failed: {proc.stderr.strip()}")
                failures += 1
                continue
            con = connect_with_views(args.data)
            con.execute(f"CREATE TABLE expected AS {sql}")
            con.execute(f"CREATE TABLE actual AS SELECT * FROM read_parquet('{out}')")
            columns = con.execute("SELECT column_name, data_type FROM information_schema.columns "
                                  "WHERE table_name = 'expected' ORDER BY ordinal_position").fetchall()
            actual_names = [r[0] for r in con.execute("DESCRIBE actual").fetchall()]
            if len(actual_names) != len(columns):
                print(f"FAIL {query}: {len(actual_names)} columns, expected {len(columns)}")
                failures += 1
                continue

            def select(table, names):
                parts = []
                for (_, kind), name in zip(columns, names):
                    # A column name may hold double quotes (DuckDB names `"main"."f"(x)` so).
                    quoted = '"' + name.replace('"', '""') + '"'
                    if kind in ("DOUBLE", "FLOAT"):
                        parts.append(f"round({quoted}::DOUBLE / greatest(1, abs({quoted}::DOUBLE)), 9)")
                    else:
                        parts.append(f"{quoted}::VARCHAR")
                return f"SELECT {', '.join(parts)} FROM {table}"

            expected_sql = select("expected", [c[0] for c in columns])
            actual_sql = select("actual", actual_names)
            n_expected = con.execute("SELECT count(*) FROM expected").fetchone()[0]
            n_actual = con.execute("SELECT count(*) FROM actual").fetchone()[0]
            missing = con.execute(f"SELECT count(*) FROM ({expected_sql} EXCEPT ALL {actual_sql})").fetchone()[0]
            extra = con.execute(f"SELECT count(*) FROM ({actual_sql} EXCEPT ALL {expected_sql})").fetchone()[0]
            if n_expected == n_actual and missing == 0 and extra == 0:
                print(f"PASS {query} ({n_actual} rows)")
            else:
                print(f"FAIL {query}: rows {n_actual} vs {n_expected} expected; {missing} missing, {extra} extra")
                failures += 1
        sys.stdout.flush()
    print(f"{len(args.queries) - failures}/{len(args.queries)} passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
