import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createAuditLogger, prettyLine } from '../../../core/logger.ts';

describe('prettyLine', () => {
  it('turns a pino JSON line into time, level, component, message and fields', () => {
    const json = JSON.stringify({
      level: 30,
      time: '2026-12-07T12:30:01.123Z',
      pid: 7,
      component: 'producer',
      bind: '127.0.0.1',
      port: 8080,
      msg: 'producer listening',
    });
    expect(prettyLine(json)).toBe('12:30:01 INFO  producer: producer listening bind=127.0.0.1 port=8080\n');
    const warn = JSON.stringify({ level: 40, time: 0, component: 'worker', err: 'a b', msg: 'x' });
    expect(prettyLine(warn)).toBe('00:00:00 WARN  worker: x err="a b"\n');
    expect(prettyLine(warn, true)).toContain('\x1b[33mWARN \x1b[0m');
    expect(prettyLine('not json')).toBe('not json');
  });
});

describe('createAuditLogger', () => {
  it('appends JSON lines to MODELQ_AUDIT_LOG when it names a file', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'modelq-audit-'));
    const file = path.join(dir, 'sub', 'audit.log');
    try {
      const a = createAuditLogger('producer', file, 'warn');
      a.info({ audit: true, route: '/v1/batches', status: 202 }, 'audit');
      a.flush();
      const lines = fs
        .readFileSync(file, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      expect(lines).toEqual([expect.objectContaining({ audit: true, route: '/v1/batches', status: 202, component: 'producer' })]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('is silent in readable terminal output unless MODELQ_LOG_LEVEL is debug or trace; at info in JSON', () => {
    expect(createAuditLogger('producer', '', 'info', 'pretty').level).toBe('silent');
    expect(createAuditLogger('producer', '', 'debug', 'pretty').isLevelEnabled('info')).toBe(true);
    expect(createAuditLogger('producer', '', 'info', 'json').isLevelEnabled('info')).toBe(true);
    expect(createAuditLogger('producer', '', 'warn', 'json').isLevelEnabled('info')).toBe(false);
  });
});
