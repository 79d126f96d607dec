"""moto's S3 server for `deno task bench`, with multipart objects that are never held in memory.

moto 5 completes a multipart upload by joining every part into one bytes object in memory
(`FakeMultipart.complete`: a `bytearray` of the parts, then `bytes(...)` of it) and copies a
part (`UploadPartCopy`) by reading its whole source object into memory before slicing the
range. A 17 GB upload (`occurrences_api_json` at 1M occurrences) then needs ~34 GB of RAM, more
than the bench machine's 24 GiB, and composing its 4 GB shards needs 4 GB a copied part.

Here a completed object keeps its parts' files, read one after the other (`PartFiles`: the
parts' spooled files moved into the object, no byte copied; moto keeps an object beyond its key
buffer size in a temporary file), and a copied part reads only its range, 1 MiB at a time. The
rest is moto's: the same validation (every part listed with its ETag, every part but the last
at least 5 MiB), the same multipart ETag (MD5 of the parts' MD5s, `-<count>`) and checksums, the
same bytes; `moto.server.main` serves it with the arguments of `moto_server`. The tests keep
the unpatched `moto_server`; `bench/moto_server_test.ts` checks this one against it.
"""

import codecs
import io
import sys
import tempfile

from moto.s3 import models
from moto.s3.exceptions import EntityTooSmall, InvalidPart, MalformedXML
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


def complete(self, body):
    """`FakeMultipart.complete`, returning a `PartsValue` instead of the joined bytes."""
    checksum_algo = self.metadata.get("x-amz-checksum-algorithm")
    checksum_type = self.metadata.get("x-amz-checksum-type")
    decode_hex = codecs.getdecoder("hex_codec")
    md5s = bytearray()
    checksum_builder = models.MultipartChecksumBuilder(checksum_algo, checksum_type)
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
        if checksum_algo:
            checksum_builder.addPart(part.value)
        parts.append(part)
        last = part
    if not parts:
        raise MalformedXML
    self.completed_part_sizes = [part.size for part in parts]
    full_etag = md5_hash()
    full_etag.update(bytes(md5s))
    return PartsValue(parts), f"{full_etag.hexdigest()}-{len(parts)}", checksum_builder.build()


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


models.FakeMultipart.complete = complete
models.FakeKey.value = property(original_value.fget, set_value)
models.S3Backend.upload_part_copy = upload_part_copy

if __name__ == "__main__":
    sys.exit(main())
