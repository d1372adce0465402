// OpenAI batches always end: a batch whose jobs are gone or failed without the processor saying so
// (a validation that stalled past BullMQ's limit, a flow removed by hand or by retention, a lines
// chunk that failed its parent) would stay `validating` or `in_progress` forever. The periodic
// cleanup ends such batches, as the native batches' reaper does, with the reason in `errors`.
import { OPENAI_FINAL, type OpenaiStatus, type OpenaiStore } from '../../core/openai-batch.ts';

/** A job's state on the batch queue ('unknown': no such job), and why it failed. */
export type JobStateOf = (jobId: string) => Promise<{ state: string; failedReason?: string }>;

export interface ReapDeps {
  openai: OpenaiStore;
  jobState?: JobStateOf;
  /** How old a batch must be before it is looked at, so one being set up is never reaped. Default 60 s. */
  reapAfterMs?: number;
}

const LIVE = new Set(['active', 'waiting', 'waiting-children', 'delayed', 'prioritized', 'wait']);

/** Why a batch in `status` can no longer end by itself, or null while its jobs can still end it. */
async function stuckReason(id: string, status: OpenaiStatus, jobState: JobStateOf): Promise<string | null> {
  const validate = await jobState(`${id}-validate`);
  if (status === 'validating') {
    if (LIVE.has(validate.state)) return null;
    return validate.state === 'failed'
      ? `openai-validate: ${validate.failedReason ?? 'the validation job failed'}`
      : `the validation job is ${validate.state === 'unknown' ? 'gone' : validate.state} but the batch was still validating`;
  }
  const finalize = await jobState(`${id}-finalize`);
  if (LIVE.has(finalize.state)) return null;
  // Between validation and the flow being added, the validation job is still running.
  if (finalize.state === 'unknown' && LIVE.has(validate.state)) return null;
  if (finalize.state === 'completed') return `openai-finalize completed but the batch was still ${status}`;
  return finalize.state === 'failed'
    ? `a chunk or the finalization failed: ${finalize.failedReason ?? 'no reason given'}`
    : "the batch's jobs were removed from the queue before it finished";
}

/** Ends every OpenAI batch that nothing will end any more; returns how many. */
export async function reapOpenaiBatches(d: ReapDeps): Promise<number> {
  if (!d.jobState) return 0;
  let reaped = 0;
  for (const id of await d.openai.createdBefore('batches', Date.now() - (d.reapAfterMs ?? 60_000), 10_000)) {
    const status = await d.openai.status(id);
    if (status === null || OPENAI_FINAL.includes(status)) continue;
    const why = await stuckReason(id, status, d.jobState);
    if (why === null) continue;
    if (status === 'cancelling') {
      await d.openai.transition(id, 'cancelled', ['cancelling']);
    } else {
      await d.openai.setFields(id, { errors: JSON.stringify([{ code: 'server_error', message: why, param: null, line: null }]) });
      await d.openai.transition(id, 'failed', ['validating', 'in_progress', 'finalizing']);
    }
    reaped++;
  }
  return reaped;
}
