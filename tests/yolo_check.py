"""Reads a yolo_dataset archive with zipfile, PyYAML and Pillow and maps its labels back to boxes.

Usage: yolo_check.py YAML -> the document as PyYAML's safe_load reads it, as JSON;
yolo_check.py ARCHIVE EXPECTED -> JSON {"bad": testzip, "names": [...], "yaml": data.yaml,
"frames": [{"file", "split", "capture_id", "size": [w, h], "labels": n}], "skipped": [...],
"checked": boxes checked, "worst": largest pixel difference, "digests": {name: sha256},
"problems": [...]}.

EXPECTED is JSON {"<capture id>": {"source_url": ..., "boxes": [[x1, y1, x2, y2, taxon name]]}},
the stored boxes of the exported occurrences. Every image is opened and decoded with Pillow;
every label line must be `class cx cy w h` (an integer, then four numbers in [0, 1] with six
decimals); each line is turned back into a box in pixels of the source image (fetched from
`source_url`, its size as Pillow reads it) and matched with a stored box of its capture (same
taxon name as `names[class]`, every edge within 1 px).
"""
import csv
import hashlib
import io
import json
import re
import sys
import urllib.request
import zipfile

import yaml
from PIL import Image

LINE = re.compile(r"^(0|[1-9][0-9]*)( (0|1)\.[0-9]{6}){4}$")
FILE = re.compile(r"^(images|labels)/(train|val|test)/([0-9]+)\.(jpg|txt)$")


def main(path, expected_path):
    archive = zipfile.ZipFile(path)
    bad = archive.testzip()
    with open(expected_path) as f:
        expected = json.load(f)
    data = yaml.safe_load(archive.read("data.yaml").decode("utf-8"))
    names = data["names"]
    problems = []
    # Ultralytics' check_det_dataset: Path(data.get("path") or <data.yaml's folder>); any
    # non-empty path is taken against the working directory or its datasets folder
    if data.get("path"):
        problems.append(f"data.yaml path {data['path']!r}: not the folder of data.yaml")
    for split in ("train", "val", "test"):
        if data.get(split) != f"images/{split}":
            problems.append(f"data.yaml {split}: {data.get(split)!r}")
    frames = []
    sizes = {}
    checked = 0
    worst = 0.0
    listed = archive.namelist()
    for name in listed:
        match = FILE.match(name)
        if not match or match.group(1) != "images":
            continue
        split, capture = match.group(2), match.group(3)
        label_name = f"labels/{split}/{capture}.txt"
        image = Image.open(io.BytesIO(archive.read(name)))
        image.load()
        if image.format != "JPEG":
            problems.append(f"{name}: {image.format}, not JPEG")
        if label_name not in listed:
            problems.append(f"{name}: no {label_name}")
            continue
        source = expected.get(capture)
        if source is None:
            problems.append(f"{name}: not an expected capture")
            continue
        url = source["source_url"]
        if url not in sizes:
            with urllib.request.urlopen(url) as response:
                sizes[url] = Image.open(io.BytesIO(response.read())).size
        width, height = sizes[url]
        lines = archive.read(label_name).decode("utf-8").split("\n")
        if lines[-1] != "":
            problems.append(f"{label_name}: no final newline")
        lines = lines[:-1]
        boxes = [list(b) for b in source["boxes"]]
        if len(lines) != len(boxes):
            problems.append(f"{label_name}: {len(lines)} lines for {len(boxes)} boxes")
        for line in lines:
            if not LINE.match(line):
                problems.append(f"{label_name}: line {line!r}")
                continue
            fields = line.split(" ")
            cls = int(fields[0])
            cx, cy, w, h = (float(v) for v in fields[1:])
            if cls not in names:
                problems.append(f"{label_name}: class {cls} not in names")
                continue
            box = [(cx - w / 2) * width, (cy - h / 2) * height,
                   (cx + w / 2) * width, (cy + h / 2) * height]
            candidates = [b for b in boxes if b[4] == names[cls]]
            best = min(candidates, key=lambda b: max(abs(b[i] - box[i]) for i in range(4)),
                       default=None)
            if best is None:
                problems.append(f"{label_name}: no box of {names[cls]!r} left")
                continue
            difference = max(abs(best[i] - box[i]) for i in range(4))
            worst = max(worst, difference)
            if difference > 1:
                problems.append(f"{label_name}: {line} is {box}, stored {best[:4]}")
            boxes.remove(best)
            checked += 1
        frames.append({
            "file": name,
            "split": split,
            "capture_id": capture,
            "size": list(image.size),
            "source_size": [width, height],
            "labels": len(lines),
        })
    for name in listed:
        match = FILE.match(name)
        if match and match.group(1) == "labels":
            image_name = f"images/{match.group(2)}/{match.group(3)}.jpg"
            if image_name not in listed:
                problems.append(f"{name}: no {image_name}")
    skipped = list(csv.DictReader(io.StringIO(archive.read("skipped.csv").decode("utf-8"),
                                              newline="")))
    print(json.dumps({
        "bad": bad,
        "names": listed,
        "yaml": {k: v for k, v in data.items() if k != "names"},
        "class_names": {str(k): v for k, v in names.items()},
        "frames": frames,
        "skipped": skipped,
        "checked": checked,
        "worst": worst,
        "digests": {n: hashlib.sha256(archive.read(n)).hexdigest() for n in listed},
        "problems": problems,
        # whether each member is smaller in the archive than its bytes (deflated)
        "deflated": {i.filename: i.compress_size < i.file_size for i in archive.infolist()},
    }))


if __name__ == "__main__":
    if len(sys.argv) == 2:
        with open(sys.argv[1], encoding="utf-8") as f:
            print(json.dumps(yaml.safe_load(f.read())))
    else:
        main(sys.argv[1], sys.argv[2])
