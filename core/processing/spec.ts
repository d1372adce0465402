// Declared pre- and post-processing of a model version: how files become the model's input tensors
// (images: decode, orient, resize, crop, channel order, normalisation, layout, precision) and how an
// output becomes labels (softmax, top-k, threshold, argmax). Stored in the version record, checked
// against the model's inputs and outputs when declared, carried with the model in the jobs, and run
// by the workers (workers/processing/), never by the producer.
import { z } from 'zod';
import { badRequest } from '../errors.ts';
import type { TensorSpec } from '../tensors.ts';

const side = z.number().int().min(1).max(8192);

/** A file stored with a version for its processing (a tokenizer): a plain name. */
export const FILE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export const resizeSchema = z.discriminatedUnion('mode', [
  z.object({ mode: z.literal('exact'), width: side, height: side }).strict(),
  z.object({ mode: z.literal('shorter-side'), size: side }).strict(),
  z.object({ mode: z.literal('letterbox'), width: side, height: side, pad: z.number().int().min(0).max(255).default(0) }).strict(),
  z
    .object({ mode: z.literal('fixed-height'), height: side, maxWidth: side, pad: z.number().int().min(0).max(255).default(0) })
    .strict()
    .meta({ description: 'Height fixed, width kept in ratio up to maxWidth, then padded on the right to maxWidth (text-line models)' }),
]);
export type Resize = z.output<typeof resizeSchema>;

const triple = z.array(z.number().finite()).length(3);

export const imageStepSchema = z
  .object({
    type: z.literal('image'),
    /** The model input this file feeds. */
    input: z.string().min(1).max(256),
    resize: resizeSchema.optional(),
    centerCrop: z.object({ width: side, height: side }).strict().optional(),
    channels: z.enum(['rgb', 'bgr']).default('rgb'),
    /** mean/std apply to values scaled to 0..1 (the torchvision convention); scale/offset to 0..255 values: x * scale + offset. */
    normalize: z
      .union([
        z.object({ mean: triple, std: triple.refine((s) => s.every((x) => x !== 0), 'std must not be 0') }).strict(),
        z.object({ scale: z.number().finite(), offset: z.number().finite().default(0) }).strict(),
      ])
      .optional(),
    layout: z.enum(['nchw', 'nhwc']).default('nchw'),
    dtype: z.enum(['fp32', 'fp16']).default('fp32'),
  })
  .strict();
export type ImageStep = z.output<typeof imageStepSchema>;

export const audioStepSchema = z
  .object({
    type: z.literal('audio'),
    /** The model input this file feeds: FP32 [n, length]. */
    input: z.string().min(1).max(256),
    /** Samples per second the model takes: a WAV at another rate is resampled (linear interpolation). */
    sampleRate: z.number().int().min(1000).max(384_000),
    /** Samples per row: a shorter sound is padded with silence at the end, a longer one cut. */
    length: z.number().int().min(1).max(2_000_000),
    /** Log-mel features of the samples instead of the samples: FP32 [n, nMels, frames]. */
    logMel: z
      .object({
        nMels: z.number().int().min(1).max(512),
        /** Samples per frame (the FFT size): a power of two. */
        nFft: z
          .number()
          .int()
          .min(16)
          .max(16_384)
          .refine((n) => (n & (n - 1)) === 0, 'nFft must be a power of two'),
        /** Samples between frame starts. */
        hop: z.number().int().min(1).max(16_384),
        fMin: z.number().min(0).default(0),
        /** Default: half the sample rate. */
        fMax: z.number().positive().optional(),
        /** Added before the natural log: ln(mel + floor). */
        floor: z.number().positive().max(1).default(1e-10),
      })
      .strict()
      .optional(),
  })
  .strict()
  .meta({ description: 'WAV (PCM 16 or 32 bit, or float 32), channels averaged to mono, resampled, padded or cut' });
export type AudioStep = z.output<typeof audioStepSchema>;

