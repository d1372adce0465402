// /metrics gauges of input drift: per version with a window and per feature, its PSI or
// Jensen-Shannon distance and its level, computed at scrape time from the windows in Redis.
import client from 'prom-client';
import { DriftWindows, versionDrift, type FeatureDrift } from '../core/drift/index.ts';
import { parseRef } from '../core/registry.ts';
import type { ProducerDeps } from './deps.ts';

const LEVEL = { ok: 0, warn: 1, alert: 2 } as const;
type Row = { labels: Record<string, string>; f: FeatureDrift & { score: number; level: keyof typeof LEVEL } };

export function driftFigures(registry: client.Registry, d: ProducerDeps) {
  const windows = new DriftWindows(d.redis, d.prefix, d.cfg.MODELQ_DRIFT_WINDOW);
  const thresholds = { warn: d.cfg.MODELQ_DRIFT_WARN, alert: d.cfg.MODELQ_DRIFT_ALERT };
  // Both gauges of one scrape share one read.
  let last: { at: number; rows: Promise<Row[]> } | undefined;
  const read = () => {
    if (!last || Date.now() - last.at > 1000) last = { at: Date.now(), rows: collectRows() };
    return last.rows;
  };
  async function collectRows(): Promise<Row[]> {
    const out: Row[] = [];
    for (const id of await windows.versions().catch(() => [])) {
      try {
        const { name, selector } = parseRef(id);
        const report = await versionDrift(d.store, windows, await d.registry.getVersion(name, Number(selector)), thresholds);
        for (const f of report?.features ?? []) {
          if (f.score === null || f.level === 'no_data') continue;
          out.push({ labels: { model: name, version: String(selector), feature: f.name, metric: f.metric }, f: f as Row['f'] });
        }
      } catch {
        // a version whose record or profile is gone: nothing to report
      }
    }
    return out;
  }
  const labelNames = ['model', 'version', 'feature', 'metric'];
  new client.Gauge({
    name: 'modelq_drift_score',
    help: 'Drift of sampled online inputs from the reference per feature: PSI (numeric) or Jensen-Shannon distance (categorical)',
    labelNames,
    registers: [registry],
    async collect() {
      this.reset();
      for (const r of await read()) this.set(r.labels, r.f.score);
    },
  });
  new client.Gauge({
    name: 'modelq_drift_level',
    help: 'Drift level per feature: 0 ok, 1 warn (MODELQ_DRIFT_WARN), 2 alert (MODELQ_DRIFT_ALERT)',
    labelNames,
    registers: [registry],
    async collect() {
      this.reset();
      for (const r of await read()) this.set(r.labels, LEVEL[r.f.level]);
    },
  });
}
