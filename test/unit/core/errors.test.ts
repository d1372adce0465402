import { describe, expect, it } from 'vitest';
import { AppError, ERROR_CODES, fromFailedReason, toFailedReason } from '../../../core/errors.ts';

describe('errors crossing the queue', () => {
  it('a failed job reason carries code, message and retryable, and gives back the same AppError', () => {
    for (const code of ERROR_CODES) {
      for (const retryable of [false, true]) {
        const message = `[${code}] a message with "quotes", brackets and\na newline`;
        const back = fromFailedReason(toFailedReason(new AppError(code, message, retryable)));
        expect(back).toBeInstanceOf(AppError);
        expect({ code: back.code, message: back.message, retryable: back.retryable, status: back.httpStatus }).toEqual({
          code,
          message,
          retryable,
          status: new AppError(code, '').httpStatus,
        });
      }
    }
  });

  it('a reason that is not error data is an internal error keeping the reason as its message', () => {
    const cases = ['engine exploded', '[bad_request] the old string form', '{"code":"no_such_code","message":"x"}', '{not json', ''];
    for (const reason of cases) {
      const e = fromFailedReason(reason);
      expect([e.code, e.message, e.retryable], reason).toEqual(['internal', reason || 'job failed', false]);
    }
    expect(fromFailedReason(undefined).message).toBe('job failed');
  });
});
