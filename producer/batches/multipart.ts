// multipart/form-data batch uploads: form fields first, then one `file` field, streamed as it
// arrives. Nothing is created until the whole form is read: a field after the file, a second
// file, a malformed body or a client that goes away refuses the batch and leaves nothing behind.
import type { Request } from 'express';
import busboy from 'busboy';
import type { Readable } from 'node:stream';
import type { BatchView } from '../../core/batches.ts';
import { badRequest } from '../../core/errors.ts';
import type { ProducerDeps } from '../deps.ts';
import { parseBody } from '../http.ts';
import { acceptBatch, batchParamsSchema, type BatchParams } from './accept.ts';
import { declaredByContentType, declaredByFileName, type Declared } from './sniff.ts';

/** The format a file part's type, else its name, declares, when the form does not say. */
export function declaredByFile(filename: string | undefined, mimeType: string | undefined): Declared | null {
  return declaredByContentType(mimeType) ?? declaredByFileName(filename);
}

export function acceptMultipart(d: ProducerDeps, req: Request, tenant: string): Promise<BatchView> {
  return new Promise((resolve, reject) => {
    let bb: busboy.Busboy;
    try {
      bb = busboy({ headers: req.headers, limits: { files: 1, fields: 20, fieldSize: 8192 } });
    } catch (e) {
      return reject(badRequest(`bad multipart body: ${(e as Error).message}`));
    }
    const fields: Record<string, string> = { ...(req.query as Record<string, string>) };
    let file: Readable | undefined;
    let problem: Error | undefined;
    let formDone!: () => void;
    let formFailed!: (e: Error) => void;
    const formRead = new Promise<void>((res, rej) => {
      formDone = res;
      formFailed = rej;
    });
    formRead.catch(() => {});
    /** Refuses the upload: the file stream (if any) fails, so the store drops what it wrote. */
    const refuse = (e: Error) => {
      if (problem) return;
      problem = e;
      formFailed(e);
      if (file) file.destroy(e);
      else reject(e);
    };
    bb.on('field', (name, value) => {
      if (file) refuse(badRequest(`form field "${name}" must come before the file field`));
      else fields[name] = value;
    });
    bb.on('file', (name, stream, info) => {
      // A truncated body errors every file stream busboy opened, also those refused below: without a
      // listener that error would be uncaught. The store's read of the accepted one sees it anyway.
      stream.on('error', () => {});
      if (name !== 'file' || file || problem) {
        stream.resume();
        return refuse(badRequest(`unexpected file field "${name}"; send the file as "file"`));
      }
      file = stream;
      let params: BatchParams;
      try {
        params = parseBody(batchParamsSchema, fields, 'form');
      } catch (e) {
        stream.resume();
        problem = e as Error;
        return reject(e);
      }
      acceptBatch(d, params, stream, declaredByFile(info.filename, info.mimeType), tenant, { commitGate: () => formRead }).then(resolve, (e: unknown) =>
        reject(problem ?? e),
      );
    });
    bb.on('error', (e) => refuse(badRequest(`bad multipart body: ${(e as Error).message}`)));
    bb.on('close', () => {
      if (!file) refuse(badRequest('the multipart body has no "file" field'));
      else if (!problem) formDone();
    });
    // A client that goes away mid-upload: the body never ends, so end the file here.
    req.on('close', () => {
      if (!req.complete) refuse(badRequest('the upload was aborted'));
    });
    req.pipe(bb);
  });
}
