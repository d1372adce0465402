import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { EXIT_UNHANDLED } from '../../../core/last-resort.ts';

const modules = path.resolve(import.meta.dirname, '../../../core');

// A process with the policy installed that fails the way `kind` says, after its event loop started.
type Kind = 'throw' | 'reject' | 'error-event';
async function runChild(kind: Kind): Promise<{ status: number | null; stdout: string }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'modelq-last-resort-'));
  const file = path.join(dir, 'child.ts');
  const fail = {
    throw: `setTimeout(() => { throw new Error('boom at redis://user:hunter2@db:6379'); }, 10);`,
    reject: `setTimeout(() => { void Promise.reject(new Error('nobody awaited this')); }, 10);`,
    'error-event': `import { EventEmitter } from 'node:events'; setTimeout(() => new EventEmitter().emit('error', new Error('stream gone')), 10);`,
  }[kind];
  fs.writeFileSync(
    file,
    [
      `import { installLastResort } from '${pathToFileURL(path.join(modules, 'last-resort.ts')).href}';`,
      `import { createLogger } from '${pathToFileURL(path.join(modules, 'logger.ts')).href}';`,
      `installLastResort(createLogger('child', 'info'));`,
      fail,
      `setTimeout(() => process.exit(0), 5000);`,
    ].join('\n'),
  );
  const r = await new Promise<{ status: number | null; stdout: string }>((resolve) => {
    const child = execFile(process.execPath, ['--import', 'tsx', file], { encoding: 'utf8', timeout: 20_000 }, (_err, stdout) =>
      resolve({ status: child.exitCode, stdout }),
    );
  });
  fs.rmSync(dir, { recursive: true, force: true });
  return r;
}

// The three children start together (each is a tsx start-up, seconds on a loaded machine).
const runs = {} as Record<Kind, { status: number | null; stdout: string }>;
beforeAll(async () => {
  const kinds: Kind[] = ['throw', 'reject', 'error-event'];
  const done = await Promise.all(kinds.map(runChild));
  kinds.forEach((k, n) => (runs[k] = done[n]!));
});

describe('last-resort policy', () => {
  it('logs an uncaught exception once, without the URL password, and exits for a restart', () => {
    const r = runs.throw;
    expect(r.status).toBe(EXIT_UNHANDLED);
    const fatal = r.stdout.split('\n').filter((l) => l.includes('"level":60'));
    expect(fatal).toHaveLength(1);
    expect(fatal[0]).toContain('uncaughtException');
    expect(fatal[0]).toContain('boom at');
    expect(r.stdout).not.toContain('hunter2');
  });

  it('treats an unhandled rejection and an error event without listener the same way', () => {
    const rejected = runs.reject;
    expect(rejected.status).toBe(EXIT_UNHANDLED);
    expect(rejected.stdout).toContain('nobody awaited this');
    const event = runs['error-event'];
    expect(event.status).toBe(EXIT_UNHANDLED);
    expect(event.stdout).toContain('stream gone');
  });
});
