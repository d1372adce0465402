// A request to a model with declared processing, on the worker: its files (base64 in BYTES
// tensors) and texts become the model's input tensors, and after the run the post-processing adds its outputs.
import type { WireTensor } from '../../core/jobs/infer.ts';
import { isBytes, isPacked } from '../../core/jobs/infer.ts';
import type { Processing } from '../../core/processing/spec.ts';
import type { ArtifactStore } from '../../core/storage/index.ts';
import type { RawTensor } from '../../core/tensors.ts';
import type { Step } from '../../core/processing/spec.ts';
import { audioTensor } from './audio.ts';
import { FileError, imageTensor } from './image.ts';
import { postProcess } from './post.ts';
import { textFeeds } from './text.ts';

/** What the steps need beyond the request: the pixel limit, and the store the tokenizers are read from. */
export interface StepContext {
  maxPixels?: number | undefined;
  store?: ArtifactStore | undefined;
}

/** The model's feeds from a request's file (and text) inputs. */
export async function fileFeeds(p: Processing, inputs: WireTensor[], ctx: StepContext = {}): Promise<Record<string, RawTensor>> {
  let feeds: Record<string, RawTensor> = {};
  for (const step of p.inputs) {
    const t = inputs.find((x) => x.name === step.input);
    const what = step.type === 'text' ? 'texts (BYTES)' : 'files (BYTES, base64)';
    if (!t || isPacked(t) || isBytes(t) || t.datatype !== 'BYTES') throw new FileError(`input "${step.input}" must be ${what}`);
    const values = t.data.map((v) => (step.type === 'text' ? String(v) : Buffer.from(String(v), 'base64')));
    try {
      feeds = { ...feeds, ...(await stepFeeds(values, step, ctx)) };
    } catch (e) {
      throw new FileError(`input "${step.input}": ${(e as Error).message}`);
    }
  }
  return feeds;
}

/** The run's outputs with the post-processing's added. */
export function withPost(p: Processing | undefined, out: Record<string, RawTensor>): Record<string, RawTensor> {
  return p?.post ? { ...out, ...postProcess(p.post, p.labels, out) } : out;
}

/** One input's files (texts for a text step) as the model inputs it feeds, by the kind of step. */
export async function stepFeeds(values: (Buffer | string)[], step: Step, ctx: StepContext = {}): Promise<Record<string, RawTensor>> {
  if (step.type === 'text') return textFeeds(values.map(String), step, ctx.store);
  const files = values.map((v) => (typeof v === 'string' ? Buffer.from(v, 'base64') : v));
  return { [step.input]: step.type === 'audio' ? audioTensor(files, step) : await imageTensor(files, step, ctx.maxPixels) };
}
