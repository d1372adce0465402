// The one error of the Parquet readers that means "this file is wrong": a file that cannot be read
// as Parquet, whose columns do not fit the model, or that declares more than its bytes or the
// configured bounds allow. Anything else a decoder throws means "not read this way" (the fast
// decoder then hands the row group to hyparquet); this one is never retried another way.
// An AppError `bad_request`: a 400 at submit, and on a worker a chunk that fails at once (not
// retried) with this message as the batch's reason.
import { AppError } from '../errors.ts';

/** The message names what is wrong (the field, the count, the limit). */
export class ParquetShapeError extends AppError {
  constructor(message: string) {
    super('bad_request', message);
    this.name = 'ParquetShapeError';
  }
}
