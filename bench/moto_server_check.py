"""Checks `bench/moto_server.py`'s streamed multipart checksums against moto's own builder.

For every checksum algorithm and type moto knows, and parts of several sizes (across the 1 MiB
chunk the streamed version reads), `_multipart_checksum` must equal `MultipartChecksumBuilder`
(`addPart` of each part's bytes, then `build`). Prints `ok N` or raises. Run by
`bench/moto_server_test.ts` with the Python that has moto.
"""

import importlib.util
import os
import sys

from moto.s3 import models

spec = importlib.util.spec_from_file_location(
    "bench_moto_server", os.path.join(os.path.dirname(__file__), "moto_server.py")
)
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)

sizes = [0, 1, (1 << 20) - 1, 1 << 20, (1 << 20) + 7, 3 * (1 << 20) + 5]
parts = []
for i, size in enumerate(sizes):
    part = models.FakeKey(
        str(i + 1), bytes((i * 31 + j) % 251 for j in range(size)), account_id="1",
        region_name="us-east-1",
    )
    parts.append(part)

checked = 0
for algorithm in [None, "CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"]:
    for kind in [None, "COMPOSITE", "FULL_OBJECT"]:
        builder = models.MultipartChecksumBuilder(algorithm, kind)
        for part in parts:
            builder.addPart(part.value)
        expected = builder.build()
        got = bench._multipart_checksum(parts, algorithm, kind)
        if tuple(got) != tuple(expected):
            raise SystemExit(f"{algorithm} {kind}: {got} != {expected}")
        checked += 1
print(f"ok {checked}")
sys.exit(0)
