"""Reads a detections_coco zip (include_images) with zipfile, pycocotools and Pillow.

Usage: coco_zip_check.py ZIP [JSON] -> JSON {"bad": testzip, "names": [...], "images",
"annotations" (counts), "file_names": [...], "missing": [file_name not in the zip],
"unreadable": [file_name Pillow cannot open], "skipped": [{capture_id, source_url, reason}],
"same_as_json": bool or null without JSON, "digests": {name: sha256}}. JSON (optional) is the plain detections_coco file of the same request:
annotations.json must equal it once its skipped images and their annotations are left out and
each image's file_name is images/<capture id>.jpg.
"""
import contextlib
import hashlib
import csv
import io
import json
import os
import sys
import tempfile
import zipfile

from PIL import Image
from pycocotools.coco import COCO


def main(path, plain_path):
    archive = zipfile.ZipFile(path)
    names = archive.namelist()
    data = archive.read("annotations.json")
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        f.write(data)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            coco = COCO(f.name)
    finally:
        os.unlink(f.name)
    file_names = [i["file_name"] for i in coco.loadImgs(coco.getImgIds())]
    unreadable = []
    for name in file_names:
        if name not in names:
            continue
        try:
            with Image.open(io.BytesIO(archive.read(name))) as image:
                image.load()
        except Exception as error:  # noqa: BLE001 - reported to the test
            unreadable.append(f"{name}: {error}")
    skipped = list(csv.DictReader(io.StringIO(archive.read("skipped.csv").decode(), newline="")))
    left_out = {int(r["capture_id"]) for r in skipped}
    plain = {"images": [], "annotations": []}
    if plain_path is not None:
        with open(plain_path, "rb") as f:
            plain = json.load(f)
    plain["images"] = [
        {**i, "file_name": f"images/{i['id']}.jpg"} for i in plain["images"] if i["id"] not in left_out
    ]
    plain["annotations"] = [a for a in plain["annotations"] if a["image_id"] not in left_out]
    print(json.dumps({
        "bad": archive.testzip(),
        "names": names,
        "images": len(coco.getImgIds()),
        "annotations": len(coco.getAnnIds()),
        "file_names": file_names,
        "missing": [n for n in file_names if n not in names],
        "unreadable": unreadable,
        "skipped": skipped,
        "same_as_json": None if plain_path is None else json.loads(data) == plain,
        "digests": {n: hashlib.sha256(archive.read(n)).hexdigest() for n in names},
    }))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)
