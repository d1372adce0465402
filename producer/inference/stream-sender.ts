// The stream transport's producer side (MODELQ_ONLINE_TRANSPORT=streams): a coalesced group is one
// XADD of a binary frame (core/jobs/online-wire.ts) to its queue's stream, and its answer is pushed
// back by the worker on this producer's channel: no job hash, no lock, no events stream, no polling.
// A waiter is registered before the XADD, so an answer cannot arrive unheard. Like JobAnswers, a
// worker that loads the model first says so; that time does not count against the timeout, and a
// timeout that passes during the load is a 503 with Retry-After. When the subscription drops (a Redis
// restart, a lost connection), answers published meanwhile are gone: every group waiting then is
// refused at once as retryable (503), and new groups are held until the channel is subscribed
// again. A group no worker took ends as the timeout.
import type { Redis } from 'ioredis';
import { AppError, fromErrorData } from '../../core/errors.ts';
import type { Logger } from '../../core/logger.ts';
import { decodeReply, encodeJob, onlineStreamKey, replyChannel, type WireReply, type WireResponse } from '../../core/jobs/online-wire.ts';
import { duplicateRedis } from '../../core/redis.ts';
import { loadRetryAfterS } from './await-job.ts';
import { Overloaded } from './backpressure.ts';
import { senderIdPrefix, type Group, type GroupSender } from './senders.ts';

interface Waiter {
  resolve: (r: WireResponse[]) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
  due: number;
  loading?: { since: number; model: string };
}

/** One per producer: the subscription to its reply channel and the groups waiting for answers. */
export class StreamReplies {
  readonly idPrefix = senderIdPrefix();
  readonly channel: string;
  private readonly sub: Redis;
  private readonly waiting = new Map<string, Waiter>();
  private subscribed: Promise<unknown>;
  private seq = 0;

  constructor(
    redis: Redis,
    prefix: string,
    private readonly timeoutMs: number,
    private readonly logger: Logger,
  ) {
    this.channel = replyChannel(prefix, this.idPrefix.slice(0, -1));
    // Its own connection (a subscribed one takes no other commands); it queues the SUBSCRIBE until
    // connected, and subscribes again after a reconnect.
    this.sub = duplicateRedis(redis, { enableOfflineQueue: true, maxRetriesPerRequest: null });
    this.sub.on('error', () => {}); // the main connection reports Redis trouble
    this.sub.on('messageBuffer', (_channel: Buffer, message: Buffer) => this.onMessage(message));
    this.subscribed = this.subscribe();
    this.sub.on('close', () => this.onLost());
    this.sub.on('ready', () => {
      // ioredis subscribes again by itself; this SUBSCRIBE's reply says it has (same connection, in order).
      if (this.lost) this.lost.resolve(this.subscribe());
      this.lost = undefined;
    });
  }

  private lost?: { resolve: (p: Promise<unknown>) => void };
  private closing = false;

  private subscribe() {
    const p = this.sub.subscribe(this.channel);
    p.catch(() => {});
    return p;
  }

  /** The subscription dropped: no answer sent until it is back can arrive. */
  private onLost() {
    if (this.closing) return;
    if (!this.lost) {
      let resolve!: (p: Promise<unknown>) => void;
      this.subscribed = new Promise<unknown>((r) => (resolve = r));
      this.lost = { resolve };
    }
    const e = new AppError('unavailable', 'the connection to Redis was lost while the request was in flight; its answer cannot arrive, retry', true);
    for (const id of [...this.waiting.keys()]) this.cancel(id, e);
  }

  nextId() {
    return `${this.idPrefix}${++this.seq}`;
  }

  /** Resolves with the group's responses; register before sending. Resolves `ready` first. */
  wait(id: string): { answer: Promise<WireResponse[]>; ready: Promise<unknown> } {
    const answer = new Promise<WireResponse[]>((resolve, reject) => {
      const timer = setTimeout(() => this.expire(id), this.timeoutMs);
      this.waiting.set(id, { resolve, reject, timer, due: Date.now() + this.timeoutMs });
    });
    return { answer, ready: this.subscribed };
  }

  cancel(id: string, e: Error) {
    this.take(id)?.reject(e);
  }

  get pending() {
    return this.waiting.size;
  }

  close() {
    this.closing = true;
    for (const id of [...this.waiting.keys()]) this.cancel(id, new AppError('unavailable', 'the producer is stopping', true));
    this.sub.disconnect();
  }

  private take(id: string): Waiter | undefined {
    const w = this.waiting.get(id);
    if (!w) return undefined;
    this.waiting.delete(id);
    clearTimeout(w.timer);
    return w;
  }

  private onMessage(message: Buffer) {
    let r: WireReply;
    try {
      r = decodeReply(message);
    } catch (e) {
      this.logger.warn({ err: (e as Error).message }, 'an online reply that does not decode; ignored');
      return;
    }
    if (r.kind === 'answer') return this.take(r.id)?.resolve(r.responses); // a second answer (a re-run) finds no waiter
    if (r.kind === 'failed') return this.take(r.id)?.reject(fromErrorData(r.error));
    const w = this.waiting.get(r.id);
    if (!w) return;
    if (r.kind === 'loading') {
      w.loading = { since: Date.now(), model: r.model };
      return;
    }
    if (!w.loading) return;
    // The load is over: the time it took does not count, so the answer is due that much later.
    w.due += Date.now() - w.loading.since;
    w.loading = undefined;
    clearTimeout(w.timer);
    w.timer = setTimeout(() => this.expire(r.id), Math.max(0, w.due - Date.now()));
  }

  private expire(id: string) {
    const w = this.take(id);
    if (!w) return;
    if (!w.loading) return w.reject(new AppError('timeout', `inference timed out after ${this.timeoutMs} ms`));
    const ms = Date.now() - w.loading.since;
    w.reject(
      new Overloaded(
        'unavailable',
        `model ${w.loading.model} is still loading on a worker (for ${Math.round(ms / 1000)} s); retry shortly`,
        loadRetryAfterS(ms),
      ),
    );
  }
}

/** Sends one queue's groups: an XADD each, answered on the producer's channel. */
export class StreamSender implements GroupSender {
  readonly tensors = 'bytes';
  private readonly key: string;

  constructor(
    private readonly redis: Redis,
    prefix: string,
    queue: string,
    private readonly replies: StreamReplies,
  ) {
    this.key = onlineStreamKey(prefix, queue);
  }

  async send(g: Group): Promise<WireResponse[]> {
    const id = this.replies.nextId();
    const { answer, ready } = this.replies.wait(id);
    const frame = encodeJob({ id, reply: this.replies.channel, model: g.model, batching: g.batching, requests: g.requests });
    let entry: string | null = null;
    void ready
      .then(() => this.redis.xadd(this.key, '*', 'f', frame))
      .then((e) => void (entry = e))
      .catch((e: Error) => this.replies.cancel(id, new AppError('unavailable', `the request could not be handed to a worker: ${e.message}`, true)));
    return answer.catch((e: unknown) => {
      // Nobody waits any more: an entry no worker took (none running, all busy) is not left to pile up.
      if (entry && e instanceof AppError && e.code === 'timeout') this.redis.xdel(this.key, entry).catch(() => {});
      throw e;
    });
  }
}
