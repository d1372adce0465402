// The ONNX protobuf messages: workers/onnx/onnx.proto (IR 10) loaded by protobufjs at start, typed by
// the generated onnx-types.ts. protobufjs drops the fields a .proto does not name when it decodes,
// so the .proto names every field of IR 10 and unknown-fields.ts finds those of a later IR.
import path from 'node:path';
import protobuf from 'protobufjs';
import type { MessageType, ModelProto, OnnxPackage } from './onnx-types.ts';

export type * from './onnx-types.ts';

export const ONNX_PROTO_PATH = path.join(import.meta.dirname, 'onnx.proto');

/** The reflection root of onnx.proto (for readers that walk the wire format themselves). */
export const onnxRoot = protobuf.loadSync(ONNX_PROTO_PATH).resolveAll();

/** A message type's functions, bound to its reflected Type (a wrapper: the library's objects stay as they are). */
function messageType(t: protobuf.Type): MessageType<unknown, unknown> {
  return {
    create: (p) => t.create(p as Record<string, unknown> | undefined),
    encode: (m, w) => t.encode(m as Record<string, unknown>, w),
    decode: (r, n) => t.decode(r, n),
    toObject: (m, o) => t.toObject(m as protobuf.Message, o),
  };
}

function packageOf(ns: protobuf.NamespaceBase): Record<string, unknown> {
  const out: Record<string, unknown> = ns instanceof protobuf.Type ? { ...messageType(ns) } : {};
  for (const n of ns.nestedArray) {
    if (n instanceof protobuf.Enum) out[n.name] = Object.freeze({ ...n.values });
    else if (n instanceof protobuf.Namespace || n instanceof protobuf.Type) out[n.name] = packageOf(n);
  }
  return Object.freeze(out);
}

/** The package `onnx`: onnx.ModelProto.decode(bytes), onnx.AttributeProto.AttributeType.GRAPH, ... */
export const onnx = packageOf(onnxRoot.lookup('onnx') as protobuf.Namespace) as unknown as OnnxPackage;

/** TensorProto.DataType numbers for the element types modelq writes. */
export const DT = { FLOAT: 1, UINT8: 2, INT8: 3, INT32: 6, INT64: 7, STRING: 8, BOOL: 9, FLOAT16: 10, DOUBLE: 11 } as const;

export function decodeModel(bytes: Uint8Array): ModelProto {
  return onnx.ModelProto.decode(bytes);
}
export function encodeModel(m: ModelProto): Uint8Array {
  return onnx.ModelProto.encode(m).finish();
}
