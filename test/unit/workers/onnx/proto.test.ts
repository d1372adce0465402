// The ONNX bindings know IR 10: a model carrying every IR 9/10 addition, written field by field as
// onnx's own serializer writes it (field-number order), decodes and re-encodes to the same bytes; a
// field the bindings do not know is found and named; too new an IR or opset is refused by name.
import fs from 'node:fs';
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { renderOnnxTypes, TYPES_FILE } from '../../../../scripts/onnx-types.ts';
import { decodeModel, encodeModel, onnx } from '../../../../workers/onnx/proto.ts';
import { unknownFields } from '../../../../workers/onnx/unknown-fields.ts';
import { rewriteRefusal } from '../../../../workers/onnx/versions.ts';

// Wire-format writers, independent of the bindings under test.
const w = () => protobuf.Writer.create();
const cat = (parts: Uint8Array[]) => Uint8Array.from(Buffer.concat(parts));
const str = (id: number, s: string) =>
  w()
    .uint32((id << 3) | 2)
    .string(s)
    .finish();
const int = (id: number, n: number) =>
  w()
    .uint32(id << 3)
    .int64(n)
    .finish();
const f32 = (id: number, x: number) =>
  w()
    .uint32((id << 3) | 5)
    .float(x)
    .finish();
const raw = (id: number, b: Uint8Array) =>
  w()
    .uint32((id << 3) | 2)
    .bytes(b)
    .finish();
const sub = (id: number, ...fields: Uint8Array[]) => raw(id, cat(fields));
const entry = (id: number, key: string, value: string) => sub(id, str(1, key), str(2, value));

/** An IR 10 model whose fields the IR 8 bindings (onnx-proto 8) dropped: overloads, metadata_props, function value_info, float8/int4 types. */
function ir10Model(extraNodeField?: Uint8Array): Uint8Array {
  const call = sub(
    1,
    str(1, 'x'),
    str(2, 'y'),
    str(3, 'call'),
    str(4, 'Scale2'),
    sub(5, str(1, 'alpha'), f32(2, 3), int(20, 1)),
    str(7, 'local'),
    str(8, 'v2'),
    entry(9, 'origin', 'layer1'),
    ...(extraNodeField ? [extraNodeField] : []),
  );
  const graph = sub(
    7,
    call,
    str(2, 'g'),
    sub(5, int(1, 2), int(2, 17), str(8, 'f8'), raw(9, Uint8Array.of(0x38, 0x40)), entry(16, 'scale', 'per-tensor')),
    sub(11, str(1, 'x'), sub(2, sub(1, int(1, 1), sub(2, sub(1, int(1, 2)), sub(1, str(2, 'n'))))), entry(4, 'unit', 'metres')),
    sub(12, str(1, 'y'), sub(2, sub(9, sub(1, sub(1, int(1, 22)))))),
    sub(13, str(1, 's'), sub(2, sub(8, int(1, 1)))),
    entry(16, 'stage', 'ir10'),
  );
  const fn = sub(
    25,
    str(1, 'Scale2'),
    str(4, 'a'),
    str(5, 'b'),
    str(6, 'beta'),
    sub(7, str(1, 'a'), str(1, 'k'), str(2, 'b'), str(4, 'Mul'), sub(5, str(1, 'alpha'), int(20, 1), str(21, 'alpha'))),
    sub(9, str(1, ''), int(2, 21)),
    str(10, 'local'),
    sub(11, str(1, 'alpha'), f32(2, 2), int(20, 1)),
    sub(12, str(1, 'b'), sub(2, sub(1, int(1, 1)))),
    str(13, 'v2'),
    entry(14, 'author', 'modelq'),
  );
  return cat([int(1, 10), str(2, 'test'), graph, sub(8, str(1, ''), int(2, 21)), sub(8, str(1, 'local'), int(2, 1)), entry(14, 'k', 'v'), fn]);
}

describe('ONNX bindings (IR 10)', () => {
  it('decode -> encode gives back the same bytes, IR 9/10 fields included', () => {
    const bytes = ir10Model();
    const m = decodeModel(bytes);
    expect(Buffer.from(encodeModel(m)).equals(Buffer.from(bytes))).toBe(true);
    const node = m.graph!.node![0]!;
    expect([node.overload, node.metadataProps?.[0]?.key, node.metadataProps?.[0]?.value]).toEqual(['v2', 'origin', 'layer1']);
    expect(m.graph!.metadataProps?.[0]).toMatchObject({ key: 'stage', value: 'ir10' });
    expect(m.graph!.initializer![0]).toMatchObject({ dataType: 17, metadataProps: [{ key: 'scale', value: 'per-tensor' }] });
    expect(m.graph!.input![0]!.metadataProps?.[0]).toMatchObject({ key: 'unit' });
    expect(m.graph!.output![0]!.type?.optionalType?.elemType?.tensorType?.elemType).toBe(22);
    expect(m.graph!.valueInfo![0]!.type?.sparseTensorType?.elemType).toBe(1);
    const f = m.functions[0]!;
    expect([f.overload, f.valueInfo?.[0]?.name, f.attributeProto?.[0]?.f, f.metadataProps?.[0]?.key]).toEqual(['v2', 'b', 2, 'author']);
    expect(f.node?.[0]?.attribute?.[0]?.refAttrName).toBe('alpha');
    expect(unknownFields(bytes)).toEqual([]);
  });

  it('a field the bindings do not know is found and named where it is', () => {
    const bytes = ir10Model(sub(10, str(1, 'cpu'))); // NodeProto field 10 is not in IR 10
    expect(unknownFields(bytes)).toEqual([{ path: 'ModelProto.graph.node[0]', field: 10 }]);
    expect(Buffer.from(encodeModel(decodeModel(bytes))).length).toBeLessThan(bytes.length); // what protobufjs would drop
    expect(rewriteRefusal(bytes)).toMatch(/fields the IR 10 bindings do not know .*ModelProto\.graph\.node\[0\] field 10/);
  });

  it('refuses an IR or an opset newer than the rewrites know, naming it; accepts IR 10 at opset 21', () => {
    expect(rewriteRefusal(ir10Model())).toBeUndefined();
    const m = decodeModel(ir10Model());
    m.irVersion = 11;
    expect(rewriteRefusal(encodeModel(m))).toMatch(/IR version 11 is newer than 10/);
    const o = decodeModel(ir10Model());
    o.opsetImport[0]!.version = 22;
    expect(rewriteRefusal(encodeModel(o))).toMatch(/opset 22 is newer than 21/);
  });

  it('exposes the enums of the .proto', () => {
    expect(onnx.TensorProto.DataType.INT4).toBe(22);
    expect(onnx.AttributeProto.AttributeType.GRAPH).toBe(5);
    expect(onnx.Version.IR_VERSION).toBe(10);
  });

  it('onnx-types.ts is what scripts/onnx-types.ts makes of onnx.proto (npm run onnx:types)', async () => {
    expect(fs.readFileSync(TYPES_FILE, 'utf8')).toBe(await renderOnnxTypes());
  });
});
