// ModelStreamInfer, as Triton serves it: a bidirectional stream of ModelInferRequest answered by
// ModelStreamInferResponse { error_message, infer_response }, one answer per request in the order the
// requests came. Each request goes through the inference service as a ModelInfer call does (admitted
// against every limit, coalesced with REST's and other calls' requests for the same model); a refused
// or failed request is answered with its error_message, its status code and whether a retry may
// succeed in infer_response.parameters (error_code, retryable, retry_after), and the stream goes on.
// Backpressure: at most MODELQ_GRPC_STREAM_WINDOW requests of one stream are outstanding (read, not
// yet answered); past it the server stops reading (HTTP/2 flow control then holds the client), and
// answers are written no faster than the client reads them.
import * as grpc from '@grpc/grpc-js';
import { AppError } from '../../core/errors.ts';
import type { ProducerDeps } from '../deps.ts';
import type { InferenceService } from '../inference/service.ts';
import type { Metrics } from '../metrics.ts';
import type { CallGate } from './call-gate.ts';
import { grpcInfer, type InferParameter, type ModelInferRequest, type ModelInferResponse } from './infer.ts';
import { toGrpcStatus } from './status.ts';

export interface ModelStreamInferResponse {
  error_message: string;
  infer_response: Partial<ModelInferResponse> & { parameters?: Record<string, InferParameter> };
}

const codeName = (code: grpc.status | undefined) => grpc.status[code ?? grpc.status.INTERNAL] ?? 'INTERNAL';

/** A request's failure as its stream answer: Triton's error_message, and what REST's error body and headers say. */
function failure(req: ModelInferRequest, st: Partial<grpc.ServiceError>): ModelStreamInferResponse {
  const retryable = st.metadata?.get('retryable')[0] === 'true';
  const after = st.metadata?.get('retry-after')[0];
  return {
    error_message: st.details ?? 'internal error',
    infer_response: {
      model_name: req.model_name ?? '',
      model_version: req.model_version ?? '',
      id: req.id ?? '',
      parameters: {
        error_code: { string_param: codeName(st.code) },
        retryable: { bool_param: retryable },
        ...(after !== undefined ? { retry_after: { int64_param: Number(after) } } : {}),
      },
    },
  };
}

export function streamInfer(
  d: ProducerDeps,
  service: InferenceService,
  metrics: Metrics,
  gate: CallGate,
): grpc.handleBidiStreamingCall<ModelInferRequest, ModelStreamInferResponse> {
  const window = d.cfg.MODELQ_GRPC_STREAM_WINDOW;
  return (call) => {
    let caller;
    try {
      if (d.redis.status !== 'ready') throw new AppError('unavailable', 'Redis is unavailable; try again shortly', true);
      caller = gate.enter('ModelStreamInfer', 'infer', call);
    } catch (e) {
      const st = toGrpcStatus(e as Error, d);
      metrics.startGrpc('ModelStreamInfer')(codeName(st.code));
      call.emit('error', st);
      return;
    }
    // One slot per request read, in order; a slot leaves once it and every slot before it is answered.
    const slots: { answer?: ModelStreamInferResponse }[] = [];
    let paused = false;
    let blocked = false; // the client reads slower than answers come: wait for 'drain'
    let ended = false;
    const flush = () => {
      if (call.cancelled) return; // the client went away: its requests not yet sent are dropped (Caller.gone)
      while (!blocked && slots[0]?.answer) {
        if (!call.write(slots.shift()!.answer!)) {
          blocked = true;
          call.once('drain', () => {
            blocked = false;
            flush();
          });
        }
      }
      if (paused && slots.length < window) {
        paused = false;
        call.resume();
      }
      if (ended && slots.length === 0 && !call.cancelled) call.end();
    };
    call.on('data', (req: ModelInferRequest) => {
      const slot: (typeof slots)[number] = {};
      slots.push(slot);
      if (slots.length >= window && !paused) {
        paused = true;
        call.pause();
      }
      const done = metrics.startGrpc('ModelStreamInfer');
      grpcInfer(service, req, caller)
        .then(
          (r) => {
            done('OK');
            slot.answer = { error_message: '', infer_response: r };
          },
          (e: Error) => {
            const st = toGrpcStatus(e, d);
            done(codeName(st.code));
            slot.answer = failure(req, st);
          },
        )
        .finally(flush);
    });
    call.on('end', () => {
      ended = true;
      flush();
    });
  };
}
