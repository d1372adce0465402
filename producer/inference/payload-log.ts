// Payload logs on the producer: the inference service offers every answered (or failed) request;
// the model's logging setting (core/payload-logs.ts, read through a one-second cache) decides whether
// it is sampled. A sampled request is redacted and turned into a record after the answer has gone
// (setImmediate), buffered per version and hour, and written as a Parquet part to the store once the
// part is big enough or old enough. The buffer is bounded: past it records are dropped and counted,
// never waited for. `close` writes what is buffered (the producer's shutdown).
import { randomUUID } from 'node:crypto';
import type { Config } from '../../core/config.ts';
import type { WireTensor } from '../../core/jobs/infer.ts';
import type { Logger } from '../../core/logger.ts';
import {
  effectiveConfig,
  encodeLogPart,
  hourOf,
  logPartKey,
  redactor,
  type LoggingConfig,
  type LoggingConfigs,
  type PayloadRecord,
  type Redactor,
} from '../../core/payload-logs.ts';
import type { VersionRecord } from '../../core/registry.ts';
import type { ArtifactStore } from '../../core/storage/artifact-store.ts';

/** What the service knows of a request once it is answered or failed. */
export interface LoggedRequest {
  model: VersionRecord;
  /** The model's owner: whose logs these are. */
  owner: string;
  /** The alias the request named (`latest` when none), null when it named a version number. */
  alias: string | null;
  tenant: string;
  keyId: string;
  clientId: string | undefined;
  inputs: readonly WireTensor[];
  outputs: readonly WireTensor[] | null;
  latencyMs: number;
  error: string | null;
}

interface Group {
  tenant: string;
  model: string;
  version: number;
  records: PayloadRecord[];
  bytes: number;
  since: number;
}

interface Cached {
  at: number;
  settings: Map<string, LoggingConfig> | null;
  /** While the setting is being read: requests meanwhile wait for it. */
  reading?: Promise<void>;
}

const CACHE_MS = 1000;

export type PayloadLogConfig = Pick<
  Config,
  | 'MODELQ_PAYLOAD_LOG_FLUSH_MS'
  | 'MODELQ_PAYLOAD_LOG_PART_MB'
  | 'MODELQ_PAYLOAD_LOG_BUFFER_MB'
  | 'MODELQ_PAYLOAD_LOG_MAX_RECORD_KB'
  | 'MODELQ_PAYLOAD_LOG_CODEC'
>;

export class PayloadLogger {
  /** Records written to the store, dropped (buffer full) and lost (a part's write failed). */
  readonly counts = { sampled: 0, written: 0, dropped: 0, failed: 0, parts: 0 };
  private readonly cache = new Map<string, Cached>();
  private readonly redactors = new Map<string, Redactor>();
  private readonly groups = new Map<string, Group>();
  private readonly writes = new Set<Promise<void>>();
  /** Settings being read with requests waiting on them, and sampled requests not yet captured. */
  private readonly pending = new Set<Promise<void>>();
  /** Bytes buffered or being written. */
  private held = 0;
  private readonly timer: NodeJS.Timeout;
  private closed = false;

  constructor(
    private readonly configs: LoggingConfigs,
    private readonly store: ArtifactStore,
    private readonly cfg: PayloadLogConfig,
    private readonly logger: Logger,
    private readonly random: () => number = Math.random,
  ) {
    this.timer = setInterval(() => this.flushDue(), Math.min(1000, cfg.MODELQ_PAYLOAD_LOG_FLUSH_MS)).unref();
  }

  /** Drops the cached setting of `model` (after a PUT through this producer). */
  forget(model: string): void {
    this.cache.delete(model);
  }

  /** Called for every request the service answered or failed after checking it; costs a map lookup unless sampled. */
  offer(r: LoggedRequest): void {
    if (this.closed) return;
    const c = this.cache.get(r.model.name);
    // The record's time is the answer's, even when the setting is read from Redis first.
    const now = Date.now();
    if (c?.reading) return this.track(c.reading.then(() => this.decide(c.settings, r, now)));
    if (c && now - c.at < CACHE_MS) return this.decide(c.settings, r, now);
    const entry: Cached = { at: now, settings: c?.settings ?? null };
    this.cache.set(r.model.name, entry);
    entry.reading = this.configs.all(r.model.name).then(
      (settings) => {
        entry.settings = settings.size ? settings : null;
      },
      (e: Error) => {
        // Redis trouble: the last known setting holds until it answers again.
        this.logger.warn({ err: e.message, model: r.model.name }, 'payload log setting not read');
      },
    );
    this.track(
      entry.reading.then(() => {
        entry.at = Date.now();
        delete entry.reading;
        this.decide(entry.settings, r, now);
      }),
    );
  }

