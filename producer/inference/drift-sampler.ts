// Samples online requests into their version's drift window: a share (MODELQ_DRIFT_SAMPLE) of the
// requests of versions that have a reference profile is binned here, counts gather in memory (an
// array of bins per feature) and go to Redis in one script call per version every FLUSH_MS, so a
// sampled request costs a bin search and an increment per feature, and an unsampled one a random draw.
import {
  addBins,
  binFields,
  DriftWindows,
  featureRows,
  newBinCounts,
  profileCache,
  type BinCounts,
  type DriftProfile,
  type ReferenceCollector,
  type Slot,
} from '../../core/drift/index.ts';
import type { Logger } from '../../core/logger.ts';
import type { InferRequest } from '../../core/jobs/infer.ts';
import type { VersionRecord } from '../../core/registry.ts';
import type { ArtifactStore } from '../../core/storage/index.ts';

const FLUSH_MS = 500;
const MAX_PROFILES = 256;

interface Pending {
  name: string;
  version: number;
  rows: number;
  /** Per feature and bin of the reference they were counted against. */
  bins: BinCounts;
}

export class DriftSampler {
  private readonly pending = new Map<string, Pending>();
  private readonly profiles: (key: string) => Promise<DriftProfile>;
  private timer?: NodeJS.Timeout;
  /** Versions without a reference: rows waiting to be added to their reference rows, and rows sent so far. */
  private readonly collecting = new Map<string, { v: VersionRecord; slots: Slot[]; rows: (number | string)[][]; sent: number }>();

  constructor(
    store: ArtifactStore,
    private readonly windows: DriftWindows,
    private readonly rate: number,
    private readonly logger: Logger,
    private readonly collector?: ReferenceCollector,
  ) {
    this.profiles = profileCache(store, MAX_PROFILES);
  }

  /**
   * Counts the request's rows when it is drawn; never throws, never waits. Only the owner's traffic
   * counts (`from`: the caller's tenant and the model's owner): another tenant's rows of a shared
   * model never become its reference nor move the owner's window (nor are windows mixed).
   */
  observe(model: VersionRecord, req: InferRequest, from?: { tenant: string; owner: string }): void {
    if (from && from.tenant !== from.owner) return;
    const ref = model.explain?.reference;
    if (!ref && this.collector) return this.collect(model, req);
    if (!ref || this.rate <= 0 || (this.rate < 1 && Math.random() >= this.rate)) return;
    this.profile(ref.key).then(
      (p) => this.count(model, ref.key, p, req),
      (e: Error) => this.logger.debug({ err: e.message }, 'drift profile not readable'),
    );
  }

  /**
   * A request to a model with declared processing: the worker that decodes its files summarises it
   * (workers/processing/drift.ts) when this draws it: the owner's traffic, at MODELQ_DRIFT_SAMPLE
   * once the version has a reference, every request until then (the worker keeps the first N rows).
   */
  drawsForWorker(model: VersionRecord, from?: { tenant: string; owner: string }): boolean {
    if (from && from.tenant !== from.owner) return false;
    if (!model.explain?.reference) return (this.collector?.rows ?? 0) > 0;
    return this.rate > 0 && (this.rate >= 1 || Math.random() < this.rate);
  }

  private profile(key: string): Promise<DriftProfile> {
    return this.profiles(key);
  }

  private count(model: VersionRecord, refKey: string, p: DriftProfile, req: InferRequest) {
    // Bins are the reference's: counts against another reference of the version gather apart.
    const id = `${model.name}@${model.version}\n${refKey}`;
    let acc = this.pending.get(id);
    if (!acc) this.pending.set(id, (acc = { name: model.name, version: model.version, rows: 0, bins: newBinCounts(p) }));
    acc.rows += addBins(
      p,
      req.inputs.flatMap((t) => ('data' in t ? [t] : [])),
      acc.bins,
    );
    this.timer ??= setTimeout(() => void this.flush(), FLUSH_MS).unref();
  }

  /** A version without a reference: its first rows (every row, until the collector's N) become one. */
  private collect(model: VersionRecord, req: InferRequest) {
    const id = `${model.name}@${model.version}`;
    let c = this.collecting.get(id);
    if (!c) {
      const slots = this.collector!.slotsFor(model);
      if (!slots) return;
      this.collecting.set(id, (c = { v: model, slots, rows: [], sent: 0 }));
    }
    const room = this.collector!.rows - c.sent - c.rows.length;
    if (room <= 0) return;
    c.rows.push(
      ...featureRows(
        c.slots,
        req.inputs.flatMap((t) => ('data' in t ? [t] : [])),
        room,
      ),
    );
    this.timer ??= setTimeout(() => void this.flush(), FLUSH_MS).unref();
  }

  /** Writes what gathered; also called on close. */
  async flush(): Promise<void> {
    this.timer = undefined;
    const batch = [...this.pending.values()];
    this.pending.clear();
    const refs = [...this.collecting.values()].filter((c) => c.rows.length);
    await Promise.all([
      ...batch.map((b) =>
        this.windows
          .add(b.name, b.version, b.rows, binFields(b.bins, new Map()))
          .catch((e: Error) => this.logger.debug({ err: e.message }, 'drift counts not written')),
      ),
      ...refs.map((c) => {
        const rows = c.rows;
        c.rows = [];
        c.sent += rows.length;
        return this.collector!.add(c.v, c.slots, rows).catch((e: Error) => this.logger.warn({ err: e.message }, 'reference rows not written'));
      }),
    ]);
  }
}
