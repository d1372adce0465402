// The "tutorial" model server the platform is measured against: one process, one onnxruntime
// session, session.run() awaited inside the request handler. No queue, no batching. Served by a
// bare node:http server (--http, what the target names) or by express (the default here).
//   npx tsx bench/lib/baseline-server.ts --model FILE [--port 0] [--name NAME] [--threads N] [--http]
// Prints `listening <port>` on stdout once the model is loaded and the port is open.
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import express from 'express';
import * as ort from 'onnxruntime-node';

export interface BaselineOptions {
  model: string;
  /** 0 picks a free port (printed in the ready line). Default 0. */
  port?: number;
  /** Model name in the URL; any name is accepted when unset. */
  name?: string;
  /** onnxruntime intra-op threads; unset leaves onnxruntime's own choice (one per core). */
  threads?: number;
  /** Bare node:http rather than express. */
  http?: boolean;
}

interface InTensor {
  name: string;
  shape: number[];
  datatype: string;
  data: number[];
}

/** The answer to one parsed inference body: status and JSON, the same on both servers. */
async function inferOnce(session: ort.InferenceSession, o: BaselineOptions, name: string, body: unknown): Promise<[number, object]> {
  if (o.name && name !== o.name) return [404, { error: { code: 'model_not_found', message: `model "${name}" not found` } }];
  const inputs = (body as { inputs?: InTensor[] } | undefined)?.inputs;
  if (!Array.isArray(inputs) || inputs.length === 0) return [400, { error: { code: 'bad_request', message: 'inputs must be a non-empty array' } }];
  const feeds: Record<string, ort.Tensor> = {};
  try {
    for (const t of inputs) {
      if (t.datatype !== 'FP32') throw new Error(`inputs.${t.name}.datatype must be FP32`);
      feeds[t.name] = new ort.Tensor('float32', Float32Array.from(t.data), t.shape);
    }
  } catch (e) {
    return [400, { error: { code: 'bad_request', message: (e as Error).message } }];
  }
  try {
    // The point of the baseline: this blocks the event loop for the length of the run.
    const out = await session.run(feeds);
    return [
      200,
      {
        model_name: name,
        outputs: session.outputNames.map((n) => {
          const t = out[n]!;
          return { name: n, shape: t.dims, datatype: 'FP32', data: Array.from(t.data as Float32Array) };
        }),
      },
    ];
  } catch (e) {
    return [500, { error: { code: 'inference_failed', message: (e as Error).message } }];
  }
}

const INFER = /^\/v2\/models\/([^/?]+)\/infer$/;

/** The same server on bare node:http: the body read and JSON.parse'd in the handler, nothing else. */
function plainServer(session: ort.InferenceSession, o: BaselineOptions): http.Server {
  const send = (res: http.ServerResponse, status: number, value: object) => {
    const text = JSON.stringify(value);
    res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
  };
  return http.createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/v2/health/ready') return send(res, 200, { ready: true });
    const m = INFER.exec(req.url ?? '');
    if (req.method !== 'POST' || !m) return send(res, 404, { error: { code: 'not_found', message: 'no such route' } });
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let body: unknown;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch (e) {
        return send(res, 400, { error: { code: 'bad_request', message: (e as Error).message } });
      }
      void inferOnce(session, o, decodeURIComponent(m[1]!), body).then(([status, value]) => send(res, status, value));
    });
  });
}

export async function startBaseline(o: BaselineOptions) {
  const session = await ort.InferenceSession.create(o.model, o.threads ? { intraOpNumThreads: o.threads } : {});
  let server: http.Server;
  if (o.http) server = plainServer(session, o).listen(o.port ?? 0);
  else {
    const app = express();
    app.use(express.json({ limit: '64mb' }));
    app.get('/v2/health/ready', (_req, res) => {
      res.json({ ready: true });
    });
    app.post('/v2/models/:name/infer', async (req, res) => {
      const [status, value] = await inferOnce(session, o, req.params.name, req.body);
      res.status(status).json(value);
    });
    server = app.listen(o.port ?? 0);
  }
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  server.keepAliveTimeout = 60_000; // the load generator keeps sockets open between requests
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const close = async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
    await session.release();
  };
  return { port, close };
}

async function main() {
  const { values } = parseArgs({
    options: {
      model: { type: 'string' },
      port: { type: 'string', default: '0' },
      name: { type: 'string' },
      threads: { type: 'string' },
      http: { type: 'boolean', default: false },
    },
  });
  if (!values.model) {
    console.error('usage: baseline-server --model FILE [--port 0] [--name NAME] [--threads N] [--http]');
    process.exit(2);
  }
  const { port, close } = await startBaseline({
    model: path.resolve(values.model),
    port: Number(values.port),
    ...(values.name ? { name: values.name } : {}),
    ...(values.threads ? { threads: Number(values.threads) } : {}),
    http: values.http,
  });
  console.log(`listening ${port}`);
  const stop = () => {
    close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

if (process.argv[1] && import.meta.url === pathToFileURL(fs.realpathSync(process.argv[1])).href) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
