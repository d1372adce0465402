import { describe, expect, it } from 'vitest';
import { declaredByContentType, declaredByFileName, decideFormat, sniff } from '../../../producer/batches/sniff.ts';

const b = (s: string | number[]) => (typeof s === 'string' ? Buffer.from(s) : Buffer.from(s));

describe('batch format sniffing', () => {
  it('recognises Parquet, JSONL and CSV from the first bytes', () => {
    expect(sniff(b('PAR1\x15\x04')).format).toBe('parquet');
    expect(sniff(b('{"input":[1,2]}\n')).format).toBe('jsonl');
    expect(sniff(b('\ufeff\n  {"input":[1]}')).format).toBe('jsonl'); // byte order mark, blank line
    expect(sniff(b('id,f0,f1\n1,2,3\n')).format).toBe('csv');
    expect(sniff(b('f0\n1\n')).format).toBe('csv');
  });

  it('names JSONL whose newlines were stripped (curl -d): objects one after another on a line', () => {
    const flat = /one after another on one line .*--data-binary/;
    expect(sniff(b('{"input":[1,2]}{"input":[3,4]}'))).toMatchObject({ format: null, what: expect.stringMatching(flat) });
    expect(sniff(b('{"a":{"b":[1,{"c":2}]}} {"a":1}'))).toMatchObject({ format: null, what: expect.stringMatching(flat) });
    // Braces inside strings, escaped quotes, an object followed by a newline, an object longer than the bytes seen: JSONL.
    expect(sniff(b('{"t":"}{","u":"\\"}{"}\n{"t":"x"}\n')).format).toBe('jsonl');
    expect(sniff(b('{"input":[1]}\n{"input":[2]}')).format).toBe('jsonl');
    expect(sniff(b('{"input":[1,2,3')).format).toBe('jsonl');
  });

  it('names what other bytes are', () => {
    expect(sniff(b([0x1f, 0x8b, 8, 0]))).toMatchObject({ format: null, what: expect.stringMatching(/gzip/) });
    expect(sniff(b('PK\x03\x04rest'))).toMatchObject({ format: null, what: expect.stringMatching(/ZIP/) });
    expect(sniff(b('[{"input":[1]}]'))).toMatchObject({ format: null, what: expect.stringMatching(/JSON array/) });
    expect(sniff(b([0x41, 0x00, 0x42, 0x00]))).toMatchObject({ format: null, what: expect.stringMatching(/binary/) });
    expect(sniff(b([0xff, 0xfe, 0x61, 0x00]))).toMatchObject({ format: null, what: expect.stringMatching(/UTF-16 text \(save it as UTF-8\)/) });
    expect(sniff(b(' \n\r\n'))).toMatchObject({ format: null, empty: true });
  });

  it('reads declarations from content types and file names; types that say nothing declare nothing', () => {
    expect(declaredByContentType('text/csv; charset=utf-8')).toEqual({ format: 'csv', by: 'content-type text/csv' });
    expect(declaredByContentType('application/vnd.apache.parquet')?.format).toBe('parquet');
    expect(declaredByContentType('application/x-ndjson')?.format).toBe('jsonl');
    for (const t of [undefined, 'application/octet-stream', 'application/x-www-form-urlencoded', 'text/plain']) expect(declaredByContentType(t)).toBeNull();
    expect(declaredByFileName('rows.CSV')?.format).toBe('csv');
    expect(declaredByFileName('rows.parquet')?.format).toBe('parquet');
    expect(declaredByFileName('rows.ndjson')?.format).toBe('jsonl');
    expect(declaredByFileName('rows.txt')).toBeNull();
  });

  it('uses the bytes when nothing is declared, and refuses a declaration they contradict, naming both', () => {
    expect(decideFormat(b('a,b\n1,2\n'), null)).toBe('csv');
    expect(decideFormat(b('a,b\n1,2\n'), { format: 'csv', by: 'format=csv' })).toBe('csv');
    expect(() => decideFormat(b('{"a":1}\n'), { format: 'csv', by: 'format=csv' })).toThrow(/declared CSV \(format=csv\) but its bytes are JSONL/);
    expect(() => decideFormat(b('{"a":1}\n'), { format: 'parquet', by: 'content-type application/x-parquet' })).toThrow(
      /is not a Parquet file: its bytes are JSONL/,
    );
    expect(() => decideFormat(b([0x1f, 0x8b, 8]), null)).toThrow(/cannot read the file: its bytes are gzip-compressed/);
    // An empty file goes on to be refused as one with no rows.
    expect(decideFormat(b(''), null)).toBe('jsonl');
  });
});
