// The stream transport's worker side (MODELQ_ONLINE_TRANSPORT=streams on the producer): reads its
// queue's online stream in the consumer group with XREADGROUP BLOCK, runs each entry's requests
// through the engine's dynamic batcher as the `infer` processor does, and publishes the answers on
// the producer's channel with the XACK and XDEL in the same round trip. Tensors stay raw bytes.
//
// Nothing is lost with a worker: an entry stays pending under its consumer until acknowledged; a
// live worker refreshes the idle time of the entries it runs (XCLAIM JUSTID, as BullMQ renews a
// lock), so an entry idle past MODELQ_JOB_LOCK_MS belongs to a dead one, and another worker takes
// it with XAUTOCLAIM and runs it again (a second answer finds no waiter). An entry delivered more
// than MAX_DELIVERIES times (a request that takes its workers down) is refused as retryable.
//
// A queue's shadow lane (shadow mirrors, producer/shadow.ts) is a stream of its own, read by a
// second consumer (`shadow`) a few entries at a time, whose runs are low priority in the engine: a
// run waits until a thread is idle and no primary request waits (Engine.run), in small batches. So
// primaries are never queued behind mirrors, in the stream or on a thread, and mirrors fill the gaps.
//
// A pause of the BullMQ queue of the same name (the dashboard's pause of `infer`) holds the stream
// too: while paused, no new entry is read and no dead worker's entry is taken up; entries already
// running finish, as a paused queue's active jobs do. Requests then wait and end at their timeout.
import type { Redis } from 'ioredis';
import { AppError, errorData, fromFailedReason, type ErrorData } from '../../core/errors.ts';
import type { LoadProgress } from '../../core/jobs/infer.ts';
import type { Logger } from '../../core/logger.ts';
import { decodeJob, encodeReply, ONLINE_GROUP, onlineStreamKey, replyOf, shadowLane, type WireJob, type WireReply } from '../../core/jobs/online-wire.ts';
import { duplicateRedis } from '../../core/redis.ts';
import type { ModelHandle } from '../engine/engine.ts';
import { localModelPath } from '../model-cache.ts';
import { toJobError } from '../processor.ts';
import { filesOf, loadFirst, openPipeline, pipelineHandle, runOne, shadowBatching, type InferDeps, type InferJobLike } from './infer.ts';

export const MAX_DELIVERIES = 5;
/** Entries a shadow lane's consumer runs at once. */
export const SHADOW_ENTRIES = 2;

export interface OnlineStreamOptions {
  /** The worker's connection (XACK, PUBLISH, XAUTOCLAIM); the blocking read gets a connection of its own. */
  redis: Redis;
  prefix: string;
  queue: 'infer' | 'infer-gpu';
  /** The consumer's name in the group: the worker's id (host:pid:tag). */
  consumer: string;
  /** Entries run at once (MODELQ_INFER_CONCURRENCY; SHADOW_ENTRIES for a shadow lane). */
  concurrency: number;
  /** Reads the queue's shadow lane (core/jobs/online-wire.ts shadowLane), its runs low priority. */
  shadow?: boolean;
  /** MODELQ_JOB_LOCK_MS: an entry idle this long belongs to a dead worker. */
  lockMs: number;
  deps: InferDeps;
  logger: Logger;
  /** Counted like the queue's jobs in the worker's figures. */
  counts: { completed: number; failed: number };
  /** Whether the BullMQ queue of the same name is paused (Queue.isPaused); asked every PAUSE_CHECK_MS. */
  isPaused?: () => Promise<boolean>;
}

/** How often a consumer asks whether its queue is paused (one HEXISTS). */
export const PAUSE_CHECK_MS = 250;

type Entry = [Buffer, Buffer[] | null];

const errorOf = (e: unknown): ErrorData => errorData(e instanceof AppError ? e : fromFailedReason(toJobError(e).message));

export class OnlineStreamConsumer {
  readonly key: string;
  /** Entries of dead workers taken up here. */
  claimed = 0;
  private readonly block: Redis;
  private readonly running = new Map<string, AbortController>();
  private stopping = false;
  private loop?: Promise<void>;
  /** Wakes the read loop: a slot freed, the queue resumed, or stopping. */
  private wake?: () => void;
  private timers: NodeJS.Timeout[] = [];
  private ticks = 0;
  /** The queue is paused (as last checked). */
  paused = false;
  /** The blocking connection's CLIENT ID, to cut its read short when the queue is paused. */
  private blockId?: number;
  private reading = false;

  constructor(private readonly o: OnlineStreamOptions) {
    this.key = onlineStreamKey(o.prefix, o.shadow ? shadowLane(o.queue) : o.queue);
    this.block = duplicateRedis(o.redis, { maxRetriesPerRequest: null });
    this.block.on('error', () => {}); // the worker's main connection reports Redis trouble
    this.block.on('ready', () => {
      this.block.client('ID').then(
        (id) => (this.blockId = Number(id)),
        () => {},
      );
    });
  }

