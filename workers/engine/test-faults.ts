// Faults on purpose, for the tests of the engine's budgets only (test/integration/engine-budgets):
// with MODELQ_TEST_FAULTS=1 in a worker's environment, a batch segment whose first bytes hold a
// marker hangs its engine thread or exhausts its heap, as a hostile file's parser once did. Without
// that variable (every real deployment) this does nothing.
const enabled = process.env.MODELQ_TEST_FAULTS === '1';

export function injectFault(bytes: Uint8Array): void {
  if (!enabled) return;
  const head = Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(bytes.byteLength, 4096)).toString('latin1');
  if (head.includes('__modelq_test_hang__')) hang();
  if (head.includes('__modelq_test_oom__')) exhaustHeap();
}

function hang(): void {
  let spins = 0;
  while (spins >= 0) spins = (spins + 1) % 1e9;
}

function exhaustHeap(): never {
  const hog: number[][] = [];
  for (;;) hog.push(new Array<number>(1 << 20).fill(hog.length + 0.5));
}
