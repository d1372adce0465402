// The OpenAPI document lists exactly the routes the producer serves: the express router is walked
// (every router mounted on the app, every route and method), not a hand-kept list compared with itself.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../core/logger.ts';
import { loadConfig } from '../../core/config.ts';
import { buildApp } from '../../producer/app.ts';
import { closeProducerDeps, createProducerDeps, type ProducerDeps } from '../../producer/deps.ts';
import { testEnv } from '../helpers/platform.ts';

interface Layer {
  route?: { path: string; methods: Record<string, boolean> };
  handle?: { stack?: Layer[] };
}

/** "METHOD /path/{param}" for every route reachable through `stack`, mounted routers included. */
function servedRoutes(stack: Layer[]): string[] {
  return stack.flatMap((layer) => {
    if (layer.route) {
      // An escaped colon (`\\:predict`) is literal, not a parameter.
      const path = layer.route.path
        .replace(/\\:/g, '\0')
        .replace(/:(\w+)/g, '{$1}')
        .replace(/\0/g, ':');
      return Object.keys(layer.route.methods)
        .filter((m) => m !== '_all')
        .map((m) => `${m.toUpperCase()} ${path}`);
    }
    return layer.handle?.stack ? servedRoutes(layer.handle.stack) : [];
  });
}

describe('/openapi.json', () => {
  let deps: ProducerDeps;
  beforeAll(async () => {
    deps = await createProducerDeps(loadConfig(testEnv()), createLogger('openapi-test', 'silent'));
  });
  afterAll(async () => {
    await closeProducerDeps(deps);
  });

  it('documents every route the producer serves, and no other', async () => {
    const { app, listen } = buildApp(deps);
    const served = new Set(servedRoutes((app as unknown as { router: { stack: Layer[] } }).router.stack));
    expect(served.size).toBeGreaterThan(30);
    expect(served).toContain('POST /v2/models/{name}/infer');

    const server = listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    try {
      const { port } = server.address() as { port: number };
      const doc = (await (await fetch(`http://127.0.0.1:${port}/openapi.json`)).json()) as { paths: Record<string, Record<string, unknown>> };
      const documented = new Set(Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`)));
      expect(
        [...served].filter((r) => !documented.has(r)),
        'served but not in /openapi.json',
      ).toEqual([]);
      expect(
        [...documented].filter((r) => !served.has(r)),
        'in /openapi.json but not served',
      ).toEqual([]);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});
