// Where one chunk's output and error lines go while it is scored. An uploaded batch: its JSONL parts
// in the artifact store. A batch by reference: `part-NNNNN.<format>` and `_errors/part-NNNNN.jsonl`
// under its output prefix. CSV and Parquet parts are encoded by the engine threads from the output
// tensors (core/rows/output-encode.ts, `encodeSpec`), here only joined in order (the CSV header
// once, the Parquet row groups under one footer); an explained batch's lines are converted here
// from JSONL. The JSONL stays in the artifact store too when the format is not JSONL, for the
// download routes' other formats.
// Every part is a whole-object put under a deterministic key: a chunk run twice replaces it.
import { jsonlPart } from '../../core/batch-parts.ts';
import {
  batchOutputSpecs,
  csvClasses,
  explainOutputSpecs,
  outputPrefixKeys,
  versionedOutput,
  type BatchSpec,
  type PartInfo,
  type ScoreJob,
} from '../../core/jobs/batch.ts';
import { jsonlToCsv } from '../../core/rows/to-csv.ts';
import { jsonlToParquet } from '../../core/rows/to-parquet.ts';
import type { EncodedPiece, EncodeSpec } from '../../core/rows/output-encode.ts';
import { ParquetJoiner } from '../../core/rows/parquet-stitch.ts';
import type { ArtifactStore, PutResult } from '../../core/storage/index.ts';
import type { ObjectStores } from '../../core/storage/object-uris.ts';
import { ByteChannel } from './byte-channel.ts';

/** What the engine threads encode for a batch's parts (none: JSONL, or an explained or versioned batch, converted here). */
export function encodeSpec(spec: BatchSpec): EncodeSpec | undefined {
  const out = spec.output;
  // A batch of files or a pipeline is scored on the worker's main thread as JSONL lines: converted here.
  if (!out || out.format === 'jsonl' || spec.explain || versionedOutput(spec) || spec.model.processing || spec.model.pipeline) return undefined;
  const classes = csvClasses(spec);
  return { format: out.format, outputs: spec.model.outputs, ...(classes ? { classes } : {}) };
}

export class PartSink {
  private readonly outs: ByteChannel[] = [];
  /** The engine threads' pieces go here (encodeSpec), joined. */
  private encoded?: ByteChannel;
  private csvHeader = false;
  private joiner?: ParquetJoiner;
  private readonly err = new ByteChannel();
  private readonly written: Promise<PartInfo | undefined>;

  constructor(spec: BatchSpec, chunk: ScoreJob, platform: ArtifactStore, objects: ObjectStores | undefined) {
    const index = chunk.index;
    const put = (target: { store: ArtifactStore; key: string }, body: AsyncIterable<Uint8Array>) => target.store.put(target.key, body);
    const channel = () => {
      const c = new ByteChannel();
      this.outs.push(c);
      return c;
    };
    const errPut = put(jsonlPart(spec, 'errors', index, platform, objects), this.err);
    const jsonlPut = put(jsonlPart(spec, 'output', index, platform, objects), channel());
    let formatted: Promise<PutResult & { uri: string }> | undefined;
    const out = spec.output;
    if (out && out.format !== 'jsonl') {
      if (!objects) throw new Error(`batch ${spec.id} is by reference: its parts need the object stores`);
      const uri = outputPrefixKeys.part(out.uri, index, out.format);
      const outputs = [...batchOutputSpecs(spec), ...(spec.explain ? explainOutputSpecs(spec.explain) : [])];
      const body = encodeSpec(spec)
        ? (this.encoded = new ByteChannel())
        : out.format === 'csv'
          ? bytes(
              jsonlToCsv(
                channel() as AsyncIterable<Buffer>,
                outputs.map((o) => o.name),
                csvClasses(spec),
                versionedOutput(spec),
              ),
            )
          : jsonlToParquet(channel() as AsyncIterable<Buffer>, outputs, versionedOutput(spec));
      if (out.format === 'parquet' && this.encoded) this.joiner = new ParquetJoiner(outputs);
      formatted = put(objects.resolve(uri), body).then((r) => ({ ...r, uri }));
    }
    const all = Promise.all([jsonlPut, errPut, formatted]);
    all.catch((e: Error) => this.fail(e));
    this.written = all.then(([jsonl, errors, fmt]) => {
      if (!out) return undefined;
      const main = fmt ?? { ...jsonl, uri: outputPrefixKeys.part(out.uri, index, 'jsonl') };
      return {
        uri: main.uri,
        bytes: main.bytes,
        sha256: main.sha256,
        errorsUri: outputPrefixKeys.errors(out.uri, index),
        errorsBytes: errors.bytes,
        errorsSha256: errors.sha256,
        file: chunk.file ?? 0,
        start: chunk.start,
        end: chunk.end,
        firstRow: chunk.firstRow,
      };
    });
  }

  async pushOut(b: Uint8Array): Promise<void> {
    const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength); // the converters read Buffers
    for (const c of this.outs) await c.push(buf);
  }

  /** A segment's output as the engine thread encoded it (encodeSpec). */
  async pushFormatted(p: EncodedPiece | undefined): Promise<void> {
    const c = this.encoded;
    if (!c) return;
    if (!p) throw new Error('the engine thread did not encode the output');
    if (p.format === 'csv') {
      if (!p.rows) return;
      if (!this.csvHeader) await c.push(Buffer.from(p.header));
      this.csvHeader = true;
      await c.push(p.body);
      return;
    }
    for (const b of this.joiner!.push(p)) await c.push(b);
  }

  pushErr(b: Uint8Array): Promise<void> {
    return this.err.push(b);
  }

  /** Ends both parts and waits for them to be written; by reference, what the manifest lists. */
  async end(): Promise<PartInfo | undefined> {
    if (this.joiner) await this.encoded!.push(await this.joiner.end());
    for (const c of this.outs) c.end();
    this.encoded?.end();
    this.err.end();
    return this.written;
  }

  /** Fails every part: nothing is written. */
  fail(e: Error): void {
    for (const c of this.outs) c.fail(e);
    this.encoded?.fail(e);
    this.err.fail(e);
  }

  /** Settles once the puts have given up (after fail). */
  async settled(): Promise<void> {
    await this.written.catch(() => {});
  }
}

async function* bytes(text: AsyncIterable<string>): AsyncGenerator<Uint8Array> {
  for await (const s of text) yield Buffer.from(s);
}
