// Who calls the gRPC server: the key in `authorization: Bearer` metadata, checked against the scope
// a method needs as authMiddleware checks HTTP requests; a refused key is written to the audit log
// with the fields REST's lines carry.
import type * as grpc from '@grpc/grpc-js';
import { allows, type KeyRing, OPEN_PRINCIPAL, presentedKey, type Principal, type Scope } from '../../core/auth.ts';
import { AppError } from '../../core/errors.ts';
import { type AuditFields, auditLine, clientKey } from '../auth.ts';
import { MAX_ROUTE_KEY, ROUTE_KEY_HEADER } from '../../core/routing.ts';
import type { ProducerDeps } from '../deps.ts';
import type { Caller } from '../inference/service.ts';

/** The client's address from grpc-js's peer string (`ipv4:1.2.3.4:5`, `[::1]:5`, `1.2.3.4:5`). */
export function peerAddress(peer: string): string {
  const hostPort = peer.replace(/^ipv[46]:/, '');
  const v6 = /^\[([^\]]+)\]/.exec(hostPort);
  return v6 ? v6[1]! : hostPort.replace(/:\d+$/, '');
}

/** What the gate reads of a call: a grpc-js call, or the lean server's (producer/grpc/lean.ts). */
export interface GateCall {
  metadata: { get(key: string): grpc.MetadataValue[] };
  getPeer(): string;
  readonly cancelled: boolean;
}

export interface CallGate {
  /** The call's caller; throws unauthorized or forbidden (audited) when its key may not call `method`. scope null: no key needed. */
  enter(method: string, scope: Scope | null, call: GateCall): Caller;
}

/**
 * Metadata the lean server puts on a call it hands to grpc-js over loopback: `<secret> <peer>`, the
 * client's own address, trusted only with this process's secret (a client's own value is replaced).
 */
export const PEER_HEADER = 'x-modelq-peer';

/** `sink` also receives each refusal's audit fields (the audit stream); `peerSecret` marks the lean server's forwarded peers. */
export function callGate(d: Pick<ProducerDeps, 'logger'>, keys: KeyRing, sink?: (f: AuditFields) => void, peerSecret?: string): CallGate {
  const peerOf = (call: GateCall): string => {
    const fwd = peerSecret ? call.metadata.get(PEER_HEADER)[0]?.toString() : undefined;
    return fwd?.startsWith(`${peerSecret} `) ? fwd.slice(peerSecret!.length + 1) : call.getPeer();
  };
  const refuse = (method: string, p: Principal | null, e: AppError): never => {
    const f: AuditFields = {
      tenant: p?.tenant ?? null,
      keyId: p?.keyId ?? null,
      method: 'grpc',
      route: `/inference.GRPCInferenceService/${method}`,
      status: e.code === 'unauthorized' ? 'UNAUTHENTICATED' : 'PERMISSION_DENIED',
    };
    auditLine(d.logger, f);
    sink?.(f);
    throw e;
  };
  return {
    enter(method, scope, call) {
      let who: Principal = OPEN_PRINCIPAL;
      if (scope !== null && keys.size > 0) {
        const key = presentedKey(call.metadata.get('authorization')[0]?.toString());
        if (!key) refuse(method, null, new AppError('unauthorized', 'an API key is required: authorization: Bearer <key> metadata'));
        const p = keys.authenticate(key!);
        if (!p) return refuse(method, null, new AppError('unauthorized', 'unknown API key'));
        if (!allows(p, scope)) refuse(method, p, new AppError('forbidden', `this key lacks the "${scope}" scope`));
        who = p;
      }
      const caller: Caller = { who, client: clientKey(who, peerAddress(peerOf(call))), gone: () => call.cancelled };
      const key = call.metadata.get(ROUTE_KEY_HEADER)[0]?.toString();
      if (key) caller.routeKey = key.slice(0, MAX_ROUTE_KEY);
      return caller;
    },
  };
}
