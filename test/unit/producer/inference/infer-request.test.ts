// readInferRequest checks the common request form by hand and leaves the rest to the schema: for
// every body it must give what v2InferRequestSchema gives, and refuse what it refuses with the
// schema's own words.
import { describe, expect, it } from 'vitest';
import { readInferRequest, v2InferRequestSchema } from '../../../../producer/inference/infer-request.ts';
import { parseBody } from '../../../../producer/http.ts';

const viaSchema = (b: unknown) => parseBody(v2InferRequestSchema, b, 'request');
const input = (over: object = {}) => ({ name: 'x', shape: [1, 3], datatype: 'FP32', data: [1, 2, 3], ...over });

const bodies: [string, unknown][] = [
  ['one input', { inputs: [input()] }],
  [
    'Float32Array data, an id, outputs, unknown keys',
    { id: 'r1', extra: 1, inputs: [input({ data: Float32Array.from([1, 2, 3]), more: true })], outputs: [{ name: 'y', z: 1 }] },
  ],
  ['two inputs, empty shape', { inputs: [input(), input({ name: 'b', shape: [], data: [] })] }],
  ['parameters (left to the schema)', { parameters: { explain: true }, inputs: [input({ parameters: { a: 1 } })], outputs: [{ name: 'y', parameters: {} }] }],
  ['no inputs', { inputs: [] }],
  ['inputs not an array', { inputs: {} }],
  ['a body that is an array', [input()]],
  ['null', null],
  ['an id too long', { id: 'i'.repeat(257), inputs: [input()] }],
  ['an id that is a number', { id: 5, inputs: [input()] }],
  ['a name too long', { inputs: [input({ name: 'n'.repeat(257) })] }],
  ['an empty name', { inputs: [input({ name: '' })] }],
  ['a negative dimension', { inputs: [input({ shape: [-1, 3] })] }],
  ['a fractional dimension', { inputs: [input({ shape: [1.5, 3] })] }],
  ['a dimension past 2^31', { inputs: [input({ shape: [2 ** 31 + 1] })] }],
  ['17 dimensions', { inputs: [input({ shape: new Array(17).fill(1) })] }],
  ['a dimension as text', { inputs: [input({ shape: ['1', 3] })] }],
  ['data as an object', { inputs: [input({ data: { 0: 1 } })] }],
  ['datatype missing', { inputs: [input({ datatype: undefined })] }],
  ['outputs not an array', { inputs: [input()], outputs: 'y' }],
  ['an output without a name', { inputs: [input()], outputs: [{}] }],
  ['parameters null', { parameters: null, inputs: [input()] }],
];

describe('readInferRequest', () => {
  for (const [what, body] of bodies) {
    it(`gives what the schema gives: ${what}`, () => {
      let want: unknown;
      let wantError: string | undefined;
      try {
        want = viaSchema(body);
      } catch (e) {
        wantError = (e as Error).message;
      }
      if (wantError !== undefined) expect(() => readInferRequest(body)).toThrow(wantError);
      else expect(readInferRequest(body)).toEqual(want);
    });
  }

  it('keeps data as given (no copy of a Float32Array)', () => {
    const data = Float32Array.from([1, 2, 3]);
    expect(readInferRequest({ inputs: [input({ data })] }).inputs[0]!.data).toBe(data);
  });
});
