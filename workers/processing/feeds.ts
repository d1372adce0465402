// A request to a model with declared processing, on the worker: its files (base64 in BYTES
// tensors) become the model's input tensors, and after the run the post-processing adds its outputs.
import type { WireTensor } from '../../core/jobs/infer.ts';
import { isBytes, isPacked } from '../../core/jobs/infer.ts';
import type { Processing } from '../../core/processing/spec.ts';
import type { RawTensor } from '../../core/tensors.ts';
import type { Step } from '../../core/processing/spec.ts';
import { audioTensor } from './audio.ts';
import { FileError, imageTensor } from './image.ts';
import { postProcess } from './post.ts';

/** The model's feeds from a request's file inputs. */
export async function fileFeeds(p: Processing, inputs: WireTensor[], maxPixels?: number): Promise<Record<string, RawTensor>> {
  const feeds: Record<string, RawTensor> = {};
  for (const step of p.inputs) {
    const t = inputs.find((x) => x.name === step.input);
    if (!t || isPacked(t) || isBytes(t) || t.datatype !== 'BYTES') throw new FileError(`input "${step.input}" must be files (BYTES, base64)`);
    const files = t.data.map((v) => Buffer.from(String(v), 'base64'));
    try {
      feeds[step.input] = await stepTensor(files, step, maxPixels);
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

/** One input's files as its tensor, by the kind of step. */
export function stepTensor(files: Buffer[], step: Step, maxPixels?: number): Promise<RawTensor> {
  return step.type === 'audio' ? Promise.resolve(audioTensor(files, step)) : imageTensor(files, step, maxPixels);
}
