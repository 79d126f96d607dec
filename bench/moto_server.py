"""moto's S3 server for `deno task bench`, with multipart objects that are never held in memory.

moto 5 completes a multipart upload by joining every part into one bytes object in memory
(`FakeMultipart.complete`: a `bytearray` of the parts, then `bytes(...)` of it) and copies a
part (`UploadPartCopy`) by reading its whole source object into memory before slicing the
range, and builds a full-object checksum (CRC64NVME, its default) over the whole object joined in
memory. A 17 GB upload (`occurrences_api_json` at 1M occurrences) then needs ~34 GB of RAM, more
than the bench machine's 24 GiB (the first try of a bench moto that kept the part files but still
built the checksum that way was killed by the kernel at 21 GB), and composing its 4 GB shards
needs 4 GB a copied part.

Here a completed object keeps its parts' files, read one after the other (`PartFiles`: the
parts' spooled files moved into the object, no byte copied; moto keeps an object beyond its key
buffer size in a temporary file), a copied part reads only its range and the checksum reads the
parts' files, 1 MiB at a time, and a `GetObject` of a key of at least 64 MiB
(`BENCH_MOTO_STREAM_GET_MIN_BYTES`) is sent 1 MiB at a time as it is read (`StreamedBody`):
moto's answered with the whole object as one bytes value, and the read-back that checksums a
composed 17 GB file had the bench moto killed by the kernel at 23 GB. The
rest is moto's: the same validation (every part listed with its ETag, every part but the last
at least 5 MiB), the same multipart ETag (MD5 of the parts' MD5s, `-<count>`) and checksums, the
same bytes; `moto.server.main` serves it with the arguments of `moto_server`. The tests keep
the unpatched `moto_server`; `bench/moto_server_test.ts` checks this one against it.
"""

import base64
import binascii
import codecs
import hashlib
import io
import os
import sys
import tempfile
import threading

from moto.core.compat import HAS_CRT
from moto.s3 import models
from moto.s3.exceptions import EntityTooSmall, InvalidPart, MalformedXML
from moto.s3.responses import S3Response
from moto.server import main
from moto.settings import S3_UPLOAD_PART_MIN_SIZE
from moto.utilities.utils import md5_hash

CHUNK = 1 << 20


class PartFiles(io.RawIOBase):
    """Read-only file over the files of a completed upload's parts, in part order."""

    def __init__(self, files, sizes):
        super().__init__()
        self.files = files
        self.sizes = sizes
        self.size = sum(sizes)
        self.position = 0

    def readable(self):
        return True

    def seekable(self):
        return True

    def tell(self):
        return self.position

    def seek(self, offset, whence=io.SEEK_SET):
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence]
        self.position = max(0, base + offset)
        return self.position

    def read(self, size=-1):
        end = self.size if size is None or size < 0 else min(self.size, self.position + size)
        out = bytearray()
        start = 0
        for file, length in zip(self.files, self.sizes):
            if self.position < end and self.position < start + length:
                file.seek(self.position - start)
                chunk = file.read(min(end, start + length) - self.position)
                out += chunk
                self.position += len(chunk)
            start += length
        return bytes(out)

    def truncate(self, size=None):
        if size not in (None, 0) or self.size:
            raise io.UnsupportedOperation("a completed upload is read-only")
        return 0

    def close(self):
        for file in self.files:
            file.close()
        super().close()


class PartsValue:
    """What `complete` hands to the new key: the parts' files, moved out of the parts."""

    def __init__(self, parts):
        sizes = [part.contentsize for part in parts]
        files = []
        for part in parts:
            with part.lock:
                files.append(part._value_buffer)
                # the part is disposed with its upload: let it close an empty file, not ours
                part._value_buffer = tempfile.SpooledTemporaryFile(1)
        self.file = PartFiles(files, sizes)

    def __len__(self):
        return self.file.size


def _file_chunks(file, start=0, end=None):
    """The bytes of `file` from `start` to `end` (None: its end), CHUNK at a time."""
    file.seek(start)
    while end is None or start < end:
        chunk = file.read(CHUNK if end is None else min(CHUNK, end - start))
        if not chunk:
            return
        start += len(chunk)
        yield chunk


def _checksum(chunks, algorithm):
    """`moto.s3.utils.compute_checksum(b"".join(chunks), algorithm, encode_base64=False)`, streamed:
    the same algorithms and the same fallbacks (CRC32 where `crc32c` or `awscrt` is missing)."""
    if algorithm == "SHA1":
        digest = hashlib.sha1(usedforsecurity=False)
    elif algorithm not in ("CRC32", "CRC32C", "CRC64NVME"):
        digest = hashlib.sha256(usedforsecurity=False)
    else:
        digest = None
    if digest is not None:
        for chunk in chunks:
            digest.update(chunk)
        return digest.digest()
    if algorithm == "CRC32C":
        try:
            import crc32c

            value = 0
            for chunk in chunks:
                value = crc32c.crc32c(chunk, value)
            return value.to_bytes(4, "big")
        except ImportError:
            pass
    if algorithm == "CRC64NVME" and HAS_CRT:
        from awscrt import checksums

        value = 0
        for chunk in chunks:
            value = checksums.crc64nvme(chunk, value)
        return value.to_bytes(8, "big")
    value = 0
    for chunk in chunks:
        value = binascii.crc32(chunk, value)
    return value.to_bytes(4, "big")


