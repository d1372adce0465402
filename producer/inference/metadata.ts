// The protocol's server and model metadata, answered alike by REST /v2 and gRPC.
import type { VersionRecord } from '../../core/registry.ts';
import type { ProducerDeps } from '../deps.ts';

export const SERVER_VERSION = '0.1.0';

/** The protocol's model metadata of a version. */
export async function modelMetadata(registry: ProducerDeps['registry'], v: VersionRecord) {
  const m = await registry.getModel(v.name);
  return {
    name: v.name,
    versions: m.versions.map((x) => String(x.version)),
    platform: 'onnxruntime_onnx',
    inputs: v.inputs,
    outputs: v.outputs,
    properties: { version: String(v.version), sha256: v.sha256 },
    // What the version's metadata says (task, target, features, classes: the values `label` takes).
    ...(v.metadata && Object.keys(v.metadata).length ? { parameters: v.metadata } : {}),
  };
}
