// Node 20 refuses --cpu-prof in NODE_OPTIONS, so the platform's child processes (started by
// cli/start.ts) are profiled through this preload instead: NODE_OPTIONS="--import <this file>" with
// BENCH_CPU_PROF=<dir>. It starts the V8 profiler in the process's main thread and writes
// <dir>/<folder>-<script>-<pid>.cpuprofile when the process exits (the in-thread inspector session answers
// synchronously, so this works from an 'exit' handler). Used by bench/batch-ref.ts.
import fs from 'node:fs';
import inspector from 'node:inspector';
import path from 'node:path';
import { isMainThread } from 'node:worker_threads';

const dir = process.env.BENCH_CPU_PROF;
if (dir && isMainThread) {
  const session = new inspector.Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: 500 });
  session.post('Profiler.start');
  process.once('exit', () => {
    session.post('Profiler.stop', (err, r) => {
      if (err || !r) return;
      const argv1 = process.argv[1] ?? 'node';
      const script = `${path.basename(path.dirname(argv1))}-${path.basename(argv1).replace(/\.[^.]+$/, '')}`;
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(path.join(dir, `${script}-${process.pid}.cpuprofile`), JSON.stringify(r.profile));
    });
  });
}
