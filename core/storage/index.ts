// Picks the artifact store from config: the filesystem (one machine, or a shared volume) or S3.
import type { Config } from '../config.ts';
import type { ArtifactStore } from './artifact-store.ts';
import { FsStore } from './fs-store.ts';
import { S3Store } from './s3-store.ts';

export * from './artifact-store.ts';
export { FsStore, S3Store };

export type StoreConfig = Pick<Config, 'MODELQ_DATA_DIR'> &
  Partial<Pick<Config, 'MODELQ_STORE' | 'MODELQ_S3_BUCKET' | 'MODELQ_S3_ENDPOINT' | 'MODELQ_S3_REGION'>>;

export function createStore(cfg: StoreConfig): ArtifactStore {
  if (cfg.MODELQ_STORE === 's3') {
    if (!cfg.MODELQ_S3_BUCKET) throw new Error('MODELQ_S3_BUCKET is required when MODELQ_STORE=s3');
    return new S3Store({
      bucket: cfg.MODELQ_S3_BUCKET,
      ...(cfg.MODELQ_S3_ENDPOINT ? { endpoint: cfg.MODELQ_S3_ENDPOINT } : {}),
      ...(cfg.MODELQ_S3_REGION ? { region: cfg.MODELQ_S3_REGION } : {}),
    });
  }
  return new FsStore(cfg.MODELQ_DATA_DIR);
}
