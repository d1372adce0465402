// Input drift per model version, one concern per file: the stored reference profile (schema.ts), the
// features watched in a request (features.ts), the statistics (stats.ts), the windows of served
// rows in Redis (windows.ts), the process's one cache of profiles (profile-cache.ts), a version's
// report (report.ts) and the reference built from a version's first served rows (collector.ts).
export * from './schema.ts';
export { modelSlots, featureRows, type Slot, type RowsOf } from './features.ts';
export * from './stats.ts';
export { DriftWindows } from './windows.ts';
export { profileCache, forgetProfile, MAX_PROFILES } from './profile-cache.ts';
export { versionDrift } from './report.ts';
export { ReferenceCollector } from './collector.ts';
export { processedDriftSpecs, inputSummaries, outputSummaries } from './processed.ts';
