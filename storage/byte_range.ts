/** The byte range of a read (`ObjectStorage.readObject`), checked alike by both backends. */

/** A byte range `[start, end)` of an object: offsets from its first byte, `end` excluded. */
export interface ByteRange {
  start: number;
  end: number;
}

/**
 * Throws a `RangeError` ("empty or negative byte range 5-5: exports/…/x.csv") unless `range` is
 * absent or non-empty and starts at 0 or later, before the object `key` is read; the size of
 * the object is not checked here.
 */
export function checkByteRange(key: string, range: ByteRange | undefined): void {
  if (range && !(range.end > range.start && range.start >= 0)) {
    throw new RangeError(`empty or negative byte range ${range.start}-${range.end}: ${key}`);
  }
}