/** Frames of an audio step's log-mel features: whole frames of nFft samples, hop apart (no centring padding). */
export const melFrames = (s: AudioStep): number => (s.logMel && s.length >= s.logMel.nFft ? 1 + Math.floor((s.length - s.logMel.nFft) / s.logMel.hop) : 0);

const inputName = z.string().min(1).max(256);

export const textStepSchema = z
  .object({
    type: z.literal('text'),
    /** The request's field holding the text (a BYTES input of that name on /v2); not a model input. */
    input: inputName.default('text'),
    /** The version's file holding a HuggingFace tokenizer.json (PUT .../processing/files/{file}). */
    tokenizer: z.string().regex(FILE_NAME).default('tokenizer.json'),
    /** Set by the server when the processing is stored: the tokenizer file's SHA-256, so jobs carry which one. */
    sha256: z
      .string()
      .regex(/^[0-9a-f]{64}$/)
      .optional(),
    /** Tokens per row, special tokens included. */
    maxLength: z.number().int().min(1).max(65_536),
    /** `max_length`: every row padded to maxLength; `longest`: to the longest row of the request (or batch group). */
    padding: z.enum(['max_length', 'longest']).default('max_length'),
    /** Cut longer texts to maxLength (keeping the trailing special tokens); false: a longer text is refused. */
    truncation: z.boolean().default(true),
    addSpecialTokens: z.boolean().default(true),
    /** The model inputs fed: token ids (required), attention mask and token type ids (when the model takes them). */
    inputIds: inputName.default('input_ids'),
    attentionMask: inputName.optional(),
    tokenTypeIds: inputName.optional(),
    /** The padding token's id; default: the tokenizer's padding.pad_id, else the id of [PAD], <pad> or <|endoftext|>, else 0. */
    padId: z.number().int().min(0).optional(),
    /** The integer type of the fed inputs. */
    dtype: z.enum(['int64', 'int32']).default('int64'),
  })
  .strict()
  .meta({ description: "Text tokenized with the version's tokenizer.json: input ids, attention mask, token type ids" });
export type TextStep = z.output<typeof textStepSchema>;

/** The model inputs a text step feeds. */
export const textFeeds = (s: TextStep): string[] => [s.inputIds, ...(s.attentionMask ? [s.attentionMask] : []), ...(s.tokenTypeIds ? [s.tokenTypeIds] : [])];

export const stepSchema = z.discriminatedUnion('type', [imageStepSchema, audioStepSchema, textStepSchema]);
export type Step = z.output<typeof stepSchema>;

export const postSchema = z
  .object({
    /** The model output read, [n, classes]. */
    output: z.string().min(1).max(256),
    softmax: z.boolean().default(false),
    /** Adds `top_k_labels` (BYTES [n,k]) and `top_k_scores` (FP32 [n,k]). */
    topK: z.number().int().min(1).max(1000).optional(),
    /** Adds `label` (BYTES [n]): the best class's label. */
    argmax: z.boolean().default(false),
    /** A score under it gives no label: "" in `label` and in `top_k_labels`. */
    threshold: z.number().finite().optional(),
  })
  .strict();
export type PostStep = z.output<typeof postSchema>;

export const processingSchema = z
  .object({
    inputs: z.array(stepSchema).min(1).max(8),
    post: postSchema.optional(),
    /** Class names, in the output's order; without them labels are the class indices as text. */
    labels: z.array(z.string().max(256)).max(100_000).optional(),
  })
  .strict();
export type Processing = z.output<typeof processingSchema>;

/** A file stored with a version for its processing: its content's SHA-256 (the store key) and size. */
export const processingFileSchema = z.object({ sha256: z.string().regex(/^[0-9a-f]{64}$/), bytes: z.number().int().min(0) });
export type ProcessingFile = z.output<typeof processingFileSchema>;

/** Where a processing file's bytes are stored. */
export const processingFileKey = (sha256: string) => `processing-files/sha256/${sha256}.json`;

/** The declaration with each text step's tokenizer SHA-256 set from the version's files (already checked to exist). */
export function withFileHashes(p: Processing, files: Record<string, ProcessingFile> | undefined): Processing {
  return { ...p, inputs: p.inputs.map((s) => (s.type === 'text' && files?.[s.tokenizer] ? { ...s, sha256: files[s.tokenizer]!.sha256 } : s)) };
}

