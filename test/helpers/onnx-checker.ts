// The official ONNX checker with shape inference, from Debian's python3-onnx for /usr/bin/python3
// (.ci/run installs it). Resolves with null when the model passes, else the checker's message.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const SCRIPT = 'import onnx, sys\nonnx.checker.check_model(onnx.load(sys.argv[1]), full_check=True)\n';

export async function onnxCheck(bytes: Uint8Array): Promise<string | null> {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'onnx-check-')), 'model.onnx');
  fs.writeFileSync(file, bytes);
  try {
    return await new Promise((resolve) => {
      execFile('/usr/bin/python3', ['-c', SCRIPT, file], { timeout: 60_000 }, (err, _out, stderr) =>
        resolve(err ? (stderr || err.message).trim().split('\n').slice(-3).join('\n') : null),
      );
    });
  } finally {
    fs.rmSync(path.dirname(file), { recursive: true, force: true });
  }
}
