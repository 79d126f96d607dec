"""Reads an exported file with independent, strict Python readers and prints what they saw.

Usage: readers.py MODE FILE [XSD]

- csv: Python's csv module (RFC 4180 dialect) -> {"bom", "rows"}
- json: json.loads, strict (NaN/Infinity literals rejected) -> the document
- ndjson: str.splitlines (which also splits on U+2028, U+2029, U+0085, …), one strict
  json.loads per line -> {"lines", "records"}
- xml: lxml (well-formedness, and validity against XSD when given) -> {"valid", "errors",
  "texts"}: the text of every element (documents of <s> items in the property tests)
- tsv: split on LF and TAB -> {"rows"}

The output is JSON with every integer written as text, so that the test (JavaScript) reads ids
past 2^53 exactly; strings are ASCII-escaped, so lone surrogates survive the trip.
"""
import csv
import io
import json
import sys


def reject_constant(name):
    raise ValueError(f"non-finite JSON literal: {name}")


def strict_loads(text):
    return json.loads(text, parse_constant=reject_constant)


def ints_as_text(value):
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, list):
        return [ints_as_text(v) for v in value]
    if isinstance(value, dict):
        return {k: ints_as_text(v) for k, v in value.items()}
    return value


def main(mode, path, xsd=None):
    data = open(path, "rb").read()
    if mode == "csv":
        text = data.decode("utf-8")
        bom = text.startswith("\ufeff")
        rows = list(csv.reader(io.StringIO(text[1:] if bom else text, newline="")))
        out = {"bom": bom, "rows": rows}
    elif mode == "json":
        out = strict_loads(data.decode("utf-8"))
    elif mode == "ndjson":
        lines = data.decode("utf-8").splitlines()
        out = {"lines": len(lines), "records": [strict_loads(line) for line in lines]}
    elif mode == "xml":
        from lxml import etree

        out = {"valid": None, "errors": [], "texts": []}
        doc = etree.fromstring(data, etree.XMLParser(resolve_entities=False))
        out["texts"] = [el.text or "" for el in doc.iter() if el is not doc]
        if xsd:
            schema = etree.XMLSchema(etree.parse(xsd))
            out["valid"] = schema.validate(doc)
            out["errors"] = [str(e) for e in schema.error_log]
    elif mode == "tsv":
        lines = data.decode("utf-8").split("\n")
        assert lines[-1] == "", "no final newline"
        out = {"rows": [line.split("\t") for line in lines[:-1]]}
    else:
        raise SystemExit(f"unknown mode: {mode}")
    print(json.dumps(ints_as_text(out)))


if __name__ == "__main__":
    main(*sys.argv[1:])
