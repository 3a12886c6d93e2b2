#!/usr/bin/env python3
"""Reference answers for the 22 TPC-H queries in queries/tpch/, computed by DuckDB (not by
arrow-wgpu or DataFusion) over the Parquet files of one scale factor, written as CSV files
that the tests compare with (tests never need DuckDB).

    pip install duckdb tpchgen-cli
    tpchgen-cli parquet -s 0.01 --output-dir /tmp/tpch-sf0.01
    python3 scripts/tpch-answers.py /tmp/tpch-sf0.01 queries/tpch/answers/sf0.01

Values are written as DuckDB prints them: decimals with their scale, floats with 17
significant digits, dates as YYYY-MM-DD, NULL as an empty field.
"""
import csv
import decimal
import pathlib
import sys

import duckdb


def fmt(v):
    if v is None:
        return ""
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, decimal.Decimal):
        return str(v)
    return str(v)


def main():
    data, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    for table in ["customer", "lineitem", "nation", "orders", "part", "partsupp", "region", "supplier"]:
        con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{data / (table + '.parquet')}')")
    queries = pathlib.Path(__file__).resolve().parent.parent / "queries" / "tpch"
    for q in sorted(queries.glob("q*.sql")):
        rel = con.sql(q.read_text())
        rows = rel.fetchall()
        with open(out / (q.stem + ".csv"), "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(rel.columns)
            for r in rows:
                w.writerow([fmt(v) for v in r])
        print(q.stem, len(rows), "rows")


if __name__ == "__main__":
    main()