  async start() {
    await this.ensureGroup();
    await this.checkPaused();
    this.loop = this.read();
    const { lockMs } = this.o;
    if (this.o.isPaused) this.timers.push(setInterval(() => void this.checkPaused(), PAUSE_CHECK_MS));
    // Refreshed four times per lock period: a busy event loop has slack before others take over.
    this.timers.push(setInterval(() => void this.heartbeat(), Math.max(100, lockMs / 4)));
    this.timers.push(setInterval(() => void this.claim(), Math.max(100, lockMs / 2)));
    for (const t of this.timers) t.unref();
  }

  /** Reads no more; waits for the entries running here (those unfinished after `graceMs` are left to other workers). */
  async stop(graceMs: number) {
    this.stopping = true;
    this.block.disconnect();
    this.wake?.();
    await this.loop;
    const end = Date.now() + graceMs;
    while (this.running.size > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    for (const t of this.timers) clearInterval(t);
    for (const c of this.running.values()) c.abort();
  }

  private async checkPaused() {
    if (!this.o.isPaused || this.stopping) return;
    let paused: boolean;
    try {
      paused = await this.o.isPaused();
    } catch {
      return; // Redis trouble: keep the last known state
    }
    if (paused === this.paused) return;
    this.paused = paused;
    this.o.logger.info({ queue: this.o.queue, paused }, paused ? 'queue paused: online stream held' : 'queue resumed: online stream read again');
    if (!paused) this.wake?.();
    else if (this.reading && this.blockId !== undefined) {
      // The read in progress would take entries that arrive during its BLOCK: it returns now, empty.
      await this.o.redis.call('CLIENT', 'UNBLOCK', this.blockId).catch(() => {});
    }
  }

  private async ensureGroup() {
    // From the start of the stream ('0'): entries written before any worker existed are read too.
    await this.o.redis.xgroup('CREATE', this.key, ONLINE_GROUP, '0', 'MKSTREAM').catch((e: Error) => {
      if (!/BUSYGROUP/.test(e.message)) throw e;
    });
  }

  private async read() {
    const { concurrency, consumer, logger } = this.o;
    while (!this.stopping) {
      if (this.running.size >= concurrency || this.paused) {
        await new Promise<void>((r) => (this.wake = r));
        this.wake = undefined;
        continue;
      }
      let res: [Buffer, Entry[]][] | null;
      this.reading = true;
      try {
        res = (await this.block.callBuffer(
          'XREADGROUP',
          'GROUP',
          ONLINE_GROUP,
          consumer,
          'COUNT',
          concurrency - this.running.size,
          'BLOCK',
          1000,
          'STREAMS',
          this.key,
          '>',
        )) as [Buffer, Entry[]][] | null;
      } catch (e) {
        if (this.stopping) return;
        const msg = (e as Error).message;
        if (/NOGROUP/.test(msg)) await this.ensureGroup().catch(() => {});
        else logger.warn({ err: msg, stream: this.key }, 'online stream read failed; retrying');
        await new Promise((r) => setTimeout(r, 200));
        continue;
      } finally {
        this.reading = false;
      }
      for (const [, entries] of res ?? []) for (const [id, fields] of entries) this.run(id.toString(), fields);
    }
  }

  private run(id: string, fields: Buffer[] | null) {
    const frame = fields?.[1];
    const abort = new AbortController();
    this.running.set(id, abort);
    void this.answer(id, frame, abort.signal)
      .catch((e: Error) => this.o.logger.warn({ err: e.message, entry: id }, 'online entry not answered; it will be taken up again'))
      .finally(() => {
        this.running.delete(id);
        this.wake?.();
      });
  }

  private async answer(id: string, frame: Buffer | undefined, signal: AbortSignal) {
    let job: WireJob;
    try {
      if (!frame) throw new AppError('bad_request', 'an online entry without its frame');
      job = decodeJob(frame);
    } catch (e) {
      const to = frame ? replyOf(frame) : null;
      this.o.logger.warn({ err: (e as Error).message, entry: id }, 'an online entry that does not decode');
      return this.finish(id, to ? { reply: to.reply, message: { id: to.id, kind: 'failed', error: errorOf(e) } } : undefined);
    }
    let message: WireReply;
    try {
      message = await this.compute(job, signal);
    } catch (e) {
      message = { id: job.id, kind: 'failed', error: errorOf(e) };
    }
    await this.finish(id, { reply: job.reply, message });
  }

  private async compute(job: WireJob, signal: AbortSignal): Promise<WireReply> {
    const { deps } = this.o;
    // A pipeline runs its steps' models (workers/processing/pipeline.ts); it has no file of its own.
    const pipeline = job.model.pipeline ? await openPipeline(job.model, deps) : undefined;
    const model: ModelHandle = pipeline
      ? pipelineHandle(job.model)
      : { sha256: job.model.sha256, path: await localModelPath(deps.store, job.model.sha256, deps.cacheDir), label: `${job.model.name}@${job.model.version}` };
    deps.warmer?.used(job.model);
    if (pipeline ? !pipeline.isWarm() : !deps.engine.isWarm(model.sha256)) {
      // The producer is told, so that the load does not count against the requests' timeout.
      const progress: InferJobLike = {
        data: null,
        updateProgress: async (p) => {
          const lp = p as LoadProgress;
          const m: WireReply =
            'loading' in lp
              ? { id: job.id, kind: 'loading', model: lp.model, since: lp.loading }
              : { id: job.id, kind: 'loaded', model: lp.model, ms: lp.loaded };
          await this.o.redis.publish(job.reply, encodeReply(m));
        },
      };
      await loadFirst(progress, pipeline ? { warm: () => pipeline.warm() } : deps.engine, model, job.requests);
    }
    const files = filesOf(job.model, deps);
    const batching = this.o.shadow ? shadowBatching(job.batching) : job.batching;
    const responses = await Promise.all(
      job.requests.map((r) =>
        runOne(deps.engine, model, batching, r, 'bytes', signal, files, pipeline).catch((e: unknown) => ({
          ok: false as const,
          error: errorOf(e),
        })),
      ),
    );
    return { id: job.id, kind: 'answer', responses };
  }

  /** Publishes the message (when there is someone to tell) and acknowledges and deletes the entry, in one round trip. */
  private async finish(id: string, to: { reply: string; message: WireReply } | undefined) {
    const p = this.o.redis.pipeline();
    if (to) p.publish(to.reply, encodeReply(to.message));
    p.xack(this.key, ONLINE_GROUP, id).xdel(this.key, id);
    const results = await p.exec();
    const err = results?.find(([e]) => e)?.[0];
    if (err) throw err;
    if (to?.message.kind === 'failed') this.o.counts.failed++;
    else this.o.counts.completed++;
  }

  private async heartbeat() {
    if (this.running.size === 0 || this.stopping) return;
    await this.o.redis.xclaim(this.key, ONLINE_GROUP, this.o.consumer, 0, ...this.running.keys(), 'JUSTID').catch(() => {});
  }

  /** Takes up entries of dead workers (idle past the lock), and forgets consumers long gone. */
  private async claim() {
    const { redis, consumer, concurrency, lockMs, logger } = this.o;
    const free = concurrency - this.running.size;
    if (this.stopping || this.paused || free <= 0) return;
    try {
      const [, entries] = (await redis.callBuffer('XAUTOCLAIM', this.key, ONLINE_GROUP, consumer, lockMs, '0-0', 'COUNT', free)) as [
        Buffer,
        Entry[],
        Buffer[]?,
      ];
      if (entries.length > 0) {
        const pending = (await redis.xpending(this.key, ONLINE_GROUP, '-', '+', 10_000, consumer)) as [string, string, number, number][];
        const deliveries = new Map(pending.map(([id, , , n]) => [id, n]));
        for (const [rawId, fields] of entries) {
          const id = rawId.toString();
          if (this.running.has(id)) continue;
          this.claimed++;
          if ((deliveries.get(id) ?? 1) > MAX_DELIVERIES) {
            const to = fields?.[1] ? replyOf(fields[1]) : null;
            const error = errorData(new AppError('unavailable', `the request was taken up ${MAX_DELIVERIES} times after its worker died; retry`, true));
            await this.finish(id, to ? { reply: to.reply, message: { id: to.id, kind: 'failed', error } } : undefined);
            continue;
          }
          this.run(id, fields);
        }
        logger.info({ stream: this.key, entries: entries.length }, 'online requests of a dead worker taken up');
      }
      if (++this.ticks % 60 === 0) await this.forgetGone();
    } catch (e) {
      logger.debug({ err: (e as Error).message }, 'online stream claim failed');
    }
  }

  private async forgetGone() {
    const { redis, consumer, lockMs } = this.o;
    const infos = (await redis.xinfo('CONSUMERS', this.key, ONLINE_GROUP)) as unknown[][];
    for (const info of infos) {
      const f = new Map<string, unknown>();
      for (let i = 0; i + 1 < info.length; i += 2) f.set(String(info[i]), info[i + 1]);
      const name = String(f.get('name'));
      if (name !== consumer && Number(f.get('pending')) === 0 && Number(f.get('idle')) > Math.max(60_000, 10 * lockMs)) {
        await redis.xgroup('DELCONSUMER', this.key, ONLINE_GROUP, name);
      }
    }
  }
}
