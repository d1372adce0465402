// The stream transport's frames: tensors round-trip as their exact bytes (aligned, no text), JSON-only
// datatypes stay JSON, answers and failures come back as sent, and a frame whose lengths do not match
// the bytes present is refused with a bad_request rather than read past its end.
import { describe, expect, it } from 'vitest';
import { AppError } from '../../../core/errors.ts';
import { bytesTensor, isBytes, rawOfBytes, toProtocolTensor, type ByteTensor } from '../../../core/jobs/infer.ts';
import { decodeJob, decodeReply, encodeJob, encodeReply, replyOf, type WireJob } from '../../../core/jobs/online-wire.ts';

const model = { name: 'm', version: 3, sha256: 'b'.repeat(64) };
const batching = { maxBatch: 8, maxDelayMs: 2, instances: 1, batchable: true };

function job(): WireJob {
  const x = new Float32Array([1.5, -2, 3.25, Math.PI, 0, 1e-30]);
  const ids = new BigInt64Array([1n, -(2n ** 40n)]);
  return {
    id: 'i1-7',
    reply: '{p}:online-reply:i1',
    model,
    batching,
    requests: [
      { inputs: [bytesTensor({ name: 'x', datatype: 'FP32', shape: [2, 3], data: x as unknown as number[] })], deadline: 123 },
      {
        inputs: [
          { name: 'ids', datatype: 'INT64', shape: [2], bytes: new Uint8Array(ids.buffer) },
          { name: 's', datatype: 'BYTES', shape: [1], data: ['hé'] },
        ],
        outputs: ['y'],
      },
    ],
  };
}

describe('online wire frames', () => {
  it('carries a job’s tensors as their exact bytes, 8-byte aligned, and JSON-only datatypes as JSON', () => {
    const frame = encodeJob(job());
    const back = decodeJob(frame);
    expect(back).toMatchObject({ id: 'i1-7', reply: '{p}:online-reply:i1', model, batching });
    const x = back.requests[0]!.inputs[0]! as ByteTensor;
    expect(isBytes(x)).toBe(true);
    expect((x.bytes.byteOffset - frame.byteOffset) % 8).toBe(0);
    expect(Array.from(rawOfBytes(x)!.data as Float32Array)).toEqual(Array.from(new Float32Array([1.5, -2, 3.25, Math.PI, 0, 1e-30])));
    expect(back.requests[0]!.deadline).toBe(123);
    const [ids, s] = back.requests[1]!.inputs;
    expect(Array.from(rawOfBytes(ids as ByteTensor)!.data as BigInt64Array)).toEqual([1n, -(2n ** 40n)]);
    expect(s).toEqual({ name: 's', datatype: 'BYTES', shape: [1], data: ['hé'] });
    expect(back.requests[1]!.outputs).toEqual(['y']);
    // No number was written as text: the head holds no float of x.
    expect(frame.toString('latin1')).not.toContain('3.25');
  });

  it('returns answers, failures and load reports as sent', () => {
    const y = new Float32Array([0.25, 0.75]);
    const answer = decodeReply(
      encodeReply({
        id: 'i1-7',
        kind: 'answer',
        responses: [
          { ok: true, outputs: [{ name: 'y', datatype: 'FP32', shape: [1, 2], bytes: new Uint8Array(y.buffer) }] },
          { ok: false, error: { code: 'bad_request', message: 'no', retryable: false } },
        ],
      }),
    );
    expect(answer.kind).toBe('answer');
    if (answer.kind !== 'answer') return;
    const first = answer.responses[0]!;
    expect(first.ok && toProtocolTensor(first.outputs[0]!)).toEqual({ name: 'y', datatype: 'FP32', shape: [1, 2], data: [0.25, 0.75] });
    expect(answer.responses[1]).toEqual({ ok: false, error: { code: 'bad_request', message: 'no', retryable: false } });
    const failed = { id: 'a', kind: 'failed', error: { code: 'unavailable', message: 'retry', retryable: true } } as const;
    expect(decodeReply(encodeReply(failed))).toEqual(failed);
    expect(decodeReply(encodeReply({ id: 'a', kind: 'loading', model: 'm@3', since: 5 }))).toEqual({ id: 'a', kind: 'loading', model: 'm@3', since: 5 });
  });

  it('refuses frames whose lengths do not match the bytes present', () => {
    const frame = encodeJob(job());
    const refused = (buf: Buffer) => {
      try {
        decodeJob(buf);
      } catch (e) {
        return e instanceof AppError && e.code === 'bad_request';
      }
      return false;
    };
    expect(refused(frame.subarray(0, frame.length - 16))).toBe(true); // blobs cut short
    expect(refused(frame.subarray(0, 20))).toBe(true); // head cut short
    const huge = Buffer.from(frame);
    huge.writeUInt32LE(0xffffffff, 1);
    expect(refused(huge)).toBe(true);
    const other = Buffer.from(frame);
    other[0] = 9;
    expect(refused(other)).toBe(true);
    // A shape that does not match its bytes.
    const j = job();
    (j.requests[0]!.inputs[0] as ByteTensor).shape = [3, 3];
    expect(refused(encodeJob(j))).toBe(true);
    // Where to answer a job that did not decode, when its head says.
    expect(replyOf(encodeJob(j))).toEqual({ id: 'i1-7', reply: '{p}:online-reply:i1' });
    expect(replyOf(Buffer.from('nonsense'))).toBeNull();
  });
});
