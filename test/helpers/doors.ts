// One inference request through each door of the producer (REST fast path, REST through express,
// KServe :predict, gRPC ModelInfer, gRPC ModelStreamInfer), each outcome in one shape, so a test can
// say what every door answers.
import type { ServiceError } from '@grpc/grpc-js';
import { status } from '@grpc/grpc-js';
import type { InferenceClient } from './grpc-client.ts';

export const DOORS = ['rest-fast', 'rest-express', 'predict', 'grpc', 'grpc-stream'] as const;
export type Door = (typeof DOORS)[number];

export interface Outcome {
  door: Door;
  /** 'ok', an HTTP status, or a gRPC status code's name. */
  status: 'ok' | number | string;
  /** REST: Retry-After present; gRPC: the `retryable` trailer or stream parameter. */
  retryable: boolean;
  /** The error's text, '' when answered. */
  message: string;
  /** The first output's values when answered. */
  values?: number[];
}

/** One FP32 row of `features` values for input "input" of model `name`. */
export interface DoorRequest {
  url: string;
  grpc: InferenceClient;
  model: string;
  row: number[];
  /** gRPC request id (the stream answers with it). */
  id?: string;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any; // answers as the tests read them

const protocolBody = (r: DoorRequest) => ({ inputs: [{ name: 'input', shape: [1, r.row.length], datatype: 'FP32', data: r.row }] });
const grpcRequest = (r: DoorRequest) => ({
  model_name: r.model,
  id: r.id ?? '',
  inputs: [{ name: 'input', datatype: 'FP32', shape: [1, r.row.length] }],
  raw_input_contents: [Buffer.from(new Float32Array(r.row).buffer)],
});
const f32 = (b: Buffer) => Array.from(new Float32Array(new Uint8Array(b).buffer));

async function rest(door: Door, res: Response, values: (body: Json) => number[]): Promise<Outcome> {
  const body = await res.json();
  if (res.status === 200) return { door, status: 'ok', retryable: false, message: '', values: values(body) };
  const message = typeof body.error === 'string' ? body.error : String(body.error?.message);
  return { door, status: res.status, retryable: res.headers.get('retry-after') !== null, message };
}

export async function throughDoor(door: Door, r: DoorRequest): Promise<Outcome> {
  const json = { 'content-type': 'application/json' };
  switch (door) {
    case 'rest-fast':
      return rest(
        door,
        await fetch(`${r.url}/v2/models/${r.model}/infer`, { method: 'POST', body: JSON.stringify(protocolBody(r)), headers: json }),
        (b) => b.outputs[0].data,
      );
    case 'rest-express':
      // A query string is not the fast path's: express's route takes it.
      return rest(
        door,
        await fetch(`${r.url}/v2/models/${r.model}/infer?via=express`, { method: 'POST', body: JSON.stringify(protocolBody(r)), headers: json }),
        (b) => b.outputs[0].data,
      );
    case 'predict':
      return rest(
        door,
        await fetch(`${r.url}/v1/models/${r.model}:predict`, { method: 'POST', body: JSON.stringify({ instances: [r.row] }), headers: json }),
        (b) => Object.values(b.predictions[0])[0] as number[],
      );
    case 'grpc':
      try {
        const a = await r.grpc.call('ModelInfer', grpcRequest(r));
        return { door, status: 'ok', retryable: false, message: '', values: f32(a.raw_output_contents[0]) };
      } catch (e) {
        const err = e as ServiceError;
        return { door, status: status[err.code] ?? String(err.code), retryable: err.metadata?.get('retryable')[0] === 'true', message: err.details };
      }
    case 'grpc-stream': {
      const call = r.grpc.stream('ModelStreamInfer');
      const answer = new Promise<Json>((resolve, reject) => {
        call.once('data', resolve);
        call.once('error', reject);
      });
      call.write(grpcRequest(r));
      call.end();
      const a = await answer;
      if (!a.error_message) return { door, status: 'ok', retryable: false, message: '', values: f32(a.infer_response.raw_output_contents[0]) };
      const p = a.infer_response.parameters ?? {};
      return { door, status: p.error_code?.string_param ?? 'UNKNOWN', retryable: p.retryable?.bool_param === true, message: a.error_message };
    }
  }
}
