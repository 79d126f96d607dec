"""Checks a Darwin Core Archive independently of ami-exports and prints a JSON summary.

Usage: dwca_check.py ARCHIVE.zip

- zipfile: CRCs of every entry (testzip), the list of names;
- meta.xml and eml.xml parse as XML; meta.xml's core and extensions, their files and terms;
- row counts of every data file, and how many extension rows point to no core row;
- python-dwca-reader (an independent Darwin Core Archive reader) opens the archive, reads the
  core and, through each core row, the extension rows linked to it (compare with the files'
  row counts: equal means every extension row is linked).
"""
import json
import sys
import zipfile
import xml.etree.ElementTree as ET

from dwca.read import DwCAReader

NS = {"t": "http://rs.tdwg.org/dwc/text/"}


def main(path):
    out = {}
    with zipfile.ZipFile(path) as z:
        out["testzip"] = z.testzip()  # None when every CRC matches
        out["names"] = z.namelist()
        meta = ET.fromstring(z.read("meta.xml"))
        eml = ET.fromstring(z.read("eml.xml"))
        out["eml_root"] = eml.tag
        out["eml_title"] = eml.findtext("dataset/title")
        out["eml_license"] = "".join(eml.find("dataset/intellectualRights").itertext()).strip()
        bounds = eml.find("dataset/coverage/geographicCoverage/boundingCoordinates")
        out["eml_bounds"] = None if bounds is None else {
            child.tag: float(child.text) for child in bounds
        }
        dates = eml.find("dataset/coverage/temporalCoverage/rangeOfDates")
        out["eml_dates"] = None if dates is None else [
            dates.findtext("beginDate/calendarDate"), dates.findtext("endDate/calendarDate")
        ]
        files = {}
        for kind in ("core", "extension"):
            for node in meta.findall(f"t:{kind}", NS):
                location = node.findtext("t:files/t:location", namespaces=NS)
                lines = z.read(location).decode("utf-8").split("\n")
                assert lines[-1] == "", f"{location} does not end with a newline"
                header = lines[0].split("\t")
                rows = [line.split("\t") for line in lines[1:-1]]
                terms = {int(f.get("index")): f.get("term") for f in node.findall("t:field", NS)}
                assert all(len(r) == len(header) for r in rows), f"ragged rows in {location}"
                assert sorted(terms) == list(range(len(header))), f"fields of {location}"
                files[location] = {
                    "kind": kind,
                    "row_type": node.get("rowType"),
                    "rows": len(rows),
                    "header": header,
                    "terms": [terms[i] for i in range(len(header))],
                    "ids": [r[0] for r in rows],
                }
        core = next(f for f in files.values() if f["kind"] == "core")
        core_ids = set(core["ids"])
        out["duplicate_core_ids"] = len(core["ids"]) - len(core_ids)
        for f in files.values():
            f["dangling"] = 0 if f["kind"] == "core" else sum(
                1 for i in f["ids"] if i not in core_ids
            )
            del f["ids"]
        out["files"] = files

    with DwCAReader(path) as dwca:
        reader = {"core_type": dwca.descriptor.core.type, "core_rows": 0, "extensions": {}}
        seen_ids = set()
        for row in dwca:
            reader["core_rows"] += 1
            seen_ids.add(row.id)
            for ext in row.extensions:
                counts = reader["extensions"].setdefault(ext.rowtype, {"rows": 0, "linked": 0})
                counts["rows"] += 1
                counts["linked"] += 1 if ext.core_id == row.id else 0
        out["reader"] = reader
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1])
