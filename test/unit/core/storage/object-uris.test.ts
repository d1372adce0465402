// URIs of batches by reference: what parses, which roots a URI lies under (a root is a folder,
// never a string prefix of a sibling), and what a glob matches.
import { describe, expect, it } from 'vitest';
import { BadUriError, globRegExp, parseObjectUri, underRoots } from '../../../../core/storage/object-uris.ts';

describe('object URIs', () => {
  it('parses s3:// and store: URIs and refuses other schemes, bad buckets and dot segments', () => {
    expect(parseObjectUri('s3://lake/acme/x.parquet')).toEqual({ kind: 's3', bucket: 'lake', key: 'acme/x.parquet' });
    expect(parseObjectUri('s3://lake/acme/')).toEqual({ kind: 's3', bucket: 'lake', key: 'acme/' });
    expect(parseObjectUri('store:datasets/a/')).toEqual({ kind: 'store', key: 'datasets/a/' });
    for (const bad of ['http://host/x', 'file:///etc/passwd', 's3://UPPER/x', 's3://lake/a/../b', 's3://lake/a//b', 's3://lake/a b', 'S3://lake/x'])
      expect(() => parseObjectUri(bad), bad).toThrow(BadUriError);
    expect(() => parseObjectUri('s3://lake/a/*.jsonl')).toThrow(BadUriError);
    expect(parseObjectUri('s3://lake/a/*.jsonl', { glob: true }).key).toBe('a/*.jsonl');
  });

  it('puts a URI under a root only inside its folder, globs by their literal prefix', () => {
    const roots = ['s3://lake/acme/', 's3://other/t'];
    const under = (u: string) => underRoots(parseObjectUri(u, { glob: true }), roots);
    expect(under('s3://lake/acme/x.jsonl')).toBe(true);
    expect(under('s3://lake/acme')).toBe(true);
    expect(under('s3://lake/acme/**/*.parquet')).toBe(true);
    expect(under('s3://other/t/y')).toBe(true);
    expect(under('s3://lake/acme2/x')).toBe(false);
    expect(under('s3://lake/ac*')).toBe(false);
    expect(under('s3://lake/')).toBe(false);
    expect(under('s3://other/tx/y')).toBe(false);
    expect(under('store:acme/x')).toBe(false);
    expect(underRoots(parseObjectUri('store:tenants/acme/x'), ['store:tenants/acme/'])).toBe(true);
  });

  it('matches globs within a segment (* ?) or across them (**)', () => {
    expect(globRegExp('a/*.jsonl').test('a/x.jsonl')).toBe(true);
    expect(globRegExp('a/*.jsonl').test('a/b/x.jsonl')).toBe(false);
    expect(globRegExp('a/**/*.jsonl').test('a/b/c/x.jsonl')).toBe(true);
    expect(globRegExp('a/part-?.pq').test('a/part-1.pq')).toBe(true);
    expect(globRegExp('a/part-?.pq').test('a/part-10.pq')).toBe(false);
    expect(globRegExp('a.b/*').test('axb/c')).toBe(false);
  });
});
