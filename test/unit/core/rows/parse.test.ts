// The ordinary row parser for strings: JSONL values for BYTES inputs ([N] and [N, 1]), and CSV
// columns named as inputs of one value per row (strings as they are, quoted commas and newlines).
import { describe, expect, it } from 'vitest';
import { checkCsvHeader, csvFields, csvIgnoredColumns, rowParser } from '../../../../core/rows/parse.ts';
import type { TensorSpec } from '../../../../core/tensors.ts';

const text: TensorSpec[] = [{ name: 'text', datatype: 'BYTES', shape: [-1] }];
const text2: TensorSpec[] = [{ name: 'text', datatype: 'BYTES', shape: [-1, 1] }];
const mixed: TensorSpec[] = [
  { name: 'title', datatype: 'BYTES', shape: [-1, 1] },
  { name: 'price', datatype: 'FP32', shape: [-1] },
  { name: 'n', datatype: 'INT64', shape: [-1, 1] },
  { name: 'new', datatype: 'BOOL', shape: [-1] },
];

describe('string rows', () => {
  it('JSONL: a string per row for [N] and [N, 1] inputs (bare or in a list); numbers are errors naming the input, null is a missing value', () => {
    expect(rowParser('jsonl', text)('{"id":"a","text":"héllo 🍕"}')).toEqual({ id: 'a', values: { text: ['héllo 🍕'] }, shapes: { text: [] } });
    expect(rowParser('jsonl', text)('{"text":""}')).toEqual({ values: { text: [''] }, shapes: { text: [] } });
    expect(rowParser('jsonl', text2)('{"text":"x"}')).toEqual({ values: { text: ['x'] }, shapes: { text: [1] } });
    expect(rowParser('jsonl', text2)('{"text":["x"]}')).toEqual({ values: { text: ['x'] }, shapes: { text: [1] } });
    expect(rowParser('jsonl', text)('{"id":1,"text":7}')).toMatchObject({
      id: 1,
      error: { code: 'bad_row', message: expect.stringMatching(/input "text".*must be a string/) },
    });
    expect(rowParser('jsonl', text2)('{"text":null}')).toEqual({ values: { text: [''] }, shapes: { text: [1] } });
    expect(rowParser('jsonl', text2)('{"text":["a","b"]}')).toMatchObject({ error: { message: expect.stringMatching(/2 elements/) } });
  });

  it('CSV: columns named as the inputs feed them, others are ignored; quoted commas, quotes and newlines stay in the string', () => {
    const header = 'id,price,title,new,n,comment';
    expect(checkCsvHeader(header, mixed)).toBeNull();
    const parse = rowParser('csv', mixed, header);
    expect(parse('r1,2.5,"Hello, ""world""\nagain",true,3,ignored')).toEqual({
      id: 'r1',
      values: { title: ['Hello, "world"\nagain'], price: [2.5], n: [3], new: [true] },
      shapes: { title: [1], price: [], n: [1], new: [] },
    });
    expect(parse('r2,1,,0,4,x')).toMatchObject({ values: { title: [''], new: [false] } });
    expect(parse('r3,cheap,t,true,4,x')).toMatchObject({ id: 'r3', error: { message: 'column "price" is not a number: "cheap"' } });
    expect(parse('r4,1,t,maybe,4,x')).toMatchObject({ error: { message: 'column "new" is not a boolean: "maybe"' } });
    expect(parse('r5,1,t,true,4.5,x')).toMatchObject({ error: { message: 'column "n" is not a number: "4.5"' } });
    expect(parse('r6,1,t')).toMatchObject({ error: { message: 'has 3 columns, the header has 6' } });
  });

  it('CSV header checks name the missing input column, and keep numeric models positional', () => {
    expect(checkCsvHeader('id,body', text)).toBe('the CSV header has no column "text" (the model\'s input)');
    expect(checkCsvHeader('id,body', mixed)).toBe('the CSV header has no column "title", "price", "n", "new" (the model\'s inputs)');
    expect(checkCsvHeader('text', text2)).toBeNull();
    expect(checkCsvHeader('\uFEFFtext,id', text)).toBeNull(); // a spreadsheet's byte order mark
    expect(rowParser('csv', text, '\uFEFFid,text')('7,hi')).toEqual({ id: '7', values: { text: ['hi'] }, shapes: { text: [] } });
    expect(checkCsvHeader('a,b,c', [{ name: 'x', datatype: 'FP32', shape: [-1, 3] }])).toBeNull();
    expect(checkCsvHeader('a,b', [{ name: 'x', datatype: 'FP32', shape: [-1, 3] }])).toMatch(/2 feature columns.*takes 3/);
    expect(checkCsvHeader('x', [{ name: 'x', datatype: 'BYTES', shape: [-1, 2] }])).toMatch(/use JSONL/);
  });
});

describe('CSV lines with a quote left open', () => {
  it('never throw: the quote closes at the end of the line, and a row gets an error naming its value', () => {
    expect(csvFields('1,"abc')).toEqual(['1', 'abc']);
    expect(csvFields('"')).toEqual(['']);
    expect(() => checkCsvHeader('id,"price', mixed)).not.toThrow();
    const parse = rowParser('csv', mixed, 'id,price,title,new,n');
    expect(parse('r1,"2.5,t,true,4')).toMatchObject({ id: 'r1', error: { code: 'bad_row' } });
  });
});

describe('missing values of column-input models', () => {
  const cols: TensorSpec[] = [
    { name: 'age', datatype: 'FP32', shape: [-1, 1] },
    { name: 'city', datatype: 'BYTES', shape: [-1, 1] },
    { name: 'n', datatype: 'INT64', shape: [-1, 1] },
  ];
  it('JSONL: null and an absent key are NaN for a float input and "" for a string one; an integer input has no missing value', () => {
    const parse = rowParser('jsonl', cols);
    expect(parse('{"age":null,"n":1}')).toEqual({ values: { age: [Number.NaN], city: [''], n: [1] }, shapes: { age: [1], city: [1], n: [1] } });
    expect(parse('{"age":"NaN","city":[null],"n":[2],"target":"x"}')).toMatchObject({ values: { age: [Number.NaN], city: [''], n: [2] } });
    expect(parse('{"age":3}')).toMatchObject({ error: { message: 'missing input "n"' } });
    expect(parse('{"age":"old","n":1}')).toMatchObject({ error: { message: expect.stringMatching(/must be a finite number/) } });
  });
  it('CSV: an empty or "NaN" cell of a float column is NaN, of a string column ""; other columns are listed as ignored', () => {
    const header = 'target,n,city,age';
    const parse = rowParser('csv', cols, header);
    expect(parse('a,1,,')).toEqual({ values: { age: [Number.NaN], city: [''], n: [1] }, shapes: { age: [1], city: [1], n: [1] } });
    expect(parse('a,1,nice, nan ')).toMatchObject({ values: { age: [Number.NaN], city: ['nice'] } });
    expect(parse('a,,nice,3')).toMatchObject({ error: { message: 'column "n" is not a number: ""' } });
    expect(csvIgnoredColumns(`id,${header}`, cols)).toEqual(['target']);
    expect(csvIgnoredColumns('a,b,c', [{ name: 'x', datatype: 'FP32', shape: [-1, 3] }])).toEqual([]);
  });
});