  private track(p: Promise<void>): void {
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
  }

  private decide(settings: Map<string, LoggingConfig> | null, r: LoggedRequest, time: number): void {
    if (!settings) return;
    const cfg = effectiveConfig(settings, r.alias);
    if (!cfg || cfg.sample <= 0 || this.random() >= cfg.sample) return;
    this.counts.sampled++;
    // After the answer: redaction and JSON cost the sampled requests only, and never their answer's time.
    this.track(new Promise<void>((done) => setImmediate(() => (this.capture(r, cfg, time), done()))));
  }

  private capture(r: LoggedRequest, cfg: LoggingConfig, time: number): void {
    let redact = this.redactors.get(cfg.redact.join('\n'));
    if (!redact) {
      if (this.redactors.size > 1000) this.redactors.clear();
      this.redactors.set(cfg.redact.join('\n'), (redact = redactor(cfg.redact)));
    }
    let inputs: string | null = null;
    let outputs: string | null = null;
    let truncated = false;
    // Every element takes at least two characters of JSON ("0,"): a payload surely too large is never converted.
    const elements = [...r.inputs, ...(r.outputs ?? [])].reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
    if (2 * elements > this.cfg.MODELQ_PAYLOAD_LOG_MAX_RECORD_KB * 1024) truncated = true;
    else
      try {
        inputs = JSON.stringify(redact(r.inputs, 'input'));
        outputs = r.outputs ? JSON.stringify(redact(r.outputs, 'output')) : null;
      } catch (e) {
        this.logger.warn({ err: (e as Error).message, model: r.model.name }, 'payload not logged: its tensors could not be read');
        inputs = outputs = null;
        truncated = true;
      }
    if ((inputs?.length ?? 0) + (outputs?.length ?? 0) > this.cfg.MODELQ_PAYLOAD_LOG_MAX_RECORD_KB * 1024) {
      inputs = outputs = null;
      truncated = true;
    }
    const record: PayloadRecord = {
      request_id: randomUUID(),
      client_id: r.clientId ?? null,
      time,
      tenant: r.tenant,
      key_id: r.keyId,
      model: r.model.name,
      version: r.model.version,
      alias: r.alias,
      latency_ms: Math.round(r.latencyMs * 1000) / 1000,
      inputs,
      outputs,
      error: r.error,
      truncated,
    };
    // JS strings: about 2 bytes a character held in memory; the metadata columns besides.
    const bytes = 2 * ((inputs?.length ?? 0) + (outputs?.length ?? 0)) + 256;
    if (this.held + bytes > this.cfg.MODELQ_PAYLOAD_LOG_BUFFER_MB * 1024 * 1024) {
      this.counts.dropped++;
      return;
    }
    this.held += bytes;
    const key = `${r.owner}/${r.model.name}/${r.model.version}/${hourOf(time)}`;
    let g = this.groups.get(key);
    if (!g) this.groups.set(key, (g = { tenant: r.owner, model: r.model.name, version: r.model.version, records: [], bytes: 0, since: Date.now() }));
    g.records.push(record);
    g.bytes += bytes;
    if (g.bytes >= this.cfg.MODELQ_PAYLOAD_LOG_PART_MB * 1024 * 1024) this.write(key, g);
  }

  private flushDue(): void {
    const now = Date.now();
    for (const [key, g] of this.groups) if (now - g.since >= this.cfg.MODELQ_PAYLOAD_LOG_FLUSH_MS || hourOf(now) !== key.slice(-13)) this.write(key, g);
  }

  private write(key: string, g: Group): void {
    this.groups.delete(key);
    let first = Infinity;
    let last = -Infinity;
    for (const x of g.records) {
      first = Math.min(first, x.time);
      last = Math.max(last, x.time);
    }
    const part = logPartKey(g.tenant, g.model, g.version, first, last);
    const w = (async () => {
      try {
        await this.store.put(part, encodeLogPart(g.records, this.cfg.MODELQ_PAYLOAD_LOG_CODEC));
        this.counts.written += g.records.length;
        this.counts.parts++;
      } catch (e) {
        this.counts.failed += g.records.length;
        this.logger.warn({ err: (e as Error).message, part, records: g.records.length }, 'payload log part not written');
      } finally {
        this.held -= g.bytes;
      }
    })();
    this.writes.add(w);
    void w.finally(() => this.writes.delete(w));
  }

  /** Writes every buffered record now (records still being captured included) and waits for every write. */
  async flush(): Promise<void> {
    while (this.pending.size) await Promise.all([...this.pending]);
    for (const [key, g] of this.groups) this.write(key, g);
    await Promise.all([...this.writes]);
  }

  /** The producer's shutdown: no more records; what is buffered is written. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    await this.flush();
  }
}
