// The README's shell examples, as test/integration/readme.test.ts runs them.
//
// Convention (also stated in README.md, above "Try it"): every ```sh (or ```bash / ```shell) block
// of README.md is preceded, on the line just before its opening fence, by one of
//   <!-- readme-test -->                 the block is run by the README test
//   <!-- readme-test: skip <reason> -->  it is not (S3, GPU, Docker, other machines, placeholders)
// A shell block with neither is an error, so no new example escapes the test unnoticed. The blocks
// that run do so in the README's order, in one bash session (variables set by one block are seen by
// the next), in an empty folder inside the clone, against a real platform whose address replaces
// `localhost:8080` (the README sets `export MODELQ_URL=http://localhost:8080` once, then uses it); `curl` fails on an HTTP error status there (--fail-with-body), so does the run.

export interface ShellExample {
  /** 1-based line of the opening fence in README.md. */
  line: number;
  run: boolean;
  /** Why a skipped block is not run. */
  reason?: string;
  code: string;
}

const FENCE = /^```(sh|bash|shell)\s*$/;
const MARK = /^<!--\s*readme-test(?::\s*skip\b\s*(.*?))?\s*-->\s*$/;

/** Every shell block with its marker; throws naming the line of a block without one. */
export function shellExamples(readme: string): ShellExample[] {
  const lines = readme.split('\n');
  const out: ShellExample[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (!FENCE.test(lines[i]!)) {
      if (lines[i]!.startsWith('```')) i = closingFence(lines, i); // skip other blocks whole
      continue;
    }
    const mark = MARK.exec(lines[i - 1] ?? '');
    if (!mark) {
      throw new Error(
        `README.md line ${i + 1}: a shell block needs "<!-- readme-test -->" (run by test/integration/readme.test.ts) or "<!-- readme-test: skip <reason> -->" on the line before it`,
      );
    }
    const skip = lines[i - 1]!.includes(':');
    if (skip && !mark[1]) throw new Error(`README.md line ${i}: "readme-test: skip" needs a reason`);
    const end = closingFence(lines, i);
    out.push({ line: i + 1, run: !skip, ...(skip ? { reason: mark[1] } : {}), code: lines.slice(i + 1, end).join('\n') });
    i = end;
  }
  return out;
}

function closingFence(lines: string[], open: number): number {
  for (let j = open + 1; j < lines.length; j++) if (lines[j]!.startsWith('```')) return j;
  throw new Error(`README.md line ${open + 1}: the code block is never closed`);
}

/**
 * One bash script running the examples in order against `hostPort` (e.g. 127.0.0.1:41234): strict
 * mode, curl failing on HTTP errors, and a line before each block naming it, so a failure says
 * which README example stopped working.
 */
export function examplesScript(examples: ShellExample[], hostPort: string): string {
  const parts = [
    'set -euo pipefail',
    // The README shows plain curl; here an HTTP error fails the run, and each answer ends its line.
    // (An answer captured by $(...) is also copied to stderr when it is an error, so the log shows it.)
    'curl() { local out rc=0; out=$(command curl --fail-with-body --silent --show-error "$@") || rc=$?; if [ $rc = 0 ]; then printf "%s\\n" "$out"; else printf "%s\\n" "$out" >&2; fi; return $rc; }',
    `trap 'echo "README example failed (block at README.md line $README_LINE): $BASH_COMMAND" >&2' ERR`,
  ];
  for (const e of examples.filter((x) => x.run)) {
    parts.push(`README_LINE=${e.line}`, `echo ">>> README.md line ${e.line}"`, e.code.replaceAll('localhost:8080', hostPort));
  }
  return parts.join('\n') + '\n';
}
