// The official ONNX checker with shape inference, from Debian's python3-onnx for /usr/bin/python3
// (.ci/run installs it). Resolves with null when the model passes, else the checker's message.
//
// One checker process per test file, started on the first check: importing onnx costs far more than
// a check of the test models, and a test file checks dozens of them. It reads one model path per
// line and answers each with one JSON line, in order; a process that dies fails the checks waiting
// on it, and the next check starts another.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';

const SCRIPT = `
import json, sys, traceback
import onnx
for line in sys.stdin:
    try:
        onnx.checker.check_model(onnx.load(line.rstrip('\\n')), full_check=True)
        answer = None
    except Exception:
        answer = '\\n'.join(traceback.format_exc().strip().split('\\n')[-3:])
    sys.stdout.write(json.dumps(answer) + '\\n')
    sys.stdout.flush()
`;

interface Waiter {
  resolve(answer: string | null): void;
  reject(err: Error): void;
}

let checker: { child: ChildProcess; waiting: Waiter[] } | null = null;

function start() {
  const child = spawn('/usr/bin/python3', ['-c', SCRIPT], { stdio: ['pipe', 'pipe', 'pipe'] });
  const waiting: Waiter[] = [];
  const self = { child, waiting };
  let stderr = '';
  child.stderr!.on('data', (b) => (stderr = (stderr + String(b)).slice(-4000)));
  readline.createInterface({ input: child.stdout! }).on('line', (l) => waiting.shift()?.resolve(JSON.parse(l) as string | null));
  const fail = (why: string) => {
    if (checker === self) checker = null;
    for (const w of waiting.splice(0)) w.reject(new Error(`${why}\n${stderr.trim()}`));
  };
  child.on('error', (e) => fail(`the ONNX checker could not start: ${e.message}`));
  child.on('exit', (code, signal) => fail(`the ONNX checker exited (${signal ?? code})`));
  child.stdin!.on('error', () => {}); // a dead checker is reported by 'exit'
  // Never keeps the test process alive: when it exits, the checker reads the end of its input.
  child.unref();
  for (const s of [child.stdin, child.stdout, child.stderr]) (s as unknown as { unref?: () => void }).unref?.();
  return self;
}

export async function onnxCheck(bytes: Uint8Array): Promise<string | null> {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'onnx-check-')), 'model.onnx');
  fs.writeFileSync(file, bytes);
  try {
    checker ??= start();
    const c = checker;
    return await new Promise<string | null>((resolve, reject) => {
      const timer = setTimeout(() => {
        c.child.kill('SIGKILL'); // the answers after this one would be out of step
        reject(new Error('the ONNX checker gave no answer in 60 s'));
      }, 60_000);
      const settle =
        <T>(f: (v: T) => void) =>
        (v: T) => {
          clearTimeout(timer);
          f(v);
        };
      c.waiting.push({ resolve: settle(resolve), reject: settle(reject) });
      c.child.stdin!.write(`${file}\n`);
    });
  } finally {
    fs.rmSync(path.dirname(file), { recursive: true, force: true });
  }
}
