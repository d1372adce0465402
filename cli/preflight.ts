// What `npm start` checks before it starts anything: the whole configuration (every key, the API
// keys, the rules between keys, and that the ports it will listen on are distinct and free), so
// that a mistake stops it once, with every problem listed, instead of children that exit and are
// restarted forever. And what it does when a child exits.
import net from 'node:net';
import { KeyRing } from '../core/auth.ts';
import { type Config, EXIT_CONFIG, parseConfig } from '../core/config.ts';

/** Why `port` cannot be listened on at `host` (as the producer and dashboard listen: MODELQ_BIND), or null when it can. */
export function portProblem(port: number, host = '127.0.0.1'): Promise<string | null> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', (e: NodeJS.ErrnoException) =>
      resolve(
        e.code === 'EADDRINUSE'
          ? 'in use by another program'
          : e.code === 'EACCES'
            ? 'not allowed for this user (ports below 1024 need root)'
            : e.code === 'EADDRNOTAVAIL'
              ? `MODELQ_BIND=${host} is no address of this machine`
              : (e.code ?? e.message),
      ),
    );
    s.listen(port, host, () => s.close(() => resolve(null)));
  });
}

/** Every configuration problem `npm start` can see before starting, each naming its key; the config when there is none. */
export async function preflight(env: NodeJS.ProcessEnv = process.env): Promise<{ cfg: Config | null; problems: string[] }> {
  const { cfg, problems, values } = parseConfig(env);
  // The API keys are read even when other keys are wrong, so that every problem is listed at once.
  if (!problems.some((p) => p.startsWith('MODELQ_API_KEYS'))) {
    const keys = { MODELQ_API_KEYS: values.MODELQ_API_KEYS, MODELQ_API_KEYS_FILE: values.MODELQ_API_KEYS_FILE };
    try {
      const ring = KeyRing.fromConfig(keys);
      if (values.MODELQ_AUTH === 'required' && ring.size === 0)
        problems.push('MODELQ_AUTH=required but no API keys are configured (MODELQ_API_KEYS or MODELQ_API_KEYS_FILE)');
    } catch (e) {
      problems.push((e as Error).message);
    }
  }
  const ports: [string, number | undefined][] = [
    ['MODELQ_PORT', values.MODELQ_PORT],
    ['MODELQ_DASHBOARD_PORT', values.MODELQ_DASHBOARD_PORT],
    ['MODELQ_GRPC_PORT', values.MODELQ_GRPC_PORT || undefined],
  ];
  const seen = new Map<number, string>();
  for (const [key, port] of ports) {
    if (port === undefined) continue; // invalid (listed already) or off
    const other = seen.get(port);
    if (other) problems.push(`${key}=${port}: the same port as ${other}`);
    else {
      seen.set(port, key);
      const why = await portProblem(port, values.MODELQ_BIND);
      if (why) problems.push(`${key}=${port}: ${why}`);
    }
  }
  return problems.length ? { cfg: null, problems } : { cfg, problems };
}

/**
 * What the launcher does when a child exits while the platform runs: a child that stopped on its
 * configuration would meet the same configuration again, so the platform stops; any other exit
 * (a crash, an unhandled error, SIGKILL) is restarted.
 */
export function childExitAction(code: number | null): 'restart' | 'stop' {
  return code === EXIT_CONFIG ? 'stop' : 'restart';
}
