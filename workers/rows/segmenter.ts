// Cuts the byte stream of one batch chunk into segments of whole rows, for the engine threads to
// parse and score in parallel. Memory is bounded: a segment holds at most `segmentRows` rows or
// about `segmentBytes` bytes, and a row longer than `maxRowBytes` is never held; it comes out as
// a `long` item (an error row) while its bytes are skipped.
import { RowScanner, type RowFormat } from '../../core/rows/scanner.ts';

/**
 * Buffers handed to the engine threads by move rather than by copy: a segment that is exactly one
 * buffer given to pushOwned is that buffer, whose memory (a tail already copied out included) the
 * engine transfers (workers/engine/engine.ts).
 */
/** A segment's most bytes (about: it ends at the row end at or past it). */
export const SEGMENT_BYTES = 2 * 1024 * 1024;

export const movedBuffers = new WeakSet<ArrayBufferLike>();

export type Segment =
  /** `firstRow`: the index, within the stream, of the segment's first row. */
  { kind: 'rows'; bytes: Buffer; firstRow: number; rows: number } | { kind: 'long'; row: number; bytes: number };

export interface SegmenterOptions {
  /** Default 1024 rows. */
  segmentRows?: number;
  /** Default 2 MiB. */
  segmentBytes?: number;
  /** Default 16 MiB (MODELQ_MAX_ROW_BYTES). */
  maxRowBytes?: number;
}

interface Piece {
  start: number;
  buf: Buffer;
  /** Given by pushOwned: no one else reads its memory. */
  owned?: boolean;
}

export class Segmenter {
  private readonly scanner: RowScanner;
  private readonly segmentRows: number;
  private readonly segmentBytes: number;
  private readonly maxRowBytes: number;
  /** Bytes not yet handed out, by absolute offset; there may be a gap where a long row was dropped. */
  private held: Piece[] = [];
  private offset = 0;
  private segStart = 0;
  private segRows = 0;
  private segFirstRow = 0;
  private rows = 0;
  /** Start of the long row being skipped, or -1. */
  private dropping = -1;
  private out: Segment[] = [];

  constructor(format: RowFormat, opts: SegmenterOptions = {}) {
    this.segmentRows = opts.segmentRows ?? 1024;
    this.segmentBytes = opts.segmentBytes ?? SEGMENT_BYTES;
    this.maxRowBytes = opts.maxRowBytes ?? 16 * 1024 * 1024;
    this.scanner = new RowScanner(format, { header: false, onRow: (s, e) => this.onRow(s, e) });
  }

  /** Rows seen so far (long ones included). */
  get rowCount(): number {
    return this.rows;
  }

  push(buf: Buffer): Segment[] {
    this.add({ start: this.offset, buf });
    return this.take();
  }

  /** Takes a piece in; returns the start of the row still open after it (-1: none), after cutting one that is too long. */
  private add(piece: Piece): number {
    this.held.push(piece);
    this.offset += piece.buf.length;
    this.scanner.push(piece.buf);
    const open = this.scanner.openRowStart;
    if (open >= 0 && this.dropping < 0 && this.offset - open > this.maxRowBytes) {
      // The row in progress is too long: hand out the rows before it, then forget its bytes.
      this.emit(open);
      this.dropping = open;
    }
    if (this.dropping >= 0 && open === this.dropping) this.cut(this.dropping);
    return open;
  }

  /**
   * Bytes the caller gives away (it neither reads nor writes their memory again) that end at a row's
   * end, or at the stream's: the rows they complete go out now, and when those rows are exactly this
   * buffer, the segment is the buffer itself, not a copy (ownedLines in line-buffers.ts).
   */
  pushOwned(buf: Buffer): Segment[] {
    const open = this.add({ start: this.offset, buf, owned: true });
    if (open < 0 && this.dropping < 0) this.emit(this.offset);
    return this.take();
  }

  end(): Segment[] {
    this.scanner.end();
    this.emit(this.offset);
    return this.take();
  }

  private take(): Segment[] {
    const out = this.out;
    this.out = [];
    return out;
  }

  private onRow(start: number, end: number) {
    if (start === this.dropping || end - start > this.maxRowBytes) {
      if (start !== this.dropping) this.emit(start); // a long row that arrived in one piece
      this.dropping = -1;
      this.out.push({ kind: 'long', row: this.rows++, bytes: end - start });
      this.segStart = end;
      this.segFirstRow = this.rows;
      this.trim(end);
      return;
    }
    if (this.segRows === 0) this.segFirstRow = this.rows;
    this.rows++;
    this.segRows++;
    if (this.segRows >= this.segmentRows || end - this.segStart >= this.segmentBytes) this.emit(end);
  }

  /** Hands out the rows in [segStart, end) as one segment. */
  private emit(end: number) {
    if (this.segRows > 0) {
      this.out.push({ kind: 'rows', bytes: this.slice(this.segStart, end), firstRow: this.segFirstRow, rows: this.segRows });
      this.segRows = 0;
    }
    this.segStart = end;
    this.segFirstRow = this.rows;
    this.trim(end);
  }

  /** The held bytes [a, b): the segment travels to another thread, so it owns its memory (a copy, or an owned piece itself). */
  private slice(a: number, b: number): Buffer {
    const only = this.held.find((p) => p.start <= a && b <= p.start + p.buf.length);
    if (only?.owned && only.start === a && only.start + only.buf.length === b) {
      movedBuffers.add(only.buf.buffer);
      return only.buf;
    }
    const out = Buffer.allocUnsafeSlow(b - a);
    for (const p of this.held) {
      const s = Math.max(a, p.start);
      const e = Math.min(b, p.start + p.buf.length);
      if (e > s) p.buf.copy(out, s - a, s - p.start, e - p.start);
    }
    return out;
  }

  /** Forgets held bytes before `at`. */
  private trim(at: number) {
    while (this.held.length && this.held[0]!.start + this.held[0]!.buf.length <= at) this.held.shift();
  }

  /** Forgets held bytes from `at` on (the long row's). */
  private cut(at: number) {
    this.held = this.held.filter((p) => p.start < at).map((p) => (p.start + p.buf.length > at ? { start: p.start, buf: p.buf.subarray(0, at - p.start) } : p));
  }
}
