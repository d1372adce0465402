// Secrets never reach a log line or a start-up error: Redis URL passwords are masked, API keys hidden.
import { describe, expect, it } from 'vitest';
import { loadConfig, maskUrl } from '../../../core/config.ts';

describe('maskUrl', () => {
  it('replaces every password in a text by ***', () => {
    expect(maskUrl('redis://:s3cret@h:6379/0')).toBe('redis://:***@h:6379/0');
    expect(maskUrl('rediss://alice:s3cret@h')).toBe('rediss://alice:***@h');
    expect(maskUrl('redis://127.0.0.1:6379')).toBe('redis://127.0.0.1:6379');
    expect(maskUrl('cannot reach redis://:a@b and rediss://:c@d')).toBe('cannot reach redis://:***@b and rediss://:***@d');
  });

  it('keeps secrets out of configuration errors', () => {
    expect(() => loadConfig({ MODELQ_REDIS_URL: 'http://:hunter2@h' })).toThrow(/MODELQ_REDIS_URL="http:\/\/:\*\*\*@h"/);
    expect(() => loadConfig({ MODELQ_REDIS_URL: 'http://:hunter2@h' })).not.toThrow(/hunter2/);
  });
});
