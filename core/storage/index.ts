// Picks the artifact store from config. Only the filesystem store exists so far.
import type { Config } from '../config.ts';
import type { ArtifactStore } from './artifact-store.ts';
import { FsStore } from './fs-store.ts';

export * from './artifact-store.ts';
export { FsStore };

export function createStore(cfg: Pick<Config, 'MODELQ_DATA_DIR'>): ArtifactStore {
  return new FsStore(cfg.MODELQ_DATA_DIR);
}