def _multipart_checksum(parts, checksum_algo, checksum_type):
    """`MultipartChecksumBuilder` over `parts` (its `addPart` of each, then `build`), reading the
    parts' files CHUNK at a time: moto's builder joins the whole object in memory for a
    FULL_OBJECT checksum (CRC64NVME, its default), 17 GB for the bench's largest file."""
    builder = models.MultipartChecksumBuilder(checksum_algo, checksum_type)
    algorithm, kind = builder.checksum_algorithm, builder.checksum_type
    if kind == "COMPOSITE":
        joined = b"".join(
            _checksum(_file_chunks(part._value_buffer), algorithm) for part in parts
        )
        return kind, base64.b64encode(_checksum([joined], algorithm)).decode(), len(parts)
    chunks = (chunk for part in parts for chunk in _file_chunks(part._value_buffer))
    return kind, base64.b64encode(_checksum(chunks, algorithm)).decode(), 1


def complete(self, body):
    """`FakeMultipart.complete`, returning a `PartsValue` instead of the joined bytes."""
    checksum_algo = self.metadata.get("x-amz-checksum-algorithm")
    checksum_type = self.metadata.get("x-amz-checksum-type")
    decode_hex = codecs.getdecoder("hex_codec")
    md5s = bytearray()
    parts = []
    last = None
    for pn, etag in body:
        part = self.parts.get(pn)
        part_etag = None
        if part is not None:
            part_etag = part.etag.replace('"', "")
            etag = etag.replace('"', "")
        if part is None or part_etag != etag:
            raise InvalidPart()
        if last is not None and last.contentsize < S3_UPLOAD_PART_MIN_SIZE:
            raise EntityTooSmall()
        md5s.extend(decode_hex(part_etag)[0])
        parts.append(part)
        last = part
    if not parts:
        raise MalformedXML
    self.completed_part_sizes = [part.size for part in parts]
    full_etag = md5_hash()
    full_etag.update(bytes(md5s))
    checksum = _multipart_checksum(parts, checksum_algo, checksum_type)
    return PartsValue(parts), f"{full_etag.hexdigest()}-{len(parts)}", checksum


original_value = models.FakeKey.value


def set_value(self, new_value):
    """The key's value setter: a `PartsValue`'s files become the key's, no byte copied."""
    if not isinstance(new_value, PartsValue):
        original_value.fset(self, new_value)
        return
    self._value_buffer.close()
    self._value_buffer = new_value.file
    self.contentsize = new_value.file.size


def upload_part_copy(
    self,
    dest_bucket_name,
    multipart_id,
    part_id,
    src_bucket_name,
    src_key_name,
    src_version_id,
    start_byte,
    end_byte,
):
    """`S3Backend.upload_part_copy`, reading only the range, 1 MiB at a time."""
    multipart = self.get_bucket(dest_bucket_name).multiparts[multipart_id]
    source = self.get_object(src_bucket_name, src_key_name, version_id=src_version_id)
    start = 0 if start_byte is None else start_byte
    end = source.contentsize if start_byte is None else min(source.contentsize, end_byte + 1)
    part = multipart.set_part(part_id, b"")
    written = 0
    with source.lock:
        source._value_buffer.seek(start)
        while start + written < end:
            chunk = source._value_buffer.read(min(CHUNK, end - start - written))
            if not chunk:
                break
            part._value_buffer.write(chunk)
            written += len(chunk)
    part.contentsize = written
    part._etag = None  # computed from the bytes when first asked
    return part


class StreamedBody:
    """The bytes of `key` from `start` to `end`, read CHUNK at a time as they are sent.

    What `get_object` answers with for a large key instead of `key.value` (moto's: the whole
    object as one bytes value, 17 GB for the bench's largest file). moto's range handler takes
    its `len` and slices it (`[begin : end + 1]`); Flask sends an iterable body as it comes.
    """

    def __init__(self, key, start=0, end=None):
        self.key = key
        self.start = start
        self.end = key.contentsize if end is None else end

    def __len__(self):
        return max(0, self.end - self.start)

    def __bool__(self):
        return len(self) > 0

    def __getitem__(self, span):
        if not isinstance(span, slice) or span.step is not None:
            raise TypeError("a StreamedBody is sliced by a plain range only")
        begin = min(self.end, self.start + (span.start or 0))
        stop = self.end if span.stop is None else min(self.end, self.start + span.stop)
        return StreamedBody(self.key, begin, max(begin, stop))

    def __iter__(self):
        position = self.start
        while position < self.end:
            with self.key.lock:
                self.key._value_buffer.seek(position)
                chunk = self.key._value_buffer.read(min(CHUNK, self.end - position))
            if not chunk:
                return
            position += len(chunk)
            yield chunk


# keys of at least this many bytes are streamed by `get_object` (the tests stream every one)
STREAM_GET_MIN_BYTES = int(os.environ.get("BENCH_MOTO_STREAM_GET_MIN_BYTES", 64 * CHUNK))
_in_get_object = threading.local()
original_get_object = S3Response.get_object


def get_object(self):
    """`S3Response.get_object`, whose `key.value` is a `StreamedBody` for a large key."""
    _in_get_object.on = True
    try:
        return original_get_object(self)
    finally:
        _in_get_object.on = False


def get_value(self):
    """The key's value getter: streamed inside `get_object` for a large key, else moto's."""
    if getattr(_in_get_object, "on", False) and self.contentsize >= STREAM_GET_MIN_BYTES:
        return StreamedBody(self)
    return original_value.fget(self)


models.FakeMultipart.complete = complete
models.FakeKey.value = property(get_value, set_value)
models.S3Backend.upload_part_copy = upload_part_copy
S3Response.get_object = get_object

if __name__ == "__main__":
    sys.exit(main())
