// Reading an OpenAI batch's input file: its lines with their byte ranges, a line past the limit
// refused where it is found, and the model a line names.

/** A line of the input file is longer than the limit: validation stops there. */
export class LineTooLongError extends Error {
  constructor(
    readonly line: number,
    readonly maxBytes: number,
  ) {
    super(`line ${line} is longer than ${maxBytes} bytes (MODELQ_OPENAI_MAX_LINE_BYTES)`);
  }
}

/** The model reference of a line: from the url for the inference protocol, from the body for embeddings. */
export function modelRefOf(url: string, body: unknown): string | null {
  const m = /^\/v2\/models\/([^/]+)(?:\/versions\/([^/]+))?\/infer$/.exec(url);
  if (m) return m[2] ? `${m[1]}@${m[2]}` : m[1]!;
  const model = (body as { model?: unknown } | null)?.model;
  return typeof model === 'string' && model.length > 0 && model.length <= 200 ? model : null;
}

/**
 * Yields each line of a stream with its byte range [start, end) including the newline. The pieces
 * of a line are joined once, when it ends (joining at every read made a long line quadratic), and a
 * line past `maxBytes` throws LineTooLongError as soon as that many bytes are seen.
 */
export async function* linesOf(
  stream: AsyncIterable<Buffer>,
  maxBytes = Infinity,
  check: () => void = () => {},
): AsyncGenerator<{ text: string; start: number; end: number }> {
  let pieces: Buffer[] = [];
  let held = 0; // bytes of the current line in `pieces`
  let start = 0; // file offset of the current line
  let line = 1;
  const tooLong = () => new LineTooLongError(line, maxBytes);
  for await (const chunk of stream) {
    check(); // also within one long line
    let at = 0;
    let nl: number;
    while ((nl = chunk.indexOf(10, at)) >= 0) {
      const len = held + nl - at + 1;
      if (len > maxBytes) throw tooLong();
      const tail = chunk.subarray(at, nl);
      const text = held ? Buffer.concat([...pieces, tail]).toString('utf8') : tail.toString('utf8');
      yield { text, start, end: start + len };
      start += len;
      line++;
      pieces = [];
      held = 0;
      at = nl + 1;
    }
    if (at < chunk.length) {
      held += chunk.length - at;
      if (held > maxBytes) throw tooLong();
      pieces.push(Buffer.from(chunk.subarray(at)));
    }
  }
  if (held) yield { text: Buffer.concat(pieces).toString('utf8'), start, end: start + held };
}
