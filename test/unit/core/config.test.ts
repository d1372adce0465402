import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ConfigError, configKeys, keyPrefix, loadConfig } from '../../../core/config.ts';

describe('config', () => {
  it('has documented defaults', () => {
    const cfg = loadConfig({});
    expect(cfg).toMatchObject({ MODELQ_REDIS_URL: 'redis://127.0.0.1:6379', MODELQ_PREFIX: 'modelq', MODELQ_DATA_DIR: './data', MODELQ_PORT: 8080, MODELQ_DASHBOARD_PORT: 8081, MODELQ_DEVICE: 'cpu', MODELQ_WORKERS: 2, MODELQ_DASHBOARD_ADMIN: false });
    expect(cfg.MODELQ_QUEUES).toEqual(['model', 'infer', 'batch', 'score', 'train', 'compress']);
    expect(Object.isFrozen(cfg)).toBe(true);
    expect(keyPrefix(cfg)).toBe('{modelq}');
  });

  it('parses values', () => {
    const cfg = loadConfig({ MODELQ_PORT: '9000', MODELQ_QUEUES: 'infer, model', MODELQ_DEVICE: 'cuda', MODELQ_DASHBOARD_ADMIN: '1' });
    expect(cfg).toMatchObject({ MODELQ_PORT: 9000, MODELQ_QUEUES: ['infer', 'model'], MODELQ_DEVICE: 'cuda', MODELQ_DASHBOARD_ADMIN: true });
  });

  it.each([
    ['MODELQ_PORT', 'eighty'],
    ['MODELQ_PORT', '70000'],
    ['MODELQ_DEVICE', 'tpu'],
    ['MODELQ_QUEUES', 'infer,bogus'],
    ['MODELQ_REDIS_URL', 'http://x'],
    ['MODELQ_PREFIX', 'has space'],
    ['MODELQ_ENGINE_THREADS', '0'],
  ])('rejects %s=%s with a message naming the key', (key, value) => {
    expect(() => loadConfig({ [key]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ [key]: value })).toThrow(new RegExp(key));
  });

  it('every key is documented in the README', () => {
    const readme = fs.readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
    for (const key of Object.keys(configKeys)) expect(readme, key).toContain(`\`${key}\``);
  });
});
