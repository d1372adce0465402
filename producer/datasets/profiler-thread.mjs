// Entry of a dataset-profiling thread: Node 20 cannot start a worker thread on a .ts file directly,
// so register tsx here and then load the TypeScript module (docs/architecture.md, "Worker threads and TypeScript").
import { register } from 'tsx/esm/api';

register();
await import('./profiler-thread.ts');
