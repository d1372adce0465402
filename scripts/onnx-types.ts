// Writes workers/onnx/onnx-types.ts, the TypeScript shapes of the messages in workers/onnx/onnx.proto:
// `npm run onnx:types` after changing the .proto (a unit test fails until then). protobufjs loads the
// .proto at run time (workers/onnx/proto.ts); these types are what strict TypeScript checks against.
import fs from 'node:fs';
import { pathToFileURL } from 'node:url';
import protobuf from 'protobufjs';
import { format, resolveConfig } from 'prettier';

export const PROTO_FILE = new URL('../workers/onnx/onnx.proto', import.meta.url);
export const TYPES_FILE = new URL('../workers/onnx/onnx-types.ts', import.meta.url);

const INT64 = new Set(['int64', 'uint64', 'sint64', 'fixed64', 'sfixed64']);
const NUMBER = new Set(['int32', 'uint32', 'sint32', 'fixed32', 'sfixed32', 'float', 'double']);

/** `.onnx.TypeProto.Tensor` -> `TypeProtoTensor`. */
const tsName = (fullName: string) => fullName.replace(/^\.onnx\./, '').replace(/\./g, '');

function fieldType(f: protobuf.Field): string {
  if (INT64.has(f.type)) return 'Int64';
  if (NUMBER.has(f.type)) return 'number';
  if (f.type === 'bool') return 'boolean';
  if (f.type === 'string') return 'string';
  if (f.type === 'bytes') return 'Uint8Array';
  if (f.resolvedType instanceof protobuf.Enum) return 'number';
  if (f.resolvedType instanceof protobuf.Type) return `I${tsName(f.resolvedType.fullName)}`;
  throw new Error(`onnx.proto: field ${f.fullName} has a type the generator does not know (${f.type})`);
}

function messageTypes(t: protobuf.Type): string {
  const name = tsName(t.fullName);
  const props = t.fieldsArray.map((f) => `  ${f.name}?: ${fieldType(f)}${f.repeated ? '[]' : ''} | null;`);
  // A decoded message carries its repeated fields ([]) and scalars (defaults); sub-messages and oneof members may be absent.
  const decoded = t.fieldsArray.map((f) => {
    const ty = `${fieldType(f)}${f.repeated ? '[]' : ''}`;
    const optional = !f.repeated && (f.resolvedType instanceof protobuf.Type || f.partOf);
    return optional ? `  ${f.name}?: ${ty} | null;` : `  ${f.name}: ${ty};`;
  });
  const oneofs = t.oneofsArray.map((o) => `  ${o.name}?: ${o.fieldsArray.map((f) => `'${f.name}'`).join(' | ')};`);
  return [
    `/** onnx.${t.fullName.slice(6)}: what create() and encode() take. */`,
    `export interface I${name} {`,
    ...props,
    '}',
    `/** onnx.${t.fullName.slice(6)} as decode() and create() give it. */`,
    `export interface ${name} extends I${name} {`,
    ...decoded,
    ...oneofs,
    '}',
  ].join('\n');
}

function namespaceMember(obj: protobuf.ReflectionObject, indent: string): string {
  if (obj instanceof protobuf.Enum) {
    const values = Object.entries(obj.values).map(([k, v]) => `${indent}  readonly ${k}: ${v};`);
    return `${indent}readonly ${obj.name}: {\n${values.join('\n')}\n${indent}};`;
  }
  if (!(obj instanceof protobuf.Type)) throw new Error(`onnx.proto: ${obj.fullName} is neither a message nor an enum`);
  const name = tsName(obj.fullName);
  const nested = obj.nestedArray.map((n) => namespaceMember(n, indent + '  '));
  const base = `MessageType<I${name}, ${name}>`;
  return nested.length ? `${indent}readonly ${obj.name}: ${base} & {\n${nested.join('\n')}\n${indent}};` : `${indent}readonly ${obj.name}: ${base};`;
}

function allTypes(ns: protobuf.NamespaceBase): protobuf.Type[] {
  return ns.nestedArray.flatMap((n) => (n instanceof protobuf.Type ? [n, ...allTypes(n)] : []));
}

/** The generated module's text, formatted as the repository formats TypeScript. */
export async function renderOnnxTypes(): Promise<string> {
  const root = protobuf.loadSync(PROTO_FILE.pathname);
  root.resolveAll();
  const onnx = root.lookup('onnx') as protobuf.Namespace;
  const text = [
    '// Generated from workers/onnx/onnx.proto by scripts/onnx-types.ts (`npm run onnx:types`): do not edit.',
    '// The shapes of the ONNX messages for strict TypeScript; workers/onnx/proto.ts loads the .proto itself.',
    "import type { IConversionOptions, Long, Reader, Writer } from 'protobufjs';",
    '',
    '/** int64 fields decode as Long (protobufjs with the long package) and encode from a number or a Long. */',
    'export type Int64 = number | Long;',
    '',
    '/** One message type: build, encode, decode, convert. */',
    'export interface MessageType<I, M> {',
    '  create(properties?: I): M;',
    '  encode(message: I, writer?: Writer): Writer;',
    '  decode(reader: Reader | Uint8Array, length?: number): M;',
    '  toObject(message: M, options?: IConversionOptions): Record<string, unknown>;',
    '}',
    '',
    ...allTypes(onnx).map((t) => messageTypes(t) + '\n'),
    '/** The package `onnx`: its message types with their nested types and enums. */',
    'export interface OnnxPackage {',
    ...onnx.nestedArray.map((n) => namespaceMember(n, '  ')),
    '}',
  ].join('\n');
  return format(text, { ...(await resolveConfig(TYPES_FILE.pathname)), filepath: TYPES_FILE.pathname });
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  fs.writeFileSync(TYPES_FILE, await renderOnnxTypes());
}
