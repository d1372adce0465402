import { describe, expect, it } from 'vitest';
import { configKeys, parseConfig } from '../../../core/config.ts';
import { CLIENT_KEYS, closestKey } from '../../../core/config-unknown.ts';

describe('unknown MODELQ_* keys', () => {
  it('are configuration problems naming the closest known key', () => {
    const { cfg, problems } = parseConfig({ MODELQ_WORKER: '4', MODELQ_REDIS: 'redis://x:1', MODELQ_PROT: '9000' });
    expect(cfg).toBeNull();
    expect(problems).toEqual([
      expect.stringMatching(/^MODELQ_PROT: not a configuration key; did you mean MODELQ_PORT\?/),
      expect.stringMatching(/^MODELQ_REDIS: not a configuration key; did you mean MODELQ_REDIS_URL\?/),
      expect.stringMatching(/^MODELQ_WORKER: not a configuration key; did you mean MODELQ_WORKERS\?/),
    ]);
  });

  it('name no key when none is close', () => {
    const { problems } = parseConfig({ MODELQ_ZZZZZZZZZZZZZZZZZZZZZZZZ: '1' });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^MODELQ_ZZZZZZZZZZZZZZZZZZZZZZZZ: not a configuration key \(/);
    expect(closestKey('MODELQ_ZZZZZZZZZZZZZZZZZZZZZZZZ', Object.keys(configKeys))).toBeUndefined();
  });

  it('leave the keys of the CLI, docker-compose and the test harnesses alone, and other variables too', () => {
    const env = Object.fromEntries(Object.keys(CLIENT_KEYS).map((k) => [k, '1']));
    expect(parseConfig({ ...env, HOME: '/home/x', MODELQ: 'x', NOT_MODELQ_WORKER: '1' }).problems).toEqual([]);
    for (const k of ['MODELQ_URL', 'MODELQ_API_KEY', 'MODELQ_TEST_FAULTS', 'MODELQ_FUZZ_CASES']) expect(CLIENT_KEYS).toHaveProperty(k);
  });
});
