// Writes the README's example model: a small MLP (seeded, so always the same file) with one FP32
// input "input" [n, 4] and one output "output" [n, 3], three class scores. `npm run example-model
// -- model.onnx` writes it into the folder npm was called from; without a file name, to stdout.
import fs from 'node:fs';
import path from 'node:path';
import { buildMlp } from '../workers/onnx/builder.ts';

const bytes = buildMlp({ sizes: [4, 16, 3], seed: 1 });
const name = process.argv[2];
if (!name) process.stdout.write(bytes);
else {
  // npm runs scripts from the package root; INIT_CWD is where the user called it from.
  const file = path.resolve(process.env.INIT_CWD ?? process.cwd(), name);
  fs.writeFileSync(file, bytes);
  console.error(`wrote ${file} (${bytes.length} bytes): input "input" FP32 [n,4] -> output "output" FP32 [n,3]`);
}
