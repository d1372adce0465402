import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { EXIT_CONFIG } from '../../../core/config.ts';
import { childExitAction, preflight } from '../../../cli/preflight.ts';

const servers: net.Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

/** A port held by another program, listening as the producer does (every interface). */
async function heldPort(): Promise<number> {
  const s = net.createServer();
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, r));
  return (s.address() as net.AddressInfo).port;
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, r));
  const { port } = s.address() as net.AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

describe('preflight (npm start checks the whole configuration first)', () => {
  it('lists every problem at once, each naming its key and the rule', async () => {
    const { cfg, problems } = await preflight({
      MODELQ_API_KEYS: JSON.stringify({ '0123456789': { tenant: 't', scopes: ['read'] } }),
      MODELQ_PORT: 'eighty',
      MODELQ_STORE: 's3',
      MODELQ_DRIFT_WARN: '0.5',
      MODELQ_DASHBOARD_PORT: String(await freePort()),
      MODELQ_GRPC_PORT: '0',
    });
    expect(cfg).toBeNull();
    expect(problems).toHaveLength(4);
    expect(problems.join('\n')).toMatch(/MODELQ_PORT="eighty"/);
    expect(problems.join('\n')).toMatch(/MODELQ_S3_BUCKET: required when MODELQ_STORE=s3/);
    expect(problems.join('\n')).toMatch(/MODELQ_DRIFT_WARN=0.5: must be below MODELQ_DRIFT_ALERT=0.25/);
    expect(problems.join('\n')).toMatch(/MODELQ_API_KEYS: every key must be at least 16 characters long \(one has 10\)/);
  });

  it('refuses a key with a space (it could never be sent as a bearer token), without printing it', async () => {
    const key = 'has a space in it 0123456789';
    const { problems } = await preflight({
      MODELQ_API_KEYS: JSON.stringify({ [key]: { tenant: 't', scopes: ['read'] } }),
      MODELQ_GRPC_PORT: '0',
      MODELQ_PORT: String(await freePort()),
      MODELQ_DASHBOARD_PORT: String(await freePort()),
    });
    expect(problems).toEqual([expect.stringMatching(/MODELQ_API_KEYS: a key has a space/)]);
    expect(problems[0]).not.toContain(key);
  });

  it('finds ports that are taken or shared before anything listens', async () => {
    const taken = await heldPort();
    const free = await freePort();
    const { problems } = await preflight({ MODELQ_PORT: String(taken), MODELQ_DASHBOARD_PORT: String(free), MODELQ_GRPC_PORT: String(free) });
    expect(problems).toEqual([`MODELQ_PORT=${taken}: in use by another program`, `MODELQ_GRPC_PORT=${free}: the same port as MODELQ_DASHBOARD_PORT`]);
  });

  it('MODELQ_AUTH=required without keys is a problem', async () => {
    const { problems } = await preflight({
      MODELQ_AUTH: 'required',
      MODELQ_GRPC_PORT: '0',
      MODELQ_PORT: String(await freePort()),
      MODELQ_DASHBOARD_PORT: String(await freePort()),
    });
    expect(problems).toEqual([expect.stringMatching(/MODELQ_AUTH=required but no API keys/)]);
  });

  it('passes a good configuration', async () => {
    const { cfg, problems } = await preflight({
      MODELQ_GRPC_PORT: '0',
      MODELQ_PORT: String(await freePort()),
      MODELQ_DASHBOARD_PORT: String(await freePort()),
    });
    expect(problems).toEqual([]);
    expect(cfg).not.toBeNull();
  });

  it('a child that stopped on its configuration is not restarted; any other exit is', () => {
    expect(childExitAction(EXIT_CONFIG)).toBe('stop');
    expect(childExitAction(70)).toBe('restart');
    expect(childExitAction(1)).toBe('restart');
    expect(childExitAction(null)).toBe('restart');
  });
});
