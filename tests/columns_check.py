"""Checks that a `columns` export is the full export's projection, with Python's csv module.

Usage: columns_check.py FULL SUBSET COLUMN,COLUMN,…  — prints {"rows": n} or exits 1 saying
where they differ. Both files are read as UTF-8 (a byte order mark is kept apart); the subset's
rows must equal the full rows projected on the columns, and the subset's bytes must equal
Python's csv.writer (CRLF, minimal quoting) writing those projected rows after the same mark.
"""
import csv
import io
import json
import sys

BOM = "\ufeff"


def read(path):
    text = open(path, encoding="utf-8", newline="").read()
    bom = text.startswith(BOM)
    return bom, (text[1:] if bom else text)


full_bom, full_text = read(sys.argv[1])
sub_bom, sub_text = read(sys.argv[2])
columns = sys.argv[3].split(",")
full = list(csv.reader(io.StringIO(full_text, newline="")))
sub = list(csv.reader(io.StringIO(sub_text, newline="")))
header = full[0]
picks = [header.index(c) for c in columns]
projected = [[row[i] for i in picks] for row in full]
if sub != projected:
    for n, (a, b) in enumerate(zip(sub, projected)):
        if a != b:
            sys.exit(f"row {n} differs: {a!r} != {b!r}")
    sys.exit(f"row counts differ: {len(sub)} != {len(projected)}")
out = io.StringIO(newline="")
csv.writer(out, lineterminator="\r\n").writerows(projected)
if full_bom != sub_bom:
    sys.exit("byte order marks differ")
if out.getvalue() != sub_text:
    sys.exit("the subset's bytes are not Python csv's serialization of the projection")
print(json.dumps({"rows": len(sub) - 1}))
