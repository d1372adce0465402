// Picks the artifact store from config: the filesystem (one machine, or a shared volume) or S3.
import type { Config } from '../config.ts';
import type { ArtifactStore } from './artifact-store.ts';
import { EncryptedStore, masterKeysFrom } from './encrypted-store.ts';
import { FsStore } from './fs-store.ts';
import { S3Store } from './s3-store.ts';

export * from './artifact-store.ts';
export { EncryptedStore, FsStore, S3Store };

export type StoreConfig = Pick<Config, 'MODELQ_DATA_DIR'> &
  Partial<
    Pick<
      Config,
      | 'MODELQ_STORE'
      | 'MODELQ_S3_BUCKET'
      | 'MODELQ_S3_ENDPOINT'
      | 'MODELQ_S3_REGION'
      | 'MODELQ_S3_SSE'
      | 'MODELQ_S3_SSE_KMS_KEY_ID'
      | 'MODELQ_MASTER_KEY'
      | 'MODELQ_MASTER_KEY_FILE'
    >
  >;

/** The platform's store; encrypted at rest (EncryptedStore) when a master key is configured. */
export function createStore(cfg: StoreConfig): ArtifactStore {
  const inner = plainStore(cfg);
  const keys = masterKeysFrom(cfg);
  return keys ? new EncryptedStore(inner, keys) : inner;
}

/** The store without the encryption layer (what `modelq rotate-key` rewraps beneath). */
export function plainStore(cfg: StoreConfig): ArtifactStore {
  if (cfg.MODELQ_STORE === 's3') {
    if (!cfg.MODELQ_S3_BUCKET) throw new Error('MODELQ_S3_BUCKET is required when MODELQ_STORE=s3');
    return new S3Store({
      bucket: cfg.MODELQ_S3_BUCKET,
      ...(cfg.MODELQ_S3_ENDPOINT ? { endpoint: cfg.MODELQ_S3_ENDPOINT } : {}),
      ...(cfg.MODELQ_S3_REGION ? { region: cfg.MODELQ_S3_REGION } : {}),
      ...(cfg.MODELQ_S3_SSE ? { sse: cfg.MODELQ_S3_SSE } : {}),
      ...(cfg.MODELQ_S3_SSE_KMS_KEY_ID ? { kmsKeyId: cfg.MODELQ_S3_SSE_KMS_KEY_ID } : {}),
    });
  }
  return new FsStore(cfg.MODELQ_DATA_DIR);
}
