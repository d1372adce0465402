// A bounded queue of bytes that an ArtifactStore.put reads as an async iterable while a chunk is
// scored. Unlike a PassThrough destroyed before the store's pipeline attached (which never
// settles), a failure here always reaches the reader, so the put rejects and drops its temp file.
export class ByteChannel implements AsyncIterable<Uint8Array> {
  private queue: Uint8Array[] = [];
  private queued = 0;
  private done = false;
  private error?: Error;
  private dataWaiter?: () => void;
  private spaceWaiter?: () => void;

  /** `maxBytes`: how much may wait for the reader before push() waits too. Default 1 MiB. */
  constructor(private readonly maxBytes = 1024 * 1024) {}

  /** Queues bytes; resolves once there is room again. Rejects after fail(). */
  async push(b: Uint8Array): Promise<void> {
    if (this.error) throw this.error;
    if (!b.length) return;
    this.queue.push(b);
    this.queued += b.length;
    this.wakeReader();
    while (this.queued > this.maxBytes && !this.error) await new Promise<void>((r) => (this.spaceWaiter = r));
    if (this.error) throw this.error;
  }

  end(): void {
    this.done = true;
    this.wakeReader();
  }

  /** The reader throws `e` at its next read; a waiting push() rejects with it. */
  fail(e: Error): void {
    this.error ??= e;
    this.wakeReader();
    this.wakeWriter();
  }

  private wakeReader() {
    const w = this.dataWaiter;
    this.dataWaiter = undefined;
    w?.();
  }

  private wakeWriter() {
    const w = this.spaceWaiter;
    this.spaceWaiter = undefined;
    w?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array> {
    for (;;) {
      if (this.error) throw this.error;
      const b = this.queue.shift();
      if (b) {
        this.queued -= b.length;
        if (this.queued <= this.maxBytes) this.wakeWriter();
        yield b;
        continue;
      }
      if (this.done) return;
      await new Promise<void>((r) => (this.dataWaiter = r));
    }
  }
}
