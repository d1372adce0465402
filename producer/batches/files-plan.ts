// A batch by reference of files for a model with declared processing (a prefix of images or WAVs):
// each object is one row, its id its path under the objects' common folder. Nothing is read here;
// chunks are runs of consecutive objects (`file` the first, `rows` how many) of about chunkBytes,
// at most FILES_PER_CHUNK, which the workers read whole (workers/processing/score-files.ts).
import { badRequest } from '../../core/errors.ts';
import type { ReferencePlan } from './reference-plan.ts';

/** Objects in one chunk job at most. */
export const FILES_PER_CHUNK = 64;

/** The folder all URIs share (up to and with its last '/'). */
function commonFolder(uris: string[]): string {
  let prefix = uris[0]!;
  for (const u of uris) {
    let i = 0;
    while (i < prefix.length && i < u.length && prefix[i] === u[i]) i++;
    prefix = prefix.slice(0, i);
  }
  return prefix.slice(0, prefix.lastIndexOf('/') + 1);
}

export function planFiles(files: { uri: string; bytes: number }[], chunkBytes: number, maxChunks: number): ReferencePlan {
  if (!files.length) throw badRequest('the input has no files');
  const folder = commonFolder(files.map((f) => f.uri));
  const chunks: ReferencePlan['chunks'] = [];
  for (let i = 0; i < files.length;) {
    let bytes = 0;
    let j = i;
    while (j < files.length && j - i < FILES_PER_CHUNK && (j === i || bytes + files[j]!.bytes <= chunkBytes)) bytes += files[j++]!.bytes;
    chunks.push({ file: i, start: 0, end: 0, firstRow: i, rows: j - i });
    i = j;
  }
  if (chunks.length > maxChunks)
    throw badRequest(`the input makes ${chunks.length} chunks of files; the limit is MODELQ_BATCH_MAX_CHUNKS (${maxChunks}): send a larger chunkBytes`);
  return {
    format: 'jsonl',
    files: files.map((f) => ({ ...f, name: f.uri.slice(folder.length) })),
    chunks,
    rows: files.length,
    bytes: files.reduce((n, f) => n + f.bytes, 0),
  };
}
