// GET /v1/models/{name}/versions/{v}/card: the version's model card (core/model-card.ts) as JSON,
// or Markdown with `Accept: text/markdown` or `?format=md`.
import { Router } from 'express';
import { z } from 'zod';
import { DatasetStore } from '../../core/datasets.ts';
import { DriftWindows, versionDrift } from '../../core/drift/index.ts';
import { badRequest } from '../../core/errors.ts';
import { buildCard, cardMarkdown, type HeldOut } from '../../core/model-card.ts';
import { LEGACY_ACCESS, type VersionRecord } from '../../core/registry.ts';
import { principalOf } from '../auth.ts';
import type { ProducerDeps } from '../deps.ts';
import { assertReadable } from '../model-access.ts';

const heldoutSchema = z.object({ truth: z.array(z.number()), predicted: z.array(z.number()) });

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
    const [heldout, dataset, drift] = await Promise.all([
      readHeldout(d, v),
      datasetId ? new DatasetStore(d.redis, d.prefix).get(datasetId) : null,
      versionDrift(d.store, windows, v, { warn: d.cfg.MODELQ_DRIFT_WARN, alert: d.cfg.MODELQ_DRIFT_ALERT }).catch(() => null),
    ]);
    const card = buildCard({ version: v, access, heldout, dataset, drift: drift as Record<string, unknown> | null });
    const md = format === 'md' || (format === undefined && req.accepts(['application/json', 'text/markdown']) === 'text/markdown');
    if (md) res.type('text/markdown; charset=utf-8').send(cardMarkdown(card));
    else res.json(card);
  });
  return r;
}

async function readHeldout(d: ProducerDeps, v: VersionRecord): Promise<HeldOut | null> {
  if (!v.heldout) return null;
  const r = heldoutSchema.safeParse(JSON.parse((await d.store.get(v.heldout.key)).toString('utf8')));
  return r.success && r.data.truth.length === r.data.predicted.length ? r.data : null;
}
