// Entry of the thread that parses a Parquet footer (parquet-footer.ts): register tsx, then load
// the TypeScript module (Node 20 cannot start a worker thread on a .ts file directly).
import { register } from 'tsx/esm/api';

register();
await import('./parquet-footer-worker.ts');
