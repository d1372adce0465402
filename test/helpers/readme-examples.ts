// The shell examples of README.md and docs/*.md, as test/integration/readme.test.ts runs them.
//
// Convention (also stated in README.md, above "Try it"): every ```sh (or ```bash / ```shell) block
// of README.md and of each docs/*.md page is preceded, on the line just before its opening fence, by one of
//   <!-- readme-test -->                 the block is run by the README test
//   <!-- readme-test: skip <reason> -->  it is not (S3, GPU, Docker, other machines, placeholders)
// A shell block with neither is an error, so no new example escapes the test unnoticed. The blocks
// that run do so in order (the README's, then each page's in the order of the README's
// Documentation list: docPages), in one bash session (variables set by one block are seen by
// the next), in an empty folder inside the clone, against a real platform whose address replaces
// `localhost:8080` (the README sets `export MODELQ_URL=http://localhost:8080` once, then uses it); `curl` fails on an HTTP error status there (--fail-with-body), so does the run.

export interface ShellExample {
  /** The page, relative to the clone (README.md, docs/batches.md). */
  file: string;
  /** 1-based line of the opening fence in that page. */
  line: number;
  run: boolean;
  /** Why a skipped block is not run. */
  reason?: string;
  code: string;
}

const FENCE = /^```(sh|bash|shell)\s*$/;
const MARK = /^<!--\s*readme-test(?::\s*skip\b\s*(.*?))?\s*-->\s*$/;

/** Every shell block of a page with its marker; throws naming the page and line of a block without one. */
export function shellExamples(page: string, file = 'README.md'): ShellExample[] {
  const lines = page.split('\n');
  const out: ShellExample[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (!FENCE.test(lines[i]!)) {
      if (lines[i]!.startsWith('```')) i = closingFence(lines, i, file); // skip other blocks whole
      continue;
    }
    const mark = MARK.exec(lines[i - 1] ?? '');
    if (!mark) {
      throw new Error(
        `${file} line ${i + 1}: a shell block needs "<!-- readme-test -->" (run by test/integration/readme.test.ts) or "<!-- readme-test: skip <reason> -->" on the line before it`,
      );
    }
    const skip = lines[i - 1]!.includes(':');
    if (skip && !mark[1]) throw new Error(`${file} line ${i}: "readme-test: skip" needs a reason`);
    const end = closingFence(lines, i, file);
    out.push({ file, line: i + 1, run: !skip, ...(skip ? { reason: mark[1] } : {}), code: lines.slice(i + 1, end).join('\n') });
    i = end;
  }
  return out;
}

function closingFence(lines: string[], open: number, file: string): number {
  for (let j = open + 1; j < lines.length; j++) if (lines[j]!.startsWith('```')) return j;
  throw new Error(`${file} line ${open + 1}: the code block is never closed`);
}

/**
 * The docs/ pages whose examples run after the README's, in the order of the README's
 * Documentation list (lines `- [Title](docs/page.md): ...`); a page under docs/ that the list does
 * not name is an error, so no page's examples escape the test.
 */
export function docPages(readme: string, present: string[]): string[] {
  // A list item that starts with a link to a page: `- [Title](docs/page.md): what it holds`.
  const linked = [...new Set([...readme.matchAll(/^- \[[^\]]*\]\((docs\/[\w.-]+\.md)\)/gm)].map((m) => m[1]!))];
  const unlinked = present.filter((p) => !linked.includes(p));
  if (unlinked.length) throw new Error(`README.md links no ${unlinked.join(', ')}: add a line "- [Title](docs/page.md): ..." to its Documentation list`);
  const missing = linked.filter((p) => !present.includes(p));
  if (missing.length) throw new Error(`README.md links ${missing.join(', ')}, which does not exist`);
  return linked;
}

/**
 * One bash script running the examples in order against `hostPort` (e.g. 127.0.0.1:41234): strict
 * mode, curl failing on HTTP errors, and a line before each block naming it, so a failure says
 * which example (page and line) stopped working.
 */
export function examplesScript(examples: ShellExample[], hostPort: string): string {
  const parts = [
    'set -euo pipefail',
    // The README shows plain curl; here an HTTP error fails the run, and each answer ends its line.
    // (An answer captured by $(...) is also copied to stderr when it is an error, so the log shows it.)
    'curl() { local out rc=0; out=$(command curl --fail-with-body --silent --show-error "$@") || rc=$?; if [ $rc = 0 ]; then printf "%s\\n" "$out"; else printf "%s\\n" "$out" >&2; fi; return $rc; }',
    `trap 'echo "example failed (block at $EXAMPLE_AT): $BASH_COMMAND" >&2' ERR`,
  ];
  for (const e of examples.filter((x) => x.run)) {
    parts.push(`EXAMPLE_AT='${e.file} line ${e.line}'`, `echo ">>> ${e.file} line ${e.line}"`, e.code.replaceAll('localhost:8080', hostPort));
  }
  return parts.join('\n') + '\n';
}
