// The gRPC transport's own CPU per ModelInfer call, without the inference behind it: a server
// process answers every call at once with a fixed answer, through the lean node:http2 server
// (producer/grpc/lean.ts) or through grpc-js alone (MODELQ_GRPC_LEAN=false's path), both with the
// same hand codec; a closed-loop load from this process; the server's CPU (user + system, /proc)
// per call. Rounds alternate lean and grpc-js. CPU time, not wall time: meaningful on a shared
// machine as a comparison, not as an absolute.
// Run: node --import tsx bench/grpc-transport.ts   Env: BENCH_SECONDS=3 BENCH_CLIENTS=64 BENCH_ROUNDS=3
// (the server side: node --import tsx bench/grpc-transport.ts --serve lean|grpc-js)
import fs from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { loadService } from '../producer/grpc/server.ts';
import { startLeanServer } from '../producer/grpc/lean.ts';
import { spawnNode, stopChild, waitForLine } from './lib/child.ts';
import { runGrpcLoad } from './lib/load.ts';
import { grpcInferMessage } from './online.ts';

const METHOD = '/inference.GRPCInferenceService/ModelInfer';
const answer = {
  model_name: 'm',
  model_version: '1',
  id: '',
  outputs: [{ name: 'output', datatype: 'FP32', shape: [1, 10] }],
  raw_output_contents: [Buffer.alloc(40)],
};
const trailer = () => {
  const m = new grpc.Metadata();
  m.set('x-modelq-model-version', '1');
  return m;
};

async function serve(kind: string) {
  const service = loadService() as unknown as Record<string, { requestDeserialize(b: Buffer): unknown; responseSerialize(v: unknown): Buffer }>;
  const server = new grpc.Server({ 'grpc.enable_channelz': 0 });
  server.addService(loadService(), {
    ModelInfer: (call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      void call.metadata.get('authorization');
      setImmediate(() => cb(null, answer, trailer()));
    },
  } as unknown as grpc.UntypedServiceImplementation);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  );
  if (kind === 'grpc-js') return console.log(`listening ${port}`);
  const lean = await startLeanServer({
    host: '127.0.0.1',
    port: 0,
    maxBytes: 64 << 20,
    upstream: `http://127.0.0.1:${port}`,
    peerSecret: 'x',
    codec: service.ModelInfer!,
    modelInfer: (_req, call, reply) => {
      void call.metadata.get('authorization');
      setImmediate(() => reply(null, answer, trailer()));
    },
  });
  console.log(`listening ${lean.port}`);
}

const cpuSeconds = (pid: number) => {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
};

async function main() {
  const seconds = Number(process.env.BENCH_SECONDS ?? 3);
  const clients = Number(process.env.BENCH_CLIENTS ?? 64);
  const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
  const message = grpcInferMessage('m', 64);
  const per: Record<string, number[]> = { lean: [], 'grpc-js': [] };
  for (let r = 0; r < rounds; r++) {
    for (const kind of ['grpc-js', 'lean']) {
      const child = spawnNode({ args: ['--import', 'tsx', 'bench/grpc-transport.ts', '--serve', kind] });
      try {
        const [, port] = await waitForLine(child, /^listening (\d+)$/, 60_000);
        const address = `127.0.0.1:${port}`;
        await runGrpcLoad({ address, method: METHOD, message, concurrency: clients, durationMs: 1000 });
        const c0 = cpuSeconds(child.pid!);
        const res = await runGrpcLoad({ address, method: METHOD, message, concurrency: clients, durationMs: seconds * 1000 });
        const us = ((cpuSeconds(child.pid!) - c0) * 1e6) / Math.max(1, res.requests + res.errors);
        per[kind]!.push(us);
        console.log(`round ${r + 1} ${kind.padEnd(7)}: ${res.requests} calls (${res.errors} errors), server ${us.toFixed(0)} us CPU per call`);
      } finally {
        await stopChild(child);
      }
    }
  }
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[(xs.length - 1) >> 1]!;
  console.log(`median server CPU per call: grpc-js ${med(per['grpc-js']!).toFixed(0)} us, lean ${med(per.lean!).toFixed(0)} us`);
}

const serveAt = process.argv.indexOf('--serve');
if (serveAt > 0) await serve(process.argv[serveAt + 1]!);
else await main();
