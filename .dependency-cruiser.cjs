// Layering and cycles (docs/architecture.md, "Layering"): core/ imports nothing above it; producer, workers,
// dashboard and cli never import each other; no import cycles; production code imports only
// package.json's dependencies (it runs from `npm ci --omit=dev`). Run by `npm run deps` and .ci/run.
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
      name: 'production-imports-only-dependencies',
      comment:
        'Production code runs from `npm ci --omit=dev` (docs/operations.md, "Installing"): what it imports must be in package.json\'s dependencies, not devDependencies (type-only imports vanish at run time and may use them).',
      severity: 'error',
      from: { path: `^(core|${ROOMS.join('|')})/` },
      to: { dependencyTypes: ['npm-dev'], dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'production-imports-only-declared-packages',
      comment: 'A package imported but not in package.json works only while something else happens to install it.',
      severity: 'error',
      from: { path: `^(core|${ROOMS.join('|')})/` },
      // (The dashboard's browser code imports /vendor/..., URLs the dashboard serves from the uplot dependency.)
      to: { dependencyTypes: ['npm-no-pkg', 'npm-unknown', 'unknown'], pathNot: '^/vendor/' },
    },
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
    enhancedResolveOptions: { extensions: ['.ts', '.mjs', '.js'], exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'] },
  },
};
