// Finds the fields of an encoded ONNX model that workers/onnx/onnx.proto does not name (a later IR's
// additions, or a vendor's). protobufjs decodes past them and drops them, so a rewrite that decodes
// and re-encodes such a model would lose them without a word: the compression job refuses it instead.
import protobuf from 'protobufjs';
import { onnxRoot } from './proto.ts';

/** Nesting deeper than this is not an ONNX model (protobuf's own parsers stop at 100). */
const MAX_DEPTH = 100;
/** The first few are enough to name the problem. */
const MAX_FOUND = 8;

export interface UnknownField {
  /** Where: `ModelProto.graph.node[3]`. */
  path: string;
  /** The field number the .proto does not name. */
  field: number;
}

class TooDeep extends Error {}

function walk(type: protobuf.Type, bytes: Uint8Array, path: string, depth: number, found: UnknownField[]): void {
  if (depth > MAX_DEPTH) throw new TooDeep(`${path}: nested deeper than ${MAX_DEPTH} messages`);
  const r = protobuf.Reader.create(bytes);
  const seen = new Map<number, number>();
  while (r.pos < r.len && found.length < MAX_FOUND) {
    const tag = r.uint32();
    const [id, wire] = [tag >>> 3, tag & 7];
    const f = type.fieldsById[id];
    if (!f) {
      found.push({ path, field: id });
      r.skipType(wire);
      continue;
    }
    if (wire === 2 && f.resolvedType instanceof protobuf.Type) {
      const start = r.pos + 0;
      const len = r.uint32();
      const sub = bytes.subarray(r.pos, r.pos + len);
      if (sub.length !== len) throw new RangeError(`${path}.${f.name}: ${len} bytes announced, ${sub.length} present (at ${start})`);
      r.skip(len);
      const i = seen.get(id) ?? 0;
      seen.set(id, i + 1);
      walk(f.resolvedType, sub, f.repeated ? `${path}.${f.name}[${i}]` : `${path}.${f.name}`, depth + 1, found);
    } else r.skipType(wire);
  }
}

/** The fields of `bytes` (an encoded ModelProto) that the bindings would drop; empty when there are none. */
export function unknownFields(bytes: Uint8Array): UnknownField[] {
  const found: UnknownField[] = [];
  walk(onnxRoot.lookupType('onnx.ModelProto'), bytes, 'ModelProto', 0, found);
  return found;
}
