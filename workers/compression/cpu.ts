// The worker's CPU as a compression report records it: int8 kernels differ with the instruction
// set (without VNNI, onnxruntime's U8S8 kernels saturate), so a measured figure holds for its class.
import fs from 'node:fs';
import os from 'node:os';

const RELEVANT = ['avx2', 'avx512f', 'avx512_vnni', 'avx_vnni', 'avx512_bf16', 'amx_int8', 'f16c', 'fma', 'neon', 'asimddp'];

let cached: { model: string; flags: string[] } | undefined;

export function cpuFeatures(): { model: string; flags: string[] } {
  if (cached) return cached;
  let flags: string[] = [];
  try {
    const info = fs.readFileSync('/proc/cpuinfo', 'utf8');
    const line = /^(?:flags|Features)\s*:\s*(.*)$/m.exec(info)?.[1] ?? '';
    const have = new Set(line.split(/\s+/));
    flags = RELEVANT.filter((f) => have.has(f));
  } catch {
    // Not Linux: the model name alone.
  }
  cached = { model: os.cpus()[0]?.model ?? 'unknown', flags };
  return cached;
}