/** Output names the post-processing adds; a model output of the same name cannot be post-processed. */
export const POST_OUTPUTS = ['probabilities', 'label', 'top_k_labels', 'top_k_scores'] as const;

/** The height and width an image step gives, when fixed. */
export function outputSize(s: ImageStep): { height: number; width: number } | null {
  if (s.centerCrop) return { height: s.centerCrop.height, width: s.centerCrop.width };
  const r = s.resize;
  if (!r || r.mode === 'shorter-side') return null;
  if (r.mode === 'fixed-height') return { height: r.height, width: r.maxWidth };
  return { height: r.height, width: r.width };
}

/** What a caller sends for each processed input: the file's bytes, one per row. */
export const fileInputSpec = (s: Step): TensorSpec => ({ name: s.input, datatype: 'BYTES', shape: [-1] });

/**
 * Checks a declaration against the model's inputs and outputs (400 naming the field): every input is
 * fed by one step, each a float [n,3,H,W] (nchw) or [n,H,W,3] (nhwc) of the step's precision whose
 * fixed H and W equal the step's output size; the post-processed output is a float [n, classes] with
 * as many labels as classes.
 */
export function checkProcessing(
  p: Processing,
  model: { inputs: TensorSpec[]; outputs: TensorSpec[]; files?: Record<string, ProcessingFile> | undefined },
): Processing {
  const files = model.files;
  // Model inputs fed, and request fields taken (a text step's field is not a model input).
  const seen = new Set<string>();
  const names = new Set<string>();
  for (const [i, s] of p.inputs.entries()) {
    const at = `processing.inputs[${i}]`;
    if (s.type === 'text') {
      if (names.has(s.input)) throw badRequest(`${at}.input "${s.input}" is given twice`);
      names.add(s.input);
      for (const [field, fed] of [
        ['inputIds', s.inputIds],
        ['attentionMask', s.attentionMask],
        ['tokenTypeIds', s.tokenTypeIds],
      ] as const) {
        if (fed === undefined) continue;
        const m = model.inputs.find((x) => x.name === fed);
        if (!m) throw badRequest(`${at}.${field} "${fed}" is not an input of the model (${model.inputs.map((x) => `"${x.name}"`).join(', ')})`);
        if (seen.has(fed)) throw badRequest(`${at}.${field} "${fed}" is fed twice`);
        seen.add(fed);
        const want = s.dtype.toUpperCase();
        if (m.datatype !== want || m.shape.length !== 2)
          throw badRequest(`${at}.${field}: the step gives ${want} [n, tokens]; input "${fed}" is ${m.datatype} [${m.shape.join(',')}] (set dtype for INT32)`);
        const len = m.shape[1]!;
        if (len >= 0 && (s.padding !== 'max_length' || len !== s.maxLength))
          throw badRequest(`${at}: input "${fed}" takes exactly ${len} tokens: give padding "max_length" and maxLength ${len}`);
      }
      if (!files?.[s.tokenizer])
        throw badRequest(`${at}.tokenizer "${s.tokenizer}" is not a file of this version: upload it first (PUT .../processing/files/${s.tokenizer})`);
      continue;
    }
    const spec = model.inputs.find((m) => m.name === s.input);
    if (!spec) throw badRequest(`${at}.input "${s.input}" is not an input of the model (${model.inputs.map((m) => `"${m.name}"`).join(', ')})`);
    if (seen.has(s.input) || names.has(s.input)) throw badRequest(`${at}.input "${s.input}" is fed twice`);
    seen.add(s.input);
    names.add(s.input);
    if (s.type === 'audio' && s.logMel) {
      const m = s.logMel;
      const frames = melFrames(s);
      if (!frames) throw badRequest(`${at}.logMel.nFft ${m.nFft} is longer than length ${s.length}`);
      if ((m.fMax ?? s.sampleRate / 2) > s.sampleRate / 2 || m.fMin >= (m.fMax ?? s.sampleRate / 2))
        throw badRequest(`${at}.logMel: fMin < fMax <= sampleRate / 2 (${s.sampleRate / 2}) is needed`);
      const fixed = (d: number | undefined, want: number) => d === undefined || d < 0 || d === want;
      if (spec.datatype !== 'FP32' || spec.shape.length !== 3 || !fixed(spec.shape[1], m.nMels) || !fixed(spec.shape[2], frames))
        throw badRequest(`${at}: log-mel gives FP32 [n,${m.nMels},${frames}]; input "${s.input}" is ${spec.datatype} [${spec.shape.join(',')}]`);
      continue;
    }
    if (s.type === 'audio') {
      if (spec.datatype !== 'FP32' || spec.shape.length !== 2 || (spec.shape[1]! >= 0 && spec.shape[1] !== s.length))
        throw badRequest(`${at}: audio gives FP32 [n,${s.length}]; input "${s.input}" is ${spec.datatype} [${spec.shape.join(',')}]`);
      continue;
    }
    const want = s.dtype === 'fp16' ? 'FP16' : 'FP32';
    if (spec.datatype !== want) throw badRequest(`${at}.dtype ${s.dtype} gives ${want}; input "${s.input}" is ${spec.datatype}`);
    if (spec.shape.length !== 4) throw badRequest(`${at}: input "${s.input}" [${spec.shape.join(',')}] is not an image batch of rank 4`);
    const [h, w, c] = s.layout === 'nchw' ? [spec.shape[2]!, spec.shape[3]!, spec.shape[1]!] : [spec.shape[1]!, spec.shape[2]!, spec.shape[3]!];
    if (c >= 0 && c !== 3) throw badRequest(`${at}.layout ${s.layout}: input "${s.input}" [${spec.shape.join(',')}] has ${c} channels, not 3`);
    const size = outputSize(s);
    if (!size) throw badRequest(`${at}: the image size is not fixed: give resize exact, letterbox or fixed-height, or a centerCrop`);
    if ((h >= 0 && h !== size.height) || (w >= 0 && w !== size.width))
      throw badRequest(`${at} gives ${size.height}x${size.width} images; input "${s.input}" [${spec.shape.join(',')}] takes ${h}x${w}`);
    if (s.centerCrop && s.resize?.mode === 'shorter-side' && s.resize.size < Math.min(s.centerCrop.width, s.centerCrop.height))
      throw badRequest(`${at}.centerCrop is larger than resize.size ${s.resize.size}`);
  }
  const missing = model.inputs.filter((m) => !seen.has(m.name));
  if (missing.length) throw badRequest(`processing.inputs feed no step to input ${missing.map((m) => `"${m.name}"`).join(', ')}`);
  if (p.post) {
    const o = model.outputs.find((m) => m.name === p.post!.output);
    if (!o) throw badRequest(`processing.post.output "${p.post.output}" is not an output of the model (${model.outputs.map((m) => `"${m.name}"`).join(', ')})`);
    if (o.datatype !== 'FP32' || o.shape.length !== 2)
      throw badRequest(`processing.post.output "${o.name}" must be FP32 [n, classes], not ${o.datatype} [${o.shape.join(',')}]`);
    const taken = model.outputs.find((m) => (POST_OUTPUTS as readonly string[]).includes(m.name));
    if (taken) throw badRequest(`processing.post adds outputs ${POST_OUTPUTS.join(', ')}; the model already has an output "${taken.name}"`);
    const classes = o.shape[1]!;
    if (p.labels && classes >= 0 && p.labels.length !== classes)
      throw badRequest(`processing.labels has ${p.labels.length} names; output "${o.name}" has ${classes} classes`);
    if (p.post.topK !== undefined && classes >= 0 && p.post.topK > classes)
      throw badRequest(`processing.post.topK ${p.post.topK} is more than the ${classes} classes of "${o.name}"`);
  } else if (p.labels) throw badRequest('processing.labels name the classes of processing.post.output: give post too');
  return withFileHashes(p, files);
}
