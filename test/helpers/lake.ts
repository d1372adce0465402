// A platform beside an S3-compatible server (s3rver) holding a "lake" bucket: the setup the
// by-reference batch tests share. The platform's own S3 settings and credentials are set in this
// process too (the producer runs in it), and put back by stop().
import { S3Store } from '../../core/storage/s3-store.ts';
import { S3_CREDENTIALS, s3Env, startS3Server, type S3Server } from '../unit/core/storage/s3-server.ts';
import { startPlatform, type TestPlatform } from './platform.ts';

export const LAKE_BUCKET = 'lake';

export interface Lake {
  s3: S3Server;
  p: TestPlatform;
  /** The lake bucket, as a client outside the platform sees it. */
  lake: S3Store;
  stop(): Promise<void>;
}

/** `roots`: MODELQ_BATCH_ROOTS of the default tenant; `env`: more worker settings. */
export async function startLake(o: { roots: string[]; workers: number; env?: Record<string, string> }): Promise<Lake> {
  const s3 = await startS3Server({ buckets: [LAKE_BUCKET, 'platform'] });
  const env: Record<string, string> = {
    ...s3Env(s3.endpoint, 'platform'),
    MODELQ_STORE: 'fs',
    MODELQ_BATCH_ROOTS: JSON.stringify({ default: o.roots }),
    ...o.env,
  };
  const saved: Record<string, string | undefined> = {};
  for (const k of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_EC2_METADATA_DISABLED']) {
    saved[k] = process.env[k];
    process.env[k] = env[k];
  }
  const p = await startPlatform({ workers: o.workers, env });
  const lake = new S3Store({ bucket: LAKE_BUCKET, endpoint: s3.endpoint, credentials: S3_CREDENTIALS });
  return {
    s3,
    p,
    lake,
    async stop() {
      await p.stop();
      lake.close();
      await s3.stop();
      for (const [k, v] of Object.entries(saved))
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
    },
  };
}
