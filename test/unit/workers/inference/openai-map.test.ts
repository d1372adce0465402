// The OpenAI batch adapter's line mapping: a request line becomes one native JSONL row per row of its
// batch dimension (custom_id as id, values nested as the model's row shape), a body the model cannot
// take is refused with the message a direct request gets; native rows become OpenAI's lines.
import { describe, expect, it } from 'vitest';
import type { ResolvedModel } from '../../../../core/openai-batch.ts';
import { openaiLine, toNativeRows } from '../../../../workers/inference/openai-map.ts';

const mlp: ResolvedModel = {
  name: 'mlp',
  version: 2,
  sha256: 'x',
  inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 4] }],
  outputs: [
    { name: 'output', datatype: 'FP32', shape: [-1, 3] },
    { name: 'flag', datatype: 'BOOL', shape: [-1] },
  ],
};
const text: ResolvedModel = { ...mlp, name: 'txt', inputs: [{ name: 'text', datatype: 'BYTES', shape: [-1, 1] }] };
const INFER = '/v2/models/mlp/infer';
const infer = (body: Record<string, unknown>) => ({ custom_id: 'c1', url: INFER, body });

describe('request line -> native rows', () => {
  it('one row per row of the batch dimension, custom_id as id, the request id and outputs kept for the answer', () => {
    const m = toNativeRows(
      infer({
        id: 'r',
        inputs: [
          {
            name: 'input',
            shape: [2, 4],
            datatype: 'FP32',
            data: [
              [1, 2, 3, 4],
              [5, 6, 7, 8],
            ],
          },
        ],
        outputs: [{ name: 'output' }],
      }),
      mlp,
    );
    expect(m).toEqual({
      rows: ['{"id":"c1","input":[1,2,3,4]}', '{"id":"c1","input":[5,6,7,8]}'],
      entry: { c: 'c1', b: 'r', o: ['output'] },
    });
  });

  it('refuses what the model cannot take, as a direct request is refused', () => {
    const bad = (body: Record<string, unknown>, m = mlp) => {
      const r = toNativeRows(infer(body), m);
      return 'error' in r ? r.error : null;
    };
    expect(bad({ inputs: [{ name: 'input', shape: [1, 5], datatype: 'FP32', data: [1, 2, 3, 4, 5] }] })).toMatch(
      /shape \[1,5\] does not match the model's \[-1,4\] at dimension 1/,
    );
    expect(bad({ inputs: [{ name: 'input', shape: [1, 4], datatype: 'INT32', data: [1, 2, 3, 4] }] })).toMatch(/datatype INT32 does not match/);
    expect(bad({ inputs: [{ name: 'input', shape: [2, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] })).toMatch(/has 4 elements but shape \[2,4\] needs 8/);
    expect(bad({ inputs: [] })).toBe('missing input "input"');
    expect(bad({ inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }], outputs: [{ name: 'nope' }] })).toMatch(
      /unknown output "nope"/,
    );
  });

  it('embeddings: a row, rows, or strings for a text model', () => {
    const e = (input: unknown, m = mlp) => toNativeRows({ custom_id: 'e', url: '/v1/embeddings', body: { model: 'mlp@2', input } }, m);
    expect(e([1, 2, 3, 4])).toEqual({ rows: ['{"id":"e","input":[1,2,3,4]}'], entry: { c: 'e', m: 'mlp@2' } });
    expect(
      e([
        [1, 2, 3, 4],
        [0, 0, 0, 0],
      ]),
    ).toMatchObject({ rows: { length: 2 } });
    expect(e(['a b', 'c'], text)).toEqual({ rows: ['{"id":"e","text":["a b"]}', '{"id":"e","text":["c"]}'], entry: { c: 'e', m: 'mlp@2' } });
    expect(e([1, 2, 3])).toEqual({ error: 'input rows have 3 values; model mlp takes [-1,4]' });
  });
});

describe('native rows -> OpenAI line', () => {
  const entry = { c: 'c1', g: 0, k: 2, b: 'r' };
  const row = (n: number) => ({ row: n, outputs: { output: [n, n + 0.5, 1], flag: [n % 2] } });

  it('an answer in the inference protocol: rows stacked under the signature shape, BOOL as booleans', () => {
    const o = openaiLine(entry, [row(0), row(1)], mlp, INFER, 'expired')!;
    expect(o.kind).toBe('completed');
    const l = JSON.parse(o.text);
    expect(l).toMatchObject({ custom_id: 'c1', error: null, response: { status_code: 200, body: { model_name: 'mlp', model_version: '2', id: 'r' } } });
    expect(l.id).toMatch(/^batch_req_[0-9a-f]{24}$/);
    expect(l.response.body.outputs).toEqual([
      { name: 'output', datatype: 'FP32', shape: [2, 3], data: [0, 0.5, 1, 1, 1.5, 1] },
      { name: 'flag', datatype: 'BOOL', shape: [2], data: [false, true] },
    ]);
  });

  it('a failed row fails its line (400, naming the row); a row not scored is expired, or left out after a cancel', () => {
    const failed = openaiLine(entry, [row(0), { row: 1, error: { code: 'bad_row', message: 'no' } }], mlp, INFER, 'expired')!;
    expect(failed.kind).toBe('failed');
    expect(JSON.parse(failed.text).response).toMatchObject({
      status_code: 400,
      body: { error: { message: 'row 1: no', code: 'bad_row', type: 'invalid_request_error' } },
    });
    const expired = openaiLine(entry, [row(0), undefined], mlp, INFER, 'expired')!;
    expect(expired.kind).toBe('expired');
    expect(JSON.parse(expired.text)).toMatchObject({ custom_id: 'c1', response: null, error: { code: 'batch_expired' } });
    expect(openaiLine(entry, [undefined, undefined], mlp, INFER, 'omitted')).toBeNull();
    const refused = openaiLine({ c: 'r', e: { code: 'bad_request', message: 'missing input "input"' } }, [], undefined, INFER, 'omitted')!;
    expect(refused.kind).toBe('failed');
  });

  it('embeddings: the first output of each row', () => {
    const o = openaiLine({ c: 'e', g: 0, k: 2, m: 'mlp@2' }, [row(0), row(1)], mlp, '/v1/embeddings', 'expired')!;
    expect(JSON.parse(o.text).response.body).toMatchObject({
      object: 'list',
      model: 'mlp@2',
      data: [
        { object: 'embedding', index: 0, embedding: [0, 0.5, 1] },
        { object: 'embedding', index: 1, embedding: [1, 1.5, 1] },
      ],
    });
  });
});
