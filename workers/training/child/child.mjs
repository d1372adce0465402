// Entry of the training process. TensorFlow.js is loaded first with plain require: under tsx's
// require hook the same files take seconds longer to load. Then tsx's ESM loader is registered
// (--import tsx does not reach every context on Node 20; register() does) and child.ts runs.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
require('@tensorflow/tfjs');
require('@tensorflow/tfjs-backend-wasm');
const { register } = await import('tsx/esm/api');
register();
await import('./child.ts');
