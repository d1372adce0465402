// Counts the rows of a JSONL or CSV stream and records chunk boundaries as byte offsets while the
// bytes flow to the store, so a file of any size is split without being held in memory. A row is a
// line with something other than whitespace on it; in CSV, newlines inside quotes do not end a row,
// and the first row is the header.
export type RowFormat = 'jsonl' | 'csv';

/** The CSV header is longer than allowed (it is the one row the scanner holds in memory). */
export class HeaderTooLongError extends Error {
  constructor(readonly maxBytes: number) {
    super(`the CSV header is longer than ${maxBytes} bytes (MODELQ_MAX_ROW_BYTES)`);
  }
}

export interface ChunkRange {
  index: number;
  /** Byte range [start, end) of the file holding the chunk's rows. */
  start: number;
  end: number;
  /** Row number (from 0, the CSV header not counted) of the chunk's first row. */
  firstRow: number;
  rows: number;
}

export interface ScanResult {
  bytes: number;
  rows: number;
  chunks: ChunkRange[];
  /** CSV only: the header line, without its newline. */
  header?: string;
}

const NL = 10;
const QUOTE = 34;
const isSpace = (b: number) => b === 32 || b === 9 || b === 13;

export class RowScanner {
  private offset = 0; // bytes seen before the current buffer
  private lineStart = 0;
  private lineHasContent = false;
  private inQuotes = false;
  private rows = 0;
  private chunkStart = -1;
  private chunkFirstRow = 0;
  private chunkRowCount = 0;
  private readonly chunks: ChunkRange[] = [];
  private header?: string;
  private headerParts: Buffer[] = [];
  private headerBytes = 0;
  private seenHeader: boolean;
  private readonly format: RowFormat;
  private readonly chunkRows: number;
  private readonly chunkBytes: number;
  private readonly maxRows: number;
  private readonly maxHeaderBytes: number;
  private readonly onRow?: (start: number, end: number) => void;

  /**
   * A chunk closes after `chunkRows` rows or once it holds `chunkBytes` bytes (default: no bound),
   * whichever comes first. `header`: the first row is a header (default: true for CSV), at most
   * `maxHeaderBytes` long (default: no bound). `onRow` is called with the byte range of every row.
   */
  constructor(
    format: RowFormat,
    opts: {
      chunkRows?: number;
      chunkBytes?: number;
      maxRows?: number;
      maxHeaderBytes?: number;
      header?: boolean;
      onRow?: (start: number, end: number) => void;
    } = {},
  ) {
    this.format = format;
    this.chunkRows = opts.chunkRows ?? Infinity;
    this.chunkBytes = opts.chunkBytes ?? Infinity;
    this.maxRows = opts.maxRows ?? Infinity;
    this.maxHeaderBytes = opts.maxHeaderBytes ?? Infinity;
    this.onRow = opts.onRow;
    this.seenHeader = !(opts.header ?? format === 'csv');
  }

  push(buf: Buffer): void {
    const csv = this.format === 'csv';
    let pos = 0;
    while (pos < buf.length) {
      if (!this.lineHasContent) {
        // Skip leading whitespace; the first other byte makes this line a row.
        while (pos < buf.length && isSpace(buf[pos]!)) pos++;
        if (pos >= buf.length) break;
        if (buf[pos] === NL) {
          pos++;
          this.lineStart = this.offset + pos;
          continue;
        }
        this.lineHasContent = true;
      }
      let nl: number;
      if (csv) {
        nl = -1;
        while (pos < buf.length) {
          const q = buf.indexOf(QUOTE, pos);
          const n = this.inQuotes ? -1 : buf.indexOf(NL, pos);
          if (q >= 0 && (n < 0 || q < n)) {
            this.inQuotes = !this.inQuotes;
            pos = q + 1;
            continue;
          }
          if (this.inQuotes || n < 0) {
            pos = buf.length;
            break;
          }
          nl = n;
          break;
        }
        if (!this.seenHeader) this.keepHeader(buf.subarray(Math.max(0, this.lineStart - this.offset), nl < 0 ? buf.length : nl));
      } else {
        nl = buf.indexOf(NL, pos);
      }
      if (nl < 0) break;
      this.endRow(this.offset + nl + 1);
      pos = nl + 1;
    }
    this.offset += buf.length;
  }

  /** Chunks closed so far (the caller bounds how many a file may make while it streams). */
  get chunkCount(): number {
    return this.chunks.length;
  }

  /** The chunks closed so far (read while the bytes still arrive: each may be stored and scored at once). */
  get closedChunks(): readonly ChunkRange[] {
    return this.chunks;
  }

  /** The CSV header line once read (undefined before, and for JSONL). */
  get headerLine(): string | undefined {
    return this.header;
  }

  /** The first byte a chunk not closed yet may hold: bytes before it are in closed chunks, a header or blank lines. */
  get pendingFrom(): number {
    return this.chunkStart >= 0 ? this.chunkStart : this.lineHasContent ? this.lineStart : this.offset;
  }

  /** The start of the row being read when it has not ended yet, else -1 (bounds a row's bytes). */
  get openRowStart(): number {
    return this.lineHasContent ? this.lineStart : -1;
  }

  private keepHeader(part: Buffer) {
    this.headerBytes += part.length;
    if (this.headerBytes > this.maxHeaderBytes) throw new HeaderTooLongError(this.maxHeaderBytes);
    this.headerParts.push(part);
  }

  private endRow(end: number) {
    if (!this.seenHeader) {
      this.seenHeader = true;
      this.header = Buffer.concat(this.headerParts)
        .toString('utf8')
        .replace(/\r?\n?$/, '');
      this.headerParts = [];
    } else {
      if (this.chunkStart < 0) {
        this.chunkStart = this.lineStart;
        this.chunkFirstRow = this.rows;
      }
      this.rows++;
      if (this.rows > this.maxRows) throw new RangeError(`more than ${this.maxRows} rows`);
      this.onRow?.(this.lineStart, end);
      this.chunkRowCount++;
      if (this.chunkRowCount >= this.chunkRows || end - this.chunkStart >= this.chunkBytes) this.closeChunk(end);
    }
    this.lineStart = end;
    this.lineHasContent = false;
  }

  private closeChunk(end: number) {
    if (this.chunkRowCount === 0) return;
    this.chunks.push({ index: this.chunks.length, start: this.chunkStart, end, firstRow: this.chunkFirstRow, rows: this.chunkRowCount });
    this.chunkStart = -1;
    this.chunkRowCount = 0;
  }

  end(): ScanResult {
    if (this.lineHasContent) this.endRow(this.offset); // last line without a newline
    this.closeChunk(this.offset);
    return { bytes: this.offset, rows: this.rows, chunks: this.chunks, ...(this.header !== undefined ? { header: this.header } : {}) };
  }
}

/** The rows of a chunk already in memory, as strings (without their newline). */
export function splitRows(buf: Buffer, format: RowFormat): string[] {
  if (format === 'jsonl') {
    // No quoting in JSONL: split the text at once; blank means only spaces, tabs and CRs, as above.
    return buf
      .toString('utf8')
      .split('\n')
      .map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l))
      .filter((l) => !/^[ \t\r]*$/.test(l));
  }
  const out: string[] = [];
  const scanner = new RowScanner(format, { header: false, onRow: (start, end) => out.push(buf.toString('utf8', start, end).replace(/\r?\n$/, '')) });
  scanner.push(buf);
  scanner.end();
  return out;
}
