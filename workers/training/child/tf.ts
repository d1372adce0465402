// Starts TensorFlow.js on its WebAssembly backend. tf.setBackend('wasm') can answer false and leave
// the slow pure-JS backend in place, so the backend is asserted; the .wasm files are the package's own.
import { createRequire } from 'node:module';
import path from 'node:path';
import type * as TfModule from '@tensorflow/tfjs';
import type * as WasmModule from '@tensorflow/tfjs-backend-wasm';

export type Tf = typeof TfModule;
// Plain require: both packages are CommonJS bundles, and importing them as ESM makes Node scan
// megabytes of source for export names (about a second per process start).
const require = createRequire(import.meta.url);
let ready: Promise<Tf> | undefined;

/** The package's dist/ folder, with the trailing slash setWasmPaths needs to treat it as a prefix. */
export function wasmDir(): string {
  return path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist') + path.sep;
}

export function initTf(): Promise<Tf> {
  return (ready ??= (async () => {
    const tf = require('@tensorflow/tfjs') as Tf;
    (require('@tensorflow/tfjs-backend-wasm') as typeof WasmModule).setWasmPaths(wasmDir());
    await tf.setBackend('wasm');
    await tf.ready();
    if (tf.getBackend() !== 'wasm') throw new Error(`TensorFlow.js runs on "${tf.getBackend()}", not wasm: training would be many times slower`);
    return tf;
  })());
}
