// Entry of `npm run bench [suite...]`: runs the named suites, or all of them, one after another.
// A suite is one file in bench/ exporting an async function; add it to SUITES with a lazy import
// so running one suite never loads another's dependencies. Each suite starts and ends with the
// machine's load and cores (bench/lib/fair.ts), and is refused on a loaded machine unless
// MODELQ_BENCH_FORCE=1.
import { endSuite, NoisyMachine, startSuite } from './lib/fair.ts';

const SUITES: Record<string, () => Promise<unknown>> = {
  online: async () => (await import('./online.ts')).benchOnline(),
  batch: async () => (await import('./batch.ts')).benchBatch(),
  'parquet-decode': async () => (await import('./parquet-decode.ts')).benchParquetDecode(),
  train: async () => (await import('./train.ts')).benchTrain(),
  'train-text': async () => {
    const t = await import('./train-text.ts');
    // Serving figures of the model just trained (online requests/s, batch rows/s against a numeric twin); BENCH_TEXT_SERVE=0 skips them.
    if (process.env.BENCH_TEXT_SERVE !== '0')
      t.textBenchHooks.push(async ({ model, texts }) => (await import('./text-serve.ts')).benchTextServe({ model, sentences: texts }));
    return t.benchTrainText();
  },
  'train-tabular': async () => (await import('./train-tabular.ts')).benchTrainTabular(),
  compress: async () => (await import('./compress.ts')).benchCompress(),
  scale: async () => (await import('./scale.ts')).benchScale(),
  explain: async () => (await import('./explain.ts')).benchExplain(),
  'text-serve': async () => (await import('./text-serve.ts')).benchTextServe(),
  shadow: async () => (await import('./shadow.ts')).benchShadow(),
  images: async () => (await import('./images.ts')).benchImages(),
};

async function main() {
  const asked = process.argv.slice(2).filter((a) => !a.startsWith('-'));
  const unknown = asked.filter((a) => !(a in SUITES));
  if (unknown.length) {
    console.error(`unknown suite ${unknown.join(', ')}; available: ${Object.keys(SUITES).join(', ')}`);
    process.exit(2);
  }
  let refused = 0;
  for (const name of asked.length ? asked : Object.keys(SUITES)) {
    console.log(`\n=== bench: ${name} ===`);
    try {
      startSuite(name);
    } catch (e) {
      if (!(e instanceof NoisyMachine)) throw e;
      console.log(e.message);
      refused++;
      continue;
    }
    const t0 = performance.now();
    await SUITES[name]!();
    endSuite(name);
    console.log(`=== ${name} done in ${((performance.now() - t0) / 1000).toFixed(0)} s ===`);
  }
  if (refused) process.exitCode = 3;
}

main().then(
  // Suites stop their own servers; exiting here also drops keep-alive sockets fetch may still hold.
  () => process.exit(process.exitCode ?? 0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
