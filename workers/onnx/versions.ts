// Which models the graph rewrites (quantization, fp16, pruning) may decode, edit and re-encode: those
// whose IR version, default-domain opset and fields they know. Anything newer would come out with
// fields dropped or operators read by rules of an older opset, so it is refused, naming the version.
import { defaultOpset } from './graph.ts';
import { decodeModel } from './proto.ts';
import { unknownFields } from './unknown-fields.ts';

/** The IR version of workers/onnx/onnx.proto: every field up to it is known to the bindings. */
export const MAX_IR_VERSION = 10;
/**
 * The newest default-domain opset the rewrites read. Opset 21 came with IR 10 (ONNX 1.16); the
 * operators the rewrites change or type (MatMul, Gemm, Conv, Gather, LSTM/GRU, attention, Cast,
 * QuantizeLinear, the text front ends up to StringSplit at 20) kept their inputs and attributes up
 * to it, and the opset converter's adapters (opset/) cover the signature changes up to 18.
 */
export const MAX_REWRITE_OPSET = 21;

/** Why the rewrites must not touch this model, or undefined when they may. */
export function rewriteRefusal(bytes: Uint8Array): string | undefined {
  const m = decodeModel(bytes);
  const ir = Number(m.irVersion ?? 0);
  if (ir > MAX_IR_VERSION) return `the model's IR version ${ir} is newer than ${MAX_IR_VERSION}, the newest the rewrites know`;
  const opset = defaultOpset(m);
  if (opset > MAX_REWRITE_OPSET) return `the model's opset ${opset} is newer than ${MAX_REWRITE_OPSET}, the newest the rewrites know`;
  const unknown = unknownFields(bytes);
  if (unknown.length) {
    const where = unknown.map((u) => `${u.path} field ${u.field}`).join(', ');
    return `the model has fields the IR ${MAX_IR_VERSION} bindings do not know and a rewrite would drop (${where})`;
  }
  return undefined;
}
