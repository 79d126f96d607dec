"""Reads a crops_by_taxon archive with zipfile and Pillow and compares each crop with its source.

Usage: crops_check.py FILE -> JSON {"names": [...], "manifest": [{...}], "taxa": [...],
"skipped": [...], "checked": n, "digests": {name: sha256}, "worst": max mean absolute difference, "problems": [...]}.
Each manifest row's crop is opened from the archive; its source image is fetched from
`source_url` and the box [floor(x1), floor(y1), ceil(x2), ceil(y2)] cut from it (no padding).
"""
import csv
import hashlib
import io
import json
import math
import sys
import urllib.request
import zipfile

from PIL import Image, ImageChops, ImageStat


def table(archive, name):
    text = archive.read(name).decode("utf-8")
    return list(csv.DictReader(io.StringIO(text, newline="")))


def main(path):
    archive = zipfile.ZipFile(path)
    bad = archive.testzip()
    manifest = table(archive, "manifest.csv")
    sources = {}
    problems = []
    worst = 0.0
    for row in manifest:
        crop = Image.open(io.BytesIO(archive.read(row["file"])))
        crop.load()
        url = row["source_url"]
        if url not in sources:
            with urllib.request.urlopen(url) as response:
                sources[url] = Image.open(io.BytesIO(response.read())).convert("RGB")
        box = (
            math.floor(float(row["bbox_x1"])),
            math.floor(float(row["bbox_y1"])),
            math.ceil(float(row["bbox_x2"])),
            math.ceil(float(row["bbox_y2"])),
        )
        region = sources[url].crop(box)
        if crop.size != region.size:
            problems.append(f"{row['file']}: size {crop.size} vs {region.size}")
            continue
        diff = ImageStat.Stat(ImageChops.difference(crop.convert("RGB"), region)).mean
        mad = sum(diff) / len(diff)
        worst = max(worst, mad)
    print(json.dumps({
        "bad": bad,
        "names": archive.namelist(),
        "manifest": manifest,
        "taxa": table(archive, "taxa.csv"),
        "skipped": table(archive, "skipped.csv"),
        "checked": len(manifest),
        "digests": {n: hashlib.sha256(archive.read(n)).hexdigest() for n in archive.namelist()},
        "worst": worst,
        "problems": problems,
    }))


if __name__ == "__main__":
    main(sys.argv[1])
