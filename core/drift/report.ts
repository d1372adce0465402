// A version's drift report: its reference profile (through the process's profile cache, so a
// /metrics scrape or a /drift request does not re-read it from the store) against its window.
import type { VersionRecord } from '../registry.ts';
import type { ArtifactStore } from '../storage/index.ts';
import { profileCache } from './profile-cache.ts';
import { driftReport, type DriftReport, type Thresholds } from './stats.ts';
import type { DriftWindows } from './windows.ts';

/** A version's drift report, or null when it has no reference profile. */
export async function versionDrift(
  store: ArtifactStore,
  windows: DriftWindows,
  v: VersionRecord,
  t: Thresholds,
): Promise<(DriftReport & { referenceRows: number }) | null> {
  const ref = v.explain?.reference;
  if (!ref) return null;
  const [profile, window] = await Promise.all([profileCache(store)(ref.key), windows.read(v.name, v.version)]);
  return { ...driftReport(profile, window.counts, window.rows, t), referenceRows: profile.rows };
}
