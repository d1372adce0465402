// @ts-check
// A pipeline version's steps as a left-to-right graph (docs/processing.md#pipelines): its inputs,
// each step (its model version linked; a step run per detected box says so), and its outputs, with
// an arrow for every value that feeds another: what the worker runs for one request.
import { draw } from './lineage.js';

/** The value a reference names: a pipeline input, or a step (for "<step>.<output>"). */
function source(ref, inputs) {
  if (inputs.includes(ref)) return `input:${ref}`;
  const dot = ref.indexOf('.');
  return dot > 0 ? `step:${ref.slice(0, dot)}` : `input:${ref}`;
}

/** The SVG graph of `p` (a version record's `pipeline`). */
export function pipelineGraph(p) {
  const nodes = new Map();
  const edges = [];
  const inputs = p.inputs.map((i) => i.name);
  for (const i of p.inputs)
    nodes.set(`input:${i.name}`, { id: `input:${i.name}`, kind: 'input', label: `${i.name} ${i.datatype === 'BYTES' ? 'files' : i.datatype}` });
  for (const s of p.steps) {
    const id = `step:${s.name}`;
    nodes.set(id, {
      id,
      kind: s.forEach ? 'step, per box' : 'step',
      label: `${s.name}: ${s.model} v${s.version}`,
      href: `#/models/${encodeURIComponent(s.model)}/versions/${s.version}`,
    });
    for (const [input, ref] of Object.entries(s.inputs ?? {})) edges.push([source(ref, inputs), id, input]);
    if (s.forEach) edges.push([source(s.forEach.boxes, inputs), id, 'boxes'], [source(s.forEach.image, inputs), id, 'crops']);
  }
  for (const [name, ref] of Object.entries(p.outputs)) {
    nodes.set(`output:${name}`, { id: `output:${name}`, kind: 'output', label: `${name} <- ${ref}` });
    edges.push([source(ref, inputs), `output:${name}`, name]);
  }
  const pairs = edges.map(([a, b]) => [a, b]);
  return { key: JSON.stringify([[...nodes.keys()], pairs]), svg: draw(nodes, pairs, '', 'pipeline graph') };
}
