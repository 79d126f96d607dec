"""Validates a Camera Trap Data Package (zip) offline and reports what it holds.

Usage: camtrap_check.py ZIP SCHEMAS_DIR -> JSON {"errors": [frictionless errors], "profile_errors":
[jsonschema errors against the Camtrap DP profile], "rows": {table: n}, "levels": {level: n},
"dangling": {link: n}, "descriptor": datapackage.json, "tables": {table: [rows as dicts]}}.

The package is unzipped into a temporary directory and each resource's `schema` (a URL of the
published Camtrap DP 1.0.2 table schema) is replaced by the local copy in SCHEMAS_DIR, then
`frictionless.validate` checks every CSV against its table schema (types, formats, required
fields, enums, ranges, unique and primary keys, foreign keys). The descriptor is validated against
the local Camtrap DP profile with its two remote references (Frictionless Data Package, GeoJSON)
left out, as tests/fixtures/schemas/README.md advises.
"""
import csv
import json
import os
import shutil
import sys
import tempfile
import zipfile

import frictionless
import jsonschema


def strip_remote_refs(node):
    if isinstance(node, dict):
        return {k: strip_remote_refs(v) for k, v in node.items()
                if not (k == "$ref" and isinstance(v, str) and v.startswith("http"))}
    if isinstance(node, list):
        return [strip_remote_refs(v) for v in node]
    return node


def main(path, schemas):
    out = {"errors": [], "profile_errors": [], "rows": {}, "levels": {}, "dangling": {},
           "tables": {}}
    with tempfile.TemporaryDirectory() as tmp:
        with zipfile.ZipFile(path) as z:
            assert z.testzip() is None
            z.extractall(tmp)
        with open(os.path.join(tmp, "datapackage.json"), encoding="utf-8") as f:
            descriptor = json.load(f)
        out["descriptor"] = descriptor
        with open(os.path.join(schemas, "camtrap-dp-profile.json"), encoding="utf-8") as f:
            profile = strip_remote_refs(json.load(f))
        validator = jsonschema.Draft202012Validator(profile)
        out["profile_errors"] = [f"{list(e.path)}: {e.message}"
                                 for e in validator.iter_errors(descriptor)]
        local = json.loads(json.dumps(descriptor))
        local.pop("profile", None)  # a remote profile: checked above with jsonschema
        for resource in local["resources"]:
            name = resource["schema"].rsplit("/", 1)[-1]
            shutil.copy(os.path.join(schemas, name), os.path.join(tmp, name))
            resource["schema"] = name  # relative: frictionless refuses absolute paths
        local_path = os.path.join(tmp, "local-datapackage.json")
        with open(local_path, "w", encoding="utf-8") as f:
            json.dump(local, f)
        report = frictionless.validate(local_path)
        for task in report.tasks:
            for error in task.errors:
                out["errors"].append(f"{task.name}: {error.type}: {error.message}")
        for error in report.errors:
            out["errors"].append(f"package: {error.type}: {error.message}")
        tables = {}
        for name in ("deployments", "media", "observations"):
            with open(os.path.join(tmp, f"{name}.csv"), encoding="utf-8", newline="") as f:
                tables[name] = list(csv.DictReader(f))
            out["rows"][name] = len(tables[name])
        out["tables"] = tables
    deployments = {r["deploymentID"] for r in tables["deployments"]}
    media = {r["mediaID"] for r in tables["media"]}
    for r in tables["observations"]:
        out["levels"][r["observationLevel"]] = out["levels"].get(r["observationLevel"], 0) + 1
    out["dangling"] = {
        "media.deploymentID": sum(r["deploymentID"] not in deployments for r in tables["media"]),
        "observations.deploymentID": sum(
            r["deploymentID"] not in deployments for r in tables["observations"]),
        "observations.mediaID": sum(
            r["mediaID"] != "" and r["mediaID"] not in media for r in tables["observations"]),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main(*sys.argv[1:])
