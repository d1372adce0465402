// The lines of one byte range of a JSONL or CSV object, for chunks planned without reading the
// data (batches by reference). Hadoop's LineRecordReader rule: a line belongs to the range holding
// its first byte, so a reader of [start, end) drops the line in progress at `start` (it reads from
// start - 1 to see whether a line begins exactly there) and reads past `end` to finish its last
// line. Ranges that tile an object therefore yield every line once. A CSV header (the first line)
// belongs to no range.
const NL = 10;

export interface LineRangeOptions {
  /** Drop the object's first line (a CSV header). */
  skipHeader?: boolean;
  /** How far past `end` the last line may run before it is cut (it is then a too-long row anyway). */
  maxRowBytes: number;
}

/**
 * The bytes of the lines that begin in [start, end) of an object of `size` bytes. `read(from, to)`
 * streams bytes [from, to); the stream is abandoned (destroyed) once the last line is complete.
 */
export async function* lineRange(
  read: (from: number, to: number) => Promise<AsyncIterable<Uint8Array>>,
  start: number,
  end: number,
  size: number,
  opts: LineRangeOptions,
): AsyncGenerator<Buffer> {
  end = Math.min(end, size);
  if (start >= end) return;
  const from = start > 0 ? start - 1 : 0;
  // Before the first owned line: bytes up to and including a newline are dropped.
  let skipping = start > 0 || !!opts.skipHeader;
  // Past `end - 1` only the line in progress is finished; `done` once its newline is out.
  const limit = end + opts.maxRowBytes + 1;
  let pos = from;
  for await (const chunk of await read(from, size)) {
    let buf = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    let at = pos;
    pos += buf.length;
    if (skipping) {
      // The first newline at or after `from` ends the line that is not ours; never look past `end`.
      const i = buf.indexOf(NL);
      if (i < 0 || at + i >= end) {
        if (i >= 0 || pos >= end) return; // no line begins inside the range
        continue;
      }
      skipping = false;
      buf = buf.subarray(i + 1);
      at += i + 1;
      if (at >= end) return;
    }
    if (at + buf.length <= end) {
      yield buf;
      if (at + buf.length === end && buf[buf.length - 1] === NL) return;
      continue;
    }
    // This buffer crosses `end` (or lies past it): finish the line that holds byte end - 1.
    const own = Math.max(0, end - at); // bytes before `end`
    if (own > 0 && buf[own - 1] === NL) {
      yield buf.subarray(0, own);
      return;
    }
    const nl = buf.indexOf(NL, own);
    if (nl >= 0) {
      yield buf.subarray(0, nl + 1);
      return;
    }
    if (pos >= limit) {
      yield buf.subarray(0, Math.max(0, limit - at));
      return;
    }
    yield buf;
  }
}
