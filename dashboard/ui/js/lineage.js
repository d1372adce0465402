// @ts-check
// A version's lineage as a left-to-right graph: where it came from (dataset -> training job, or its
// parent version -> compression job, up to the first upload or dataset) and what was derived from
// it (compression jobs -> child versions), drawn as SVG with one column per generation.
import { h } from './dom.js';

const W = 215;
const NODE_W = 185;
const NODE_H = 44;
const ROW = 62;

/** getVersion(name, version) reads a version record (the parent's lineage continues there). */
export async function lineageGraph(current, allModels, getVersion) {
  const nodes = new Map();
  const edges = [];
  const node = (id, kind, label, href) => {
    if (!nodes.has(id)) nodes.set(id, { id, kind, label, href });
    return id;
  };
  const vid = (name, version) => `version:${name}@${version}`;
  const versionNode = (r) => node(vid(r.name, r.version), 'version', `${r.name} v${r.version}`, `#/models/${encodeURIComponent(r.name)}/versions/${r.version}`);
  const jobNode = (l, kind) =>
    node(
      `job:${l.job ?? `${kind}-${Math.random()}`}`,
      kind,
      kind === 'train' ? 'training job' : `${l.method ?? 'compression'}`,
      l.job ? `#/jobs/${l.job}` : undefined,
    );

  // Ancestors, bounded so a corrupt record cannot loop forever.
  let rec = current;
  for (let depth = 0; rec && depth < 20; depth++) {
    const me = versionNode(rec);
    const l = rec.lineage ?? {};
    if (l.parent) {
      const j = jobNode(l, 'compress');
      const p = vid(l.parent.name, l.parent.version);
      edges.push([j, me], [p, j]);
      const parent = await getVersion(l.parent.name, l.parent.version).catch(() => null);
      if (!parent) {
        node(p, 'version', `${l.parent.name} v${l.parent.version}`);
        break;
      }
      rec = parent;
    } else {
      if (l.source === 'train') {
        const j = jobNode(l, 'train');
        const ds = node(`dataset:${l.dataset}`, 'dataset', l.dataset ?? 'dataset');
        edges.push([ds, j], [j, me]);
      } else {
        // A pipeline's steps: each step's version feeds it.
        if (l.source === 'pipeline' && Array.isArray(l.steps)) for (const st of l.steps) edges.push([versionNode({ name: st.model, version: st.version }), me]);
        else edges.push([node(`upload:${rec.sha256}`, 'upload', 'uploaded'), me]);
      }
      rec = null;
    }
  }

  // Descendants among the versions this key may read.
  const all = allModels.flatMap((m) => m.versions);
  const queue = [current];
  for (let guard = 0; queue.length && guard < 200; guard++) {
    const r = queue.shift();
    for (const c of all.filter((x) => x.lineage?.parent?.name === r.name && x.lineage?.parent?.version === r.version)) {
      const j = jobNode(c.lineage, 'compress');
      edges.push([vid(r.name, r.version), j], [j, versionNode(c)]);
      queue.push(c);
    }
  }
  return { key: JSON.stringify([[...nodes.keys()], edges]), svg: draw(nodes, edges, vid(current.name, current.version)) };
}

/** Column = longest path from a root; rows in order of appearance. Also draws a pipeline's steps (pipeline.js). */
export function draw(nodes, edges, currentId, label = 'lineage graph') {
  const col = new Map([...nodes.keys()].map((id) => [id, 0]));
  for (let i = 0; i < nodes.size; i++) for (const [a, b] of edges) col.set(b, Math.max(col.get(b), col.get(a) + 1));
  const rows = new Map();
  const pos = new Map();
  for (const id of nodes.keys()) {
    const c = col.get(id);
    const r = rows.get(c) ?? 0;
    rows.set(c, r + 1);
    pos.set(id, { x: 10 + c * W, y: 10 + r * ROW });
  }
  const width = 20 + (Math.max(...col.values()) + 1) * W;
  const height = 20 + Math.max(...rows.values()) * ROW;
  const seen = new Set();
  const lines = edges
    .filter(([a, b]) => !seen.has(`${a}>${b}`) && seen.add(`${a}>${b}`))
    .map(([a, b]) => {
      const p = pos.get(a);
      const q = pos.get(b);
      const x1 = p.x + NODE_W;
      const y1 = p.y + NODE_H / 2;
      const x2 = q.x - 4;
      const y2 = q.y + NODE_H / 2;
      return h('svg:path', { d: `M${x1},${y1} C${x1 + 20},${y1} ${x2 - 20},${y2} ${x2},${y2}`, 'data-from': a, 'data-to': b });
    });
  const boxes = [...nodes.values()].map((n) => {
    const { x, y } = pos.get(n.id);
    const g = h(
      'svg:g',
      { class: n.id === currentId ? 'current' : '', 'data-kind': n.kind, 'data-node': n.id, transform: `translate(${x},${y})` },
      h('svg:rect', { width: NODE_W, height: NODE_H, rx: 6 }),
      h('svg:text', { x: 8, y: 15, class: 'kind' }, n.kind),
      h('svg:text', { x: 8, y: 33 }, n.label.length > 26 ? `${n.label.slice(0, 25)}…` : n.label),
    );
    return n.href ? h('svg:a', { href: n.href }, g) : g;
  });
  return h(
    'svg:svg',
    { class: 'lineage', width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': label },
    h(
      'svg:defs',
      {},
      h(
        'svg:marker',
        { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' },
        h('svg:path', { d: 'M0,0 L10,5 L0,10 z', style: 'fill:#7d869c;stroke:none' }),
      ),
    ),
    lines,
    boxes,
  );
}
