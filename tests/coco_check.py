"""Loads a COCO dataset with pycocotools (the reader detection frameworks use) and reports it.

Usage: coco_check.py FILE -> JSON {"images", "annotations", "categories" (counts), "cat_ids",
"img_ids", "anns": {id: {image_id, category_id, bbox, area}}, "cats": {id: {name,
supercategory}}, "imgs": {id: {width, height, file_name, coco_url}}, "anns_per_image"}.
Integers are written as text so ids past 2^53 reach the test exactly.
"""
import contextlib
import json
import sys

from pycocotools.coco import COCO


def text_ints(value):
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return [text_ints(v) for v in value]
    if isinstance(value, dict):
        return {str(k): text_ints(v) for k, v in value.items()}
    return value


def main(path):
    with contextlib.redirect_stdout(sys.stderr):  # COCO() prints its progress
        coco = COCO(path)
    out = {
        "images": len(coco.getImgIds()),
        "annotations": len(coco.getAnnIds()),
        "categories": len(coco.getCatIds()),
        "anns": {
            a["id"]: {k: a[k] for k in ("image_id", "category_id", "bbox", "area", "iscrowd")}
            for a in coco.loadAnns(coco.getAnnIds())
        },
        "cats": {
            c["id"]: {"name": c["name"], "supercategory": c["supercategory"]}
            for c in coco.loadCats(coco.getCatIds())
        },
        "imgs": {
            i["id"]: {k: i[k] for k in ("width", "height", "file_name", "coco_url")}
            for i in coco.loadImgs(coco.getImgIds())
        },
        "anns_per_image": {i: len(coco.getAnnIds(imgIds=[i])) for i in coco.getImgIds()},
    }
    print(json.dumps(text_ints(out)))


if __name__ == "__main__":
    main(sys.argv[1])
