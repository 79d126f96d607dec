"""What an exported file holds, as its data card must list it, read with Python's own modules.

Usage: datacard_check.py PATH EXTENSION — prints JSON {"names": [...], "headers": {name:
[columns]}, "readme": text or null}: CSV and Parquet: the header's columns; zip: the member
files in archive order (README.md's text also in "readme") and each table
member's header (csv for .csv, tab-separated for .txt); JSON: the top-level keys of the object
(an object file) or of its first element (an array, or the first NDJSON line).
"""
import csv
import io
import json
import sys
import zipfile

path, extension = sys.argv[1], sys.argv[2]
out = {"names": [], "headers": {}, "readme": None}
if extension == "csv":
    text = open(path, encoding="utf-8-sig", newline="").read()
    out["names"] = next(csv.reader(io.StringIO(text, newline="")))
elif extension == "parquet":
    import pyarrow.parquet as pq
    out["names"] = pq.read_schema(path).names
elif extension == "zip":
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            data = z.read(name).decode("utf-8")
            out["names"].append(name)
            if name == "README.md":
                out["readme"] = data
            if name.endswith(".csv"):
                out["headers"][name] = next(csv.reader(io.StringIO(data, newline="")))
            elif name.endswith(".txt"):
                out["headers"][name] = data.split("\n", 1)[0].split("\t")
elif extension == "json":
    doc = json.load(open(path, encoding="utf-8"))
    out["names"] = list((doc[0] if isinstance(doc, list) else doc).keys())
elif extension == "ndjson":
    first = open(path, encoding="utf-8").readline()
    out["names"] = list(json.loads(first).keys())
else:
    sys.exit(f"unknown extension: {extension}")
print(json.dumps(out))
