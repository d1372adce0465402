// /v1/models/{name}/versions/{v}/reference and /drift: a version's reference profile of its inputs
// (from a dataset or given rows; trained versions get one from their training split), and the drift of
// sampled online traffic from it.
import { createHash } from 'node:crypto';
import { Router } from 'express';
import { z } from 'zod';
import { DatasetStore, datasetRows, numericValue } from '../../core/datasets.ts';
import { buildProfile, DriftWindows, modelSlots, processedDriftSpecs, referenceKey, versionDrift, type Slot } from '../../core/drift/index.ts';
import { AppError, badRequest, notFound } from '../../core/errors.ts';
import { checkName, metadataList, type VersionRecord } from '../../core/registry.ts';
import { jsonBody } from '../body.ts';
import { principalOf } from '../auth.ts';
import type { ProducerDeps } from '../deps.ts';
import { parseBody } from '../http.ts';
import { assertReadable, assertWritable } from '../model-access.ts';

/** Reference rows read from a dataset at most. */
export const MAX_REFERENCE_ROWS = 100_000;

export const referenceBodySchema = z
  .object({
    dataset: z
      .string()
      .min(1)
      .max(100)
      .optional()
      .meta({ description: `Dataset id whose rows (the first ${MAX_REFERENCE_ROWS}) make the reference` }),
    rows: z
      .array(z.array(z.union([z.number(), z.string()])))
      .min(1)
      .max(MAX_REFERENCE_ROWS)
      .optional()
      .meta({ description: "Reference rows given inline, one value per feature in the order of the model's inputs" }),
    columns: z.array(z.string().min(1).max(200)).min(1).optional().meta({
      description: "Dataset column of each feature, in the order of the model's inputs (default: a trained version's features, else the input names)",
    }),
  })
  .strict()
  .refine((b) => (b.dataset === undefined) !== (b.rows === undefined), 'give exactly one of dataset or rows');

const versionParam = (v: string) => {
  if (!/^[1-9][0-9]{0,8}$/.test(v)) throw badRequest(`version "${v.slice(0, 40)}" must be a positive integer`);
  return Number(v);
};

/** A trained version's features are named in its metadata; others default to input names. */
function slotsOf(v: VersionRecord, columns?: string[]): Slot[] {
  // A model with declared processing is watched on summaries of its processed inputs and outputs (core/drift/processed.ts).
  if (v.processing) return modelSlots(processedDriftSpecs(v), columns);
  const trained = metadataList<string>(v, 'features');
  return modelSlots(v.inputs, columns ?? trained);
}

async function datasetValues(d: ProducerDeps, id: string, tenant: string, slots: Slot[]): Promise<(number | string)[][]> {
  const ds = await new DatasetStore(d.redis, d.prefix).getFor(id, tenant);
  if (!ds) throw notFound(`dataset "${id}" not found`);
  const have = new Set(ds.columns.map((c) => c.name));
  const missing = slots.filter((s) => !have.has(s.name)).map((s) => `"${s.name}"`);
  if (missing.length)
    throw badRequest(`columns: the dataset has no column ${missing.slice(0, 10).join(', ')} (name the dataset column of each feature in "columns")`);
  const values = slots.map(() => [] as (number | string)[]);
  let rows = 0;
  for await (const row of datasetRows(await d.store.read(ds.key), ds.format)) {
    if (rows++ >= MAX_REFERENCE_ROWS) break;
    slots.forEach((s, k) => {
      const raw = row.values[s.name];
      if (s.categorical) return void values[k]!.push(String(raw ?? ''));
      const n = numericValue(raw, ds.format);
      if (n === null) throw badRequest(`dataset line ${row.line}: column "${s.name}" is not a number`);
      values[k]!.push(n);
    });
  }
  return values;
}

function rowValues(rows: (number | string)[][], slots: Slot[]): (number | string)[][] {
  return slots.map((s, k) =>
    rows.map((r, i) => {
      if (r.length !== slots.length) throw badRequest(`rows[${i}] has ${r.length} values; the model's inputs have ${slots.length} features`);
      const v = r[k]!;
      if (!s.categorical && typeof v !== 'number') throw badRequest(`rows[${i}][${k}]: feature "${s.name}" is numeric`);
      return s.categorical ? String(v) : v;
    }),
  );
}

export function driftRouter(d: ProducerDeps): Router {
  const r = Router();
  const json = jsonBody(d.cfg);
  const windows = new DriftWindows(d.redis, d.prefix, d.cfg.MODELQ_DRIFT_WINDOW);

  r.put('/v1/models/:name/versions/:version/reference', json, async (req, res) => {
    const body = parseBody(referenceBodySchema, req.body);
    const params = req.params as Record<string, string>;
    const name = checkName(params.name!);
    const p = principalOf(req);
    await assertWritable(d.registry, name, p, 'admin');
    const v = await d.registry.getVersion(name, versionParam(params.version!));
    const slots = slotsOf(v, body.columns);
    const values = body.dataset !== undefined ? await datasetValues(d, body.dataset, p.tenant, slots) : rowValues(body.rows!, slots);
    if (!values[0]!.length) throw badRequest('the reference has no rows');
    const text = JSON.stringify(buildProfile(slots, values));
    const key = referenceKey(createHash('sha256').update(text).digest('hex'));
    await d.store.put(key, text);
    res.json(await d.registry.setExplainArtifact(name, v.version, 'reference', { key, rows: values[0]!.length, features: slots.length }));
  });

  r.get('/v1/models/:name/versions/:version/drift', async (req, res) => {
    const params = req.params as Record<string, string>;
    await assertReadable(d.registry, params.name!, principalOf(req));
    const v = await d.registry.getVersion(params.name!, versionParam(params.version!));
    const report = await versionDrift(d.store, windows, v, { warn: d.cfg.MODELQ_DRIFT_WARN, alert: d.cfg.MODELQ_DRIFT_ALERT });
    if (!report)
      throw new AppError('conflict', `model ${v.name} version ${v.version} has no reference profile: PUT /v1/models/${v.name}/versions/${v.version}/reference`);
    res.json({ name: v.name, version: v.version, window: d.cfg.MODELQ_DRIFT_WINDOW, sample: d.cfg.MODELQ_DRIFT_SAMPLE, ...report });
  });

  return r;
}
