// Which versions score a batch besides the one its record names: over a weighted alias, the split's
// versions (each chunk is scored by one of them, core/jobs/batch.ts chunkSpec); for a shadow batch,
// the candidate that scores every row again (workers/inference/score.ts, batch-compare.ts).
import { badRequest } from '../../core/errors.ts';
import type { BatchSpec } from '../../core/jobs/batch.ts';
import { parseRef, type Registry, type VersionRecord } from '../../core/registry.ts';
import { primaryOf } from '../../core/routing.ts';

const sameInputs = (a: VersionRecord, b: VersionRecord) => JSON.stringify(a.inputs) === JSON.stringify(b.inputs);

export interface BatchVersions {
  /** The version the record names: over a weighted alias the one with most weight. */
  model: VersionRecord;
  route?: NonNullable<BatchSpec['route']>;
  shadow?: NonNullable<BatchSpec['shadow']>;
}

export async function batchVersions(
  registry: Registry,
  ref: string,
  shadowVersion: number | undefined,
  opts: { explain: boolean; outputFormat?: string; byReference?: boolean },
): Promise<BatchVersions> {
  const { name, selector } = parseRef(ref);
  let out: BatchVersions;
  const alias = typeof selector === 'number' ? null : (selector ?? 'latest');
  const route = alias === null ? undefined : (await registry.aliasOf(name, alias)).route;
  const weighted = route?.versions.filter((v) => v.weight > 0) ?? [];
  if (route && weighted.length > 1) {
    const records = await Promise.all(weighted.map((v) => registry.getVersion(name, v.version)));
    out = {
      model: await registry.getVersion(name, primaryOf(route)),
      route: weighted.map((v, i) => ({ version: v.version, weight: v.weight, sha256: records[i]!.sha256 })),
    };
  } else out = { model: await registry.resolve(ref) };
  if (shadowVersion === undefined) return out;
  if (opts.byReference) throw badRequest('shadowVersion: batches by reference cannot have a shadow version');
  if (opts.explain) throw badRequest('shadowVersion: an explained batch cannot have a shadow version');
  if (opts.outputFormat && opts.outputFormat !== 'jsonl')
    throw badRequest('shadowVersion: a shadow batch writes JSONL parts (download any format with ?format=)');
  if (out.model.processing || out.model.pipeline)
    throw badRequest('shadowVersion: a model that reads files (declared processing) or a pipeline cannot have a shadow version in batches');
  if (out.route?.some((v) => v.version === shadowVersion) || (!out.route && out.model.version === shadowVersion))
    throw badRequest(`shadowVersion: version ${shadowVersion} already scores this batch`);
  const candidate = await registry.getVersion(name, shadowVersion).catch(() => {
    throw badRequest(`shadowVersion: model "${name}" has no version ${shadowVersion}`);
  });
  if (!sameInputs(candidate, out.model)) throw badRequest(`shadowVersion: version ${shadowVersion} takes other inputs than version ${out.model.version}`);
  return { ...out, shadow: { version: candidate.version, sha256: candidate.sha256 } };
}
