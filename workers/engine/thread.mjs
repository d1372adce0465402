// Entry of an engine thread: Node 20 cannot start a worker thread on a .ts file directly (with
// execArgv ['--import', 'tsx'] it fails with "Unknown file extension .ts"), so register tsx here
// and then load the TypeScript module.
import { register } from 'tsx/esm/api';

register();
await import('./session-thread.ts');
