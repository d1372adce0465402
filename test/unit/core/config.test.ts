import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ConfigError, configKeys, configTable, keyPrefix, loadConfig, parseConfig } from '../../../core/config.ts';

describe('config', () => {
  it('has documented defaults', () => {
    const cfg = loadConfig({});
    expect(cfg).toMatchObject({
      MODELQ_REDIS_URL: 'redis://127.0.0.1:6379',
      MODELQ_PREFIX: 'modelq',
      MODELQ_DATA_DIR: './data',
      MODELQ_PORT: 8080,
      MODELQ_DASHBOARD_PORT: 8081,
      MODELQ_DEVICE: 'cpu',
      MODELQ_WORKERS: 2,
      MODELQ_DASHBOARD_ADMIN: false,
    });
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
    ['MODELQ_REDIS_URL', 'redis://:pa@ss@host:port'],
    ['MODELQ_PREFIX', 'has space'],
    ['MODELQ_ENGINE_THREADS', '0'],
  ])('rejects %s=%s with a message naming the key', (key, value) => {
    expect(() => loadConfig({ [key]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ [key]: value })).toThrow(new RegExp(key));
  });

  it('lists every problem, including the rules between keys', () => {
    const { cfg, problems } = parseConfig({ MODELQ_PORT: '0', MODELQ_DEVICE: 'tpu', MODELQ_STORE: 's3', MODELQ_DRIFT_WARN: '0.3', MODELQ_DRIFT_ALERT: '0.2' });
    expect(cfg).toBeNull();
    expect(problems.map((p) => p.split(/[=:]/)[0])).toEqual(['MODELQ_PORT', 'MODELQ_DEVICE', 'MODELQ_S3_BUCKET', 'MODELQ_DRIFT_WARN']);
  });

  it("docs/operations.md's configuration table is the one rendered from configKeys (npm run docs:config)", () => {
    const page = fs.readFileSync(new URL('../../../docs/operations.md', import.meta.url), 'utf8');
    const section = /<!-- config-table:start[^>]*-->\n([\s\S]*?)\n<!-- config-table:end -->/.exec(page);
    expect(section, 'docs/operations.md has a config-table section').not.toBeNull();
    const documented = section![1]!.split('\n');
    const rendered = configTable().split('\n');
    // Row by row, so a failure names the key whose row is missing or wrong.
    for (const [i, row] of rendered.entries()) expect(documented[i], row.split(' | ')[0]).toBe(row);
    expect(documented.length).toBe(rendered.length);
  });

  it('the rendered table lists every key with its default', () => {
    const table = configTable();
    for (const key of Object.keys(configKeys)) expect(table).toContain(`| \`${key}\` |`);
    expect(table).toContain('| `MODELQ_PORT` | `8080` | integer 1-65,535 |');
    expect(table).toMatch(/\| `MODELQ_API_KEYS` \| unset \| [^|]*at least 16 characters, printable ASCII without spaces/);
    // Every key says what it takes, from its schema or its `allowed` note.
    for (const row of table.split('\n').slice(2)) expect(row.split(' | ')[2], row.split(' | ')[0]).not.toBe('see meaning');
    expect(table).toContain('| `MODELQ_DASHBOARD_ADMIN` | `0` |');
    expect(table).toContain('| `MODELQ_S3_BUCKET` | unset |');
    expect(table).toContain('| `MODELQ_QUEUES` | `model,infer,batch,score,train,compress` |');
  });
});
