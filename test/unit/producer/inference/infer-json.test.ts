// The inference body parser must give what JSON.parse gives (FP32 data as Math.fround of its
// numbers), or step aside so that JSON.parse answers.
import { describe, expect, it } from 'vitest';
import { parseInferJson } from '../../../../producer/inference/infer-json.ts';

let seed = 11;
const rnd = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
const pick = <T>(xs: T[]) => xs[Math.floor(rnd() * xs.length)]!;
// Numbers as clients write them: shortest doubles, fixed and exponent forms, long digit strings,
// float32 midpoints written out exactly (ties), and edges of float32's range (past it, see below).
const numbers: (() => string)[] = [
  () => String(rnd()),
  () => String(-rnd() * 1000),
  () => (rnd() * 1e6).toFixed(Math.floor(rnd() * 10)),
  () => String(Math.fround(rnd())),
  () => rnd().toExponential(Math.floor(rnd() * 20)),
  () => String(Math.floor(rnd() * 1e6)),
  () => `${Math.floor(rnd() * 1e18)}`,
  () => `0.${'0'.repeat(Math.floor(rnd() * 30))}${Math.floor(rnd() * 1e17)}`,
  () => `${rnd() < 0.5 ? '-' : ''}${Math.floor(rnd() * 1e20)}.${Math.floor(rnd() * 1e20)}e${Math.floor(rnd() * 45) - 30}`,
  () => {
    const f = Math.fround(rnd());
    return (f + 2 ** (Math.floor(Math.log2(f)) - 24)).toPrecision(25);
  },
  () => pick(['-0', '0', '0.0', '1E+2', '1e-45', '3.4028235e38', '1.17549435e-38', '123456789012345678901234567890123456789', '7e-50']),
];

const f32 = (v: unknown) => JSON.stringify(v, (_k, x) => (x instanceof Float32Array ? { f32: Array.from(x, (y) => (Object.is(y, -0) ? '-0' : y)) } : x));

describe('parseInferJson', () => {
  it('reads FP32 data as Math.fround of the numbers JSON.parse reads, the rest as JSON.parse does', () => {
    for (let round = 0; round < 300; round++) {
      const data = Array.from({ length: 100 }, () => pick(numbers)());
      const text = `{ "id":"r\\u00e9${round}", "inputs":[{"name":"x","shape":[1,${data.length}],"datatype":"FP32","data":[${data.join(round % 2 ? ', ' : ',')}]}],"outputs":[{"name":"y"}],"parameters":{"data":[1,2]}}`;
      const want = JSON.parse(text);
      want.inputs[0].data = Float32Array.from(want.inputs[0].data);
      expect(f32(parseInferJson(Buffer.from(text)))).toBe(f32(want));
    }
  });

  it('keeps exact numbers for other datatypes and non-flat data, and steps aside for anything malformed', () => {
    const same = [
      '{"inputs":[{"datatype":"FP32","data":[[1,2],[3,4]]}]}',
      '{"inputs":[{"datatype":"FP32","data":[1,"a"]}]}',
      '{"inputs":[{"datatype":"FP32","data":[]}]}',
      ' {"a" : [ true , false , null , -1.5e3 , "x\\"y" ] } ',
      '"s"',
      '12',
    ];
    for (const t of same) expect(f32(parseInferJson(Buffer.from(t)))).toBe(f32(JSON.parse(t)));
    const aside = [
      '{"inputs":[{"datatype":"INT64","data":[1,2]}]}',
      '{"inputs":[{"datatype":"FP32","data":[1e39]}]}',
      '{"inputs": [',
      '{"a":01}',
      '[1,2,]',
      '{"__proto__":{"x":1}}',
      '{"a":1} x',
      '{"inputs":[{"data":[1.],"datatype":"FP32"}]}',
      '{"inputs":[{"data":[.5],"datatype":"FP32"}]}',
      '{"inputs":[{"data":[+1],"datatype":"FP32"}]}',
      '',
    ];
    for (const t of aside) expect(parseInferJson(Buffer.from(t)), t).toBeUndefined();
  });

  it('reads BYTES data as the strings JSON.parse reads (escapes, accents, CJK, emoji, empty), and numbers in it exactly', () => {
    const same = [
      '{"inputs":[{"name":"text","datatype":"BYTES","shape":[5],"data":["plain","crème brûlée","東京 🍕","","say \\"hi\\",\\n\\u0000 ok"]}]}',
      '{"inputs":[{"name":"text","datatype":"BYTES","shape":[2,1],"data":[["a"],["b"]]}]}',
    ];
    for (const t of same) expect(parseInferJson(Buffer.from(t))).toEqual(JSON.parse(t));
    // Numbers under BYTES are not read as float32: the exact numbers come back (the check then answers 400).
    const nums = '{"inputs":[{"name":"text","datatype":"BYTES","shape":[2],"data":[1,2.5]}]}';
    const got = parseInferJson(Buffer.from(nums)) ?? JSON.parse(nums);
    expect(got).toEqual(JSON.parse(nums));
    expect(Array.isArray((got as { inputs: { data: unknown }[] }).inputs[0]!.data)).toBe(true);
  });

  it('skips a byte order mark when told where the JSON starts', () => {
    const b = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"inputs":[{"datatype":"FP32","data":[0.5]}]}')]);
    expect(f32(parseInferJson(b, 3))).toBe(f32({ inputs: [{ datatype: 'FP32', data: new Float32Array([0.5]) }] }));
  });
});

describe('parseInferJson with large data', () => {
  it('reads arrays past the reused buffer into their own, and then small ones again', () => {
    const many = Array.from({ length: 400_000 }, (_, k) => (k % 1000) / 8);
    const body = Buffer.from(JSON.stringify({ inputs: [{ datatype: 'FP32', data: many }] }));
    // The reused buffer holds up to 2^20 elements, and an array may hold one per two bytes of body.
    expect(body.length).toBeGreaterThan(2 * 2 ** 20 + 100);
    const big = parseInferJson(body) as { inputs: { data: Float32Array }[] };
    const got = big.inputs[0]!.data;
    expect(got.length).toBe(many.length);
    // Byte for byte (a deep toEqual of this many elements takes seconds).
    expect(Buffer.from(got.buffer, got.byteOffset, got.byteLength).equals(Buffer.from(Float32Array.from(many).buffer))).toBe(true);
    const small = parseInferJson(Buffer.from('{"inputs":[{"datatype":"FP32","data":[0.25,-1e-3]}]}')) as { inputs: { data: Float32Array }[] };
    expect(small.inputs[0]!.data).toEqual(Float32Array.from([0.25, -1e-3]));
  });
});
