// A batch chunk stored as a local file, read into buffers of about a segment's size that each end
// just after a newline (found by one search back from the buffer's end), so that the Segmenter
// hands each buffer to an engine thread as it is (Segmenter.pushOwned): no copy per segment, and
// half the buffers a stream's reads and their copies would make. Only the bytes after a buffer's
// last newline (under a row) are copied, to the front of the next. A buffer with no newline (a row
// longer than a buffer) goes out as it is; the Segmenter then copies or drops it as before.
import fs from 'node:fs/promises';

const NL = 10;

/** Bytes [start, end) of the file at `path` in buffers of about `size` bytes, each (but the last, and one with no newline) ending with '\n'. */
export async function* ownedLines(path: string, start: number, end: number, size: number): AsyncGenerator<Buffer> {
  const fh = await fs.open(path, 'r');
  try {
    let carry: Buffer | null = null;
    let pos = start;
    while (pos < end) {
      const c: number = carry ? carry.length : 0;
      // At least a quarter of `size` more, however long the row carried.
      const want = Math.min(Math.max(size - c, size >> 2, 1), end - pos);
      const buf = Buffer.allocUnsafeSlow(c + want);
      if (carry) carry.copy(buf, 0);
      carry = null;
      let got = 0;
      while (got < want) {
        const { bytesRead } = await fh.read(buf, c + got, want - got, pos + got);
        if (!bytesRead) break;
        got += bytesRead;
      }
      pos += got;
      const filled: number = c + got;
      if (got < want || pos >= end) {
        // The end (or a file shorter than its range, which the row count then reports).
        if (filled) yield filled === buf.length ? buf : buf.subarray(0, filled);
        return;
      }
      const nl: number = buf.lastIndexOf(NL, filled - 1);
      if (nl < 0) {
        yield buf;
        continue;
      }
      if (nl + 1 < filled) carry = Buffer.from(buf.subarray(nl + 1, filled));
      yield buf.subarray(0, nl + 1);
    }
  } finally {
    await fh.close();
  }
}
