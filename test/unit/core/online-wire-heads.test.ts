// The hand checks of stream-frame heads (core/jobs/online-wire.ts readJobHead, readReplyHead) must
// give what the zod schemas give for every head, and leave every other head to them.
import { describe, expect, it } from 'vitest';
import { jobHead, readJobHead, readReplyHead, replyHead } from '../../../core/jobs/online-wire.ts';

const t = (over: object = {}) => ({ name: 'x', datatype: 'FP32', shape: [1, 4], blob: 0, ...over });
const job = (over: object = {}, req: object = {}) => ({
  id: 'i1-1',
  reply: 'p:online-reply:i1',
  model: { name: 'm', version: 1, sha256: 'a'.repeat(64) },
  batching: { maxBatch: 64, maxDelayMs: 2, instances: 1, batchable: true },
  requests: [{ inputs: [t()], deadline: 123.5, ...req }],
  sizes: [16],
  ...over,
});
const reply = (over: object = {}, res: object = {}) => ({
  id: 'i1-1',
  kind: 'answer',
  responses: [{ ok: true, outputs: [t()], ...res }],
  sizes: [16],
  ...over,
});

function same(read: (h: unknown) => unknown, schema: { safeParse: (h: unknown) => { success: boolean; data?: unknown } }, head: unknown) {
  const want = schema.safeParse(head);
  if (want.success) expect(read(head)).toEqual(want.data);
  else expect(() => read(head)).toThrow(/online (job|reply)/);
}

describe('stream frame heads', () => {
  const jobs: [string, unknown][] = [
    ['a plain job', job()],
    ['outputs, no deadline, unknown keys', job({ extra: 1 }, { outputs: ['y'], deadline: undefined, more: 2 })],
    ['a JSON tensor among blobs', job({}, { inputs: [t(), { name: 's', datatype: 'BYTES', shape: [1], data: ['a'] }] })],
    ['no requests', job({ requests: [] })],
    ['no inputs', job({}, { inputs: [] })],
    ['an unknown datatype', job({}, { inputs: [t({ datatype: 'FP8' })] })],
    ['a negative blob', job({}, { inputs: [t({ blob: -1 })] })],
    ['a dimension past 2^53', job({}, { inputs: [t({ shape: [2 ** 60] })] })],
    ['17 dimensions', job({}, { inputs: [t({ shape: new Array(17).fill(1) })] })],
    ['an id too long', job({ id: 'i'.repeat(201) })],
    ['a bad sha256', job({ model: { name: 'm', version: 1, sha256: 'z' } })],
    ['sizes with a fraction', job({ sizes: [1.5] })],
    ['outputs not strings', job({}, { outputs: [1] })],
    ['a deadline as text', job({}, { deadline: '1' })],
    ['not an object', [job()]],
  ];
  for (const [what, head] of jobs) it(`job: ${what}`, () => same(readJobHead, jobHead, head));

  const replies: [string, unknown][] = [
    ['an answer', reply()],
    ['an answer with unknown keys', reply({ extra: true }, { more: 1 })],
    [
      'a failed response among answers',
      {
        ...reply(),
        responses: [
          { ok: true, outputs: [t()] },
          { ok: false, error: { code: 'bad_request', message: 'no', retryable: false } },
        ],
      },
    ],
    ['a failed job', { id: 'i1-1', kind: 'failed', error: { code: 'internal', message: 'x', retryable: true } }],
    ['loading', { id: 'i1-1', kind: 'loading', model: 'm@1', since: 5 }],
    ['outputs missing', reply({}, { outputs: undefined })],
    ['sizes missing', reply({ sizes: undefined })],
    ['a shape as text', reply({}, { outputs: [t({ shape: '1,4' })] })],
  ];
  for (const [what, head] of replies) it(`reply: ${what}`, () => same(readReplyHead, replyHead, head));
});
