// Layering and cycles (design.md, "Layout"): core/ imports nothing above it; producer, workers,
// dashboard and cli never import each other; no import cycles. Run by `npm run deps` and .ci/run.
const ROOMS = ['producer', 'workers', 'dashboard', 'cli'];

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'core-imports-nothing-above',
      comment: 'core/ holds the contracts every process shares; it must not depend on any of them.',
      severity: 'error',
      from: { path: '^core/' },
      to: { path: `^(${ROOMS.join('|')})/` },
    },
    ...ROOMS.map((room) => ({
      name: `${room}-stays-in-its-room`,
      comment: `${room}/ may import core/ and itself, never ${ROOMS.filter((r) => r !== room).join(', ')}.`,
      severity: 'error',
      from: { path: `^${room}/` },
      to: { path: `^(${ROOMS.filter((r) => r !== room).join('|')})/` },
    })),
    {
      name: 'no-circular',
      comment: 'An import cycle makes load order matter and the layering unreadable.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(node_modules|data)/' },
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
    enhancedResolveOptions: { extensions: ['.ts', '.mjs', '.js'] },
  },
};
