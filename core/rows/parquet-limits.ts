// The bounds the Parquet readers check a file's declared sizes and counts against before they
// allocate or loop (core/config.ts documents each key). Engine threads read them from the
// environment they inherit; tests pass their own.
import { configKeys } from '../config.ts';

export interface ParquetLimits {
  /** Largest footer (metadata) in bytes. */
  footerBytes: number;
  /** Most rows in one row group. */
  groupRows: number;
  /** Most level entries in one data page, and values in one dictionary page. */
  pageValues: number;
  /** Largest uncompressed page. */
  pageBytes: number;
}

const KEYS = {
  footerBytes: 'MODELQ_PARQUET_MAX_FOOTER_BYTES',
  groupRows: 'MODELQ_PARQUET_MAX_GROUP_ROWS',
  pageValues: 'MODELQ_PARQUET_MAX_PAGE_VALUES',
  pageBytes: 'MODELQ_PARQUET_MAX_PAGE_BYTES',
} as const satisfies Record<keyof ParquetLimits, keyof typeof configKeys>;

/** The limits as configured in `env` (each key's default where it is unset). */
export function parquetLimits(env: NodeJS.ProcessEnv = process.env): ParquetLimits {
  const out = {} as ParquetLimits;
  for (const [field, key] of Object.entries(KEYS) as [keyof ParquetLimits, (typeof KEYS)[keyof ParquetLimits]][]) {
    out[field] = configKeys[key][0].parse(env[key]) as number;
  }
  return out;
}
