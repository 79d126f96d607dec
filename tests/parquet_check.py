"""Reads a Parquet file with pyarrow and with DuckDB and prints what each saw, every value in the
simple CSV's text form, so the test can compare them cell by cell with `occurrences_simple_csv`.

Usage: parquet_check.py FILE -> JSON {"pyarrow": {"types", "row_groups", "rows"}, "duckdb":
{"types", "rows"}}. Text forms (antenna-compat §3): integers in decimal, floats as Python's
repr, booleans True/False, timestamps as str(datetime) in UTC without offset, the duration as
str(timedelta) of its microseconds, the bbox as [a, b, c, d] with integral values as integers;
null as "".
"""
import datetime
import json
import sys

import duckdb
import pyarrow.parquet as pq


def text(name, value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "True" if value else "False"
    if name == "duration":
        return str(datetime.timedelta(microseconds=value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, datetime.datetime):
        return str(value.astimezone(datetime.timezone.utc).replace(tzinfo=None))
    if isinstance(value, list):
        return "[" + ", ".join(str(int(v)) if v.is_integer() else repr(v) for v in value) + "]"
    return value


def main(path):
    table = pq.read_table(path)
    meta = pq.ParquetFile(path).metadata
    arrow = {
        "types": {f.name: str(f.type) for f in table.schema},
        "row_groups": [meta.row_group(i).num_rows for i in range(meta.num_row_groups)],
        "rows": [{k: text(k, v) for k, v in row.items()} for row in table.to_pylist()],
    }
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    rel = con.execute("select * from read_parquet(?)", [path])
    names = [d[0] for d in rel.description]
    rows = rel.fetchall()
    described = con.execute("describe select * from read_parquet(?)", [path]).fetchall()
    duck = {
        "types": {r[0]: r[1] for r in described},
        "rows": [{n: text(n, v) for n, v in zip(names, row)} for row in rows],
    }
    print(json.dumps({"pyarrow": arrow, "duckdb": duck}))


if __name__ == "__main__":
    main(sys.argv[1])
