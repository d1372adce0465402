// GET /v1/models/{name}/versions/{v}/card: the version's model card (core/model-card.ts) as JSON,
// or Markdown with `Accept: text/markdown` or `?format=md`.
import { Router } from 'express';
import { z } from 'zod';
import { DatasetStore } from '../../core/datasets.ts';
import { DriftWindows, versionDrift } from '../../core/drift/index.ts';
import { badRequest } from '../../core/errors.ts';
import { buildCard, cardMarkdown, type HeldOut, type StoredImportance } from '../../core/model-card.ts';
import { LEGACY_ACCESS, metadataList, type VersionRecord } from '../../core/registry.ts';
import { isPlatform } from '../../core/auth.ts';
import { BatchStore } from '../../core/batches.ts';
import { batchKeys } from '../../core/jobs/batch.ts';
import { principalOf } from '../auth.ts';
import type { ProducerDeps } from '../deps.ts';
import { assertReadable } from '../model-access.ts';

const heldoutSchema = z.object({ truth: z.array(z.number()), predicted: z.array(z.number()), confidence: z.array(z.number()).optional() });

/** Newest batches looked at for stored explanations, bytes and rows of their outputs read at most: a card's work is bounded. */
const IMPORTANCE_BATCHES = 500;
const IMPORTANCE_BYTES = 16 * 1024 * 1024;
const IMPORTANCE_ROWS = 100_000;
const outputLineSchema = z.object({ outputs: z.object({ attributions: z.array(z.number()).optional() }).optional() });

export function cardsRouter(d: ProducerDeps): Router {
  const r = Router();
  const windows = new DriftWindows(d.redis, d.prefix, d.cfg.MODELQ_DRIFT_WINDOW);

  r.get('/v1/models/:name/versions/:version/card', async (req, res) => {
    const { name, version } = req.params as Record<string, string>;
    const format = typeof req.query.format === 'string' ? req.query.format : undefined;
    if (format !== undefined && format !== 'md' && format !== 'json') throw badRequest('format must be "md" or "json"');
    await assertReadable(d.registry, name!, principalOf(req));
    const access = (await d.registry.access(name!)) ?? LEGACY_ACCESS;
    if (!/^[1-9][0-9]{0,8}$/.test(version!)) throw badRequest(`version "${version!.slice(0, 40)}" must be a positive integer`);
    const v = await d.registry.getVersion(name!, Number(version));
    const datasetId = typeof v.lineage?.dataset === 'string' ? v.lineage.dataset : null;
    const who = principalOf(req);
    const [heldout, dataset, drift, importance] = await Promise.all([
      readHeldout(d, v),
      datasetId ? new DatasetStore(d.redis, d.prefix).get(datasetId) : null,
      versionDrift(d.store, windows, v, { warn: d.cfg.MODELQ_DRIFT_WARN, alert: d.cfg.MODELQ_DRIFT_ALERT }).catch(() => null),
      storedImportance(d, v, isPlatform(who) ? null : who.tenant),
    ]);
    const card = buildCard({ version: v, access, heldout, dataset, drift: drift as Record<string, unknown> | null, importance });
    const md = format === 'md' || (format === undefined && req.accepts(['application/json', 'text/markdown']) === 'text/markdown');
    if (md) res.type('text/markdown; charset=utf-8').send(cardMarkdown(card));
    else res.json(card);
  });
  return r;
}

/**
 * Mean |attribution| per input over the explained batches of this version (the reader's tenant's;
 * every tenant's for a platform key): their stored output lines, newest batches first, within the
 * bounds above. Text models (occlusion: attributions per token) are not summed per input.
 */
async function storedImportance(d: ProducerDeps, v: VersionRecord, tenant: string | null): Promise<StoredImportance | null> {
  const batches = new BatchStore(d.redis, d.prefix);
  const ids = await d.redis.zrevrange(
    tenant === null ? `${d.prefix}:records:batches` : `${d.prefix}:records:batches:tenant:${tenant}`,
    0,
    IMPORTANCE_BATCHES - 1,
  );
  let sums: number[] | null = null;
  let names: string[] = [];
  let rows = 0;
  let bytes = 0;
  const used: string[] = [];
  for (const id of ids) {
    if (rows >= IMPORTANCE_ROWS || bytes >= IMPORTANCE_BYTES) break;
    const spec = await batches.spec(id);
    const e = spec?.explain;
    if (!spec || !e || e.method === 'occlusion' || spec.output || spec.model.name !== v.name || spec.model.version !== v.version) continue;
    const width = e.columns?.length ?? e.features;
    if (!sums) {
      sums = new Array<number>(width).fill(0);
      names = e.columns?.map((c) => c.name) ?? metadataList<string>(v, 'features')?.map(String) ?? [];
      if (names.length !== width) names = Array.from({ length: width }, (_, i) => `${e.input}[${i}]`);
    }
    if (sums.length !== width) continue;
    let counted = false;
    for (const o of await d.store.list(`${batchKeys.dir(id)}/out/`, 10_000)) {
      if (rows >= IMPORTANCE_ROWS || bytes + o.bytes > IMPORTANCE_BYTES) break;
      bytes += o.bytes;
      for (const line of (await d.store.get(o.key)).toString('utf8').split('\n')) {
        if (!line || rows >= IMPORTANCE_ROWS) continue;
        let parsed;
        try {
          parsed = outputLineSchema.safeParse(JSON.parse(line));
        } catch {
          continue;
        }
        const a = parsed.success ? parsed.data.outputs?.attributions : undefined;
        if (!a || a.length !== width) continue;
        for (let i = 0; i < width; i++) sums[i]! += Math.abs(a[i]!);
        rows++;
        counted = true;
      }
    }
    if (counted) used.push(id);
  }
  if (!sums || !rows) return null;
  const total = rows;
  const inputs = sums.map((s, i) => ({ input: names[i]!, meanAbsAttribution: s / total })).sort((a, b) => b.meanAbsAttribution - a.meanAbsAttribution);
  return { batches: used, rows, inputs };
}

async function readHeldout(d: ProducerDeps, v: VersionRecord): Promise<HeldOut | null> {
  if (!v.heldout) return null;
  const r = heldoutSchema.safeParse(JSON.parse((await d.store.get(v.heldout.key)).toString('utf8')));
  return r.success && r.data.truth.length === r.data.predicted.length ? r.data : null;
}
