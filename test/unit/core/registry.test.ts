import { describe, expect, it } from 'vitest';
import { AppError } from '../../../core/errors.ts';
import { checkName, parseRef } from '../../../core/registry.ts';

describe('model references', () => {
  it('parses name, name@alias and name@N', () => {
    expect(parseRef('digits')).toEqual({ name: 'digits', selector: null });
    expect(parseRef('digits@prod')).toEqual({ name: 'digits', selector: 'prod' });
    expect(parseRef('digits@3')).toEqual({ name: 'digits', selector: 3 });
  });
  it.each(['Digits', '', '-x', 'a/b', '../etc', 'x'.repeat(65)])('rejects the name %j with a 400', (n) => {
    expect(() => checkName(n)).toThrow(AppError);
    try {
      checkName(n);
    } catch (e) {
      expect((e as AppError).httpStatus).toBe(400);
    }
  });
  it('rejects bad selectors', () => {
    expect(() => parseRef('digits@')).toThrow(/after @/);
    expect(() => parseRef('digits@0')).toThrow(/after @/);
    expect(() => parseRef('digits@Prod')).toThrow(/after @/);
  });
});
