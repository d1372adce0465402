// The "tutorial" model server the platform is measured against: one express process, one
// onnxruntime session, session.run() awaited inside the request handler. No queue, no batching.
//   npx tsx bench/lib/baseline-server.ts --model FILE [--port 0] [--name NAME] [--threads N]
// Prints `listening <port>` on stdout once the model is loaded and the port is open.
import fs from 'node:fs';
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
}

interface InTensor {
  name: string;
  shape: number[];
  datatype: string;
  data: number[];
}

export async function startBaseline(o: BaselineOptions) {
  const session = await ort.InferenceSession.create(o.model, o.threads ? { intraOpNumThreads: o.threads } : {});
  const app = express();
  app.use(express.json({ limit: '64mb' }));

  app.get('/v2/health/ready', (_req, res) => {
    res.json({ ready: true });
  });

  app.post('/v2/models/:name/infer', async (req, res) => {
    if (o.name && req.params.name !== o.name) {
      res.status(404).json({ error: { code: 'model_not_found', message: `model "${req.params.name}" not found` } });
      return;
    }
    const inputs = (req.body as { inputs?: InTensor[] } | undefined)?.inputs;
    if (!Array.isArray(inputs) || inputs.length === 0) {
      res.status(400).json({ error: { code: 'bad_request', message: 'inputs must be a non-empty array' } });
      return;
    }
    const feeds: Record<string, ort.Tensor> = {};
    try {
      for (const t of inputs) {
        if (t.datatype !== 'FP32') throw new Error(`inputs.${t.name}.datatype must be FP32`);
        feeds[t.name] = new ort.Tensor('float32', Float32Array.from(t.data), t.shape);
      }
    } catch (e) {
      res.status(400).json({ error: { code: 'bad_request', message: (e as Error).message } });
      return;
    }
    try {
      // The point of the baseline: this blocks the event loop for the length of the run.
      const out = await session.run(feeds);
      res.json({
        model_name: req.params.name,
        outputs: session.outputNames.map((name) => {
          const t = out[name]!;
          return { name, shape: t.dims, datatype: 'FP32', data: Array.from(t.data as Float32Array) };
        }),
      });
    } catch (e) {
      res.status(500).json({ error: { code: 'inference_failed', message: (e as Error).message } });
    }
  });

  const server = app.listen(o.port ?? 0);
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
    },
  });
  if (!values.model) {
    console.error('usage: baseline-server --model FILE [--port 0] [--name NAME] [--threads N]');
    process.exit(2);
  }
  const { port, close } = await startBaseline({
    model: path.resolve(values.model),
    port: Number(values.port),
    ...(values.name ? { name: values.name } : {}),
    ...(values.threads ? { threads: Number(values.threads) } : {}),
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
