"""Reads a crops_by_taxon archive with zipfile and Pillow and compares each crop with its source.

Usage: crops_check.py FILE [MAX_SIDE [PADDING]] -> JSON {"names": [...], "manifest": [{...}], "taxa": [...],
"skipped": [...], "checked": n, "digests": {name: sha256}, "sizes": {file: [width, height]}, "worst": max mean absolute difference, "problems": [...],
"deflated": {name: compressed size < size}}.
Each manifest row's crop is opened from the archive; its source image is fetched from
`source_url` and the box widened by PADDING (default 0) x its width and height on each side,
[floor(x1 - pad), floor(y1 - pad), ceil(x2 + pad), ceil(y2 + pad)] clamped to the image, cut from
it; with MAX_SIDE (0: none) a region whose longest side is above it is resized (Lanczos) to both
sides x MAX_SIDE / longest side, rounded, and the crop must have exactly that size.
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


def expected_size(size, max_side):
    longest = max(size)
    if not max_side or longest <= max_side:
        return size
    scale = max_side / longest
    return tuple(max(1, int(math.floor(side * scale + 0.5))) for side in size)


def main(path, max_side=0, padding=0.0):
    archive = zipfile.ZipFile(path)
    bad = archive.testzip()
    manifest = table(archive, "manifest.csv")
    sources = {}
    problems = []
    sizes = {}
    worst = 0.0
    for row in manifest:
        crop = Image.open(io.BytesIO(archive.read(row["file"])))
        crop.load()
        url = row["source_url"]
        if url not in sources:
            with urllib.request.urlopen(url) as response:
                sources[url] = Image.open(io.BytesIO(response.read())).convert("RGB")
        source = sources[url]
        x1, y1, x2, y2 = (float(row[f"bbox_{k}"]) for k in ("x1", "y1", "x2", "y2"))
        pad_x, pad_y = (x2 - x1) * padding, (y2 - y1) * padding
        box = (
            max(0, math.floor(x1 - pad_x)),
            max(0, math.floor(y1 - pad_y)),
            min(source.width, math.ceil(x2 + pad_x)),
            min(source.height, math.ceil(y2 + pad_y)),
        )
        region = source.crop(box)
        size = expected_size(region.size, max_side)
        sizes[row["file"]] = list(crop.size)
        if crop.size != size:
            problems.append(f"{row['file']}: size {crop.size} vs {size}")
            continue
        if size != region.size:
            region = region.resize(size, Image.LANCZOS)
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
        "sizes": sizes,
        "problems": problems,
        # how each member is stored: JPEGs as they are (compressed size >= size), tables deflated
        "deflated": {i.filename: i.compress_size < i.file_size for i in archive.infolist()},
    }))


if __name__ == "__main__":
    main(
        sys.argv[1],
        int(sys.argv[2]) if len(sys.argv) > 2 else 0,
        float(sys.argv[3]) if len(sys.argv) > 3 else 0.0,
    )
