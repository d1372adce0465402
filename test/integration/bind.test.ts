// Every listener (producer HTTP and gRPC, dashboard) binds loopback unless MODELQ_BIND says
// otherwise: read from the kernel's socket table, not from what the processes say of themselves.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import readline from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import { testEnv } from '../helpers/platform.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const stop of stops.splice(0)) await stop();
});

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as net.AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

/** The local addresses of the sockets listening on `port`, from /proc/net/tcp and tcp6 (Linux). */
function listeningOn(port: number): string[] {
  const found: string[] = [];
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    if (!fs.existsSync(file)) continue;
    for (const line of fs.readFileSync(file, 'utf8').split('\n').slice(1)) {
      const [, local, , state] = line.trim().split(/\s+/);
      if (!local || state !== '0A') continue; // 0A: LISTEN
      const [hex, portHex] = local.split(':') as [string, string];
      if (parseInt(portHex, 16) !== port) continue;
      // IPv4 is one little-endian word; IPv6 is shown as its hex (any IPv6 listener is not 127.0.0.1).
      found.push(
        hex.length === 8
          ? (hex.match(/../g) as string[])
              .reverse()
              .map((b) => parseInt(b, 16))
              .join('.')
          : `ipv6:${hex}`,
      );
    }
  }
  return found.sort();
}

/** Starts one of the platform's processes and resolves once it has logged every line in `ready`. */
async function startProcess(main: string, env: Record<string, string>, ready: string[]): Promise<void> {
  const { MODELQ_BIND: _inherited, ...parent } = process.env;
  const child = spawn(process.execPath, ['--import', 'tsx', main], {
    cwd: ROOT,
    env: { ...parent, ...env, MODELQ_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  stops.push(async () => {
    if (child.exitCode === null) child.kill('SIGKILL');
    await exited;
  });
  const lines: string[] = [];
  child.stderr!.on('data', (b) => lines.push(String(b)));
  await new Promise<void>((resolve, reject) => {
    const waiting = new Set(ready);
    readline.createInterface({ input: child.stdout! }).on('line', (l) => {
      lines.push(l);
      for (const w of waiting) if (l.includes(`"${w}"`)) waiting.delete(w);
      if (!waiting.size) resolve();
    });
    void exited.then(() => reject(new Error(`${main} exited before listening:\n${lines.join('\n')}`)));
  });
}

describe('MODELQ_BIND', () => {
  it('producer (HTTP and gRPC) and dashboard listen on 127.0.0.1 only by default', async () => {
    const [http, grpc, dashboard] = [await freePort(), await freePort(), await freePort()];
    const env = testEnv({ MODELQ_PORT: String(http), MODELQ_GRPC_PORT: String(grpc), MODELQ_DASHBOARD_PORT: String(dashboard) });
    await startProcess('producer/main.ts', env, ['producer listening', 'grpc listening']);
    await startProcess('dashboard/main.ts', env, ['dashboard listening']);
    expect(listeningOn(http), 'producer HTTP').toEqual(['127.0.0.1']);
    expect(listeningOn(grpc), 'producer gRPC').toEqual(['127.0.0.1']);
    expect(listeningOn(dashboard), 'dashboard').toEqual(['127.0.0.1']);
    // The dashboard's proxy finds the producer on loopback by itself.
    const res = await fetch(`http://127.0.0.1:${dashboard}/api/v2/health/live`);
    expect(res.status).toBe(200);
  });

  it('binds the address it names, every listener alike', async () => {
    // Another loopback address: it shows the setting is obeyed without opening a port to the network.
    const [http, grpc, dashboard] = [await freePort(), await freePort(), await freePort()];
    const env = testEnv({ MODELQ_BIND: '127.0.0.2', MODELQ_PORT: String(http), MODELQ_GRPC_PORT: String(grpc), MODELQ_DASHBOARD_PORT: String(dashboard) });
    await startProcess('producer/main.ts', env, ['producer listening', 'grpc listening']);
    await startProcess('dashboard/main.ts', env, ['dashboard listening']);
    expect(listeningOn(http)).toEqual(['127.0.0.2']);
    expect(listeningOn(grpc)).toEqual(['127.0.0.2']);
    expect(listeningOn(dashboard)).toEqual(['127.0.0.2']);
    expect((await fetch(`http://127.0.0.2:${dashboard}/api/v2/health/live`)).status).toBe(200);
  });
});
