// Child processes for benchmarks: free ports, start-and-wait-until-ready, stop with SIGTERM, and a
// last-resort kill of everything still running if the bench itself is interrupted.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import readline from 'node:readline';

const live = new Set<ChildProcess>();
let hooked = false;
function killAllOnExit() {
  if (hooked) return;
  hooked = true;
  process.once('exit', () => {
    for (const c of live) c.kill('SIGKILL');
  });
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      for (const c of live) c.kill('SIGTERM');
      process.exit(130);
    });
  }
}

/** A port that was free a moment ago (the usual race applies; fine for a benchmark). */
export async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const addr = srv.address();
  await new Promise<void>((r) => srv.close(() => r()));
  if (typeof addr !== 'object' || !addr) throw new Error('no free port');
  return addr.port;
}

export interface SpawnOptions {
  args: string[];
  env?: Record<string, string>;
  /** Where stdout+stderr go; without it stderr is inherited and stdout is read for the ready line. */
  logFile?: string;
}

/** Spawns `node <args>` from the repository root, recorded for cleanup. */
export function spawnNode(o: SpawnOptions): ChildProcess {
  killAllOnExit();
  const out = o.logFile ? fs.openSync(o.logFile, 'a') : 'pipe';
  const child = spawn(process.execPath, o.args, {
    cwd: process.cwd(),
    env: { ...process.env, ...o.env },
    stdio: ['ignore', out, o.logFile ? out : 'inherit'],
  });
  if (typeof out === 'number') fs.closeSync(out);
  live.add(child);
  child.once('exit', () => live.delete(child));
  return child;
}

/** Resolves with the first stdout line matching `re`; rejects if the child exits or time runs out. */
export function waitForLine(child: ChildProcess, re: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    if (!child.stdout) return reject(new Error('child stdout is not piped'));
    const rl = readline.createInterface({ input: child.stdout });
    const done = (f: () => void) => {
      clearTimeout(timer);
      child.off('exit', onExit);
      rl.off('line', onLine);
      f();
    };
    const onLine = (line: string) => {
      const m = line.match(re);
      if (m) done(() => resolve(m));
    };
    const onExit = (code: number | null) => done(() => reject(new Error(`child exited (code ${code}) before printing ${re}`)));
    const timer = setTimeout(() => done(() => reject(new Error(`no ${re} within ${timeoutMs} ms`))), timeoutMs);
    rl.on('line', onLine);
    child.once('exit', onExit);
  });
}

/** Polls `check` until it returns true; rejects with the last reason after timeoutMs. */
export async function pollUntil(what: string, check: () => Promise<boolean>, timeoutMs: number, child?: ChildProcess): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (child && child.exitCode !== null) throw new Error(`${what}: process exited with code ${child.exitCode}`);
    try {
      if (await check()) return;
    } catch (e) {
      last = (e as Error).message;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${what}: not ready within ${timeoutMs / 1000} s${last ? ` (${last})` : ''}`);
}

/** SIGTERM, then SIGKILL if the child has not exited after graceMs. */
export async function stopChild(child: ChildProcess, graceMs = 15_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** Last lines of a log file, for error messages. */
export function tail(file: string, lines = 20): string {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}
