// The gRPC call gate's client address: the peer the connection gives, or the one the lean server
// forwards (PEER_HEADER), trusted only with this process's secret.
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { KeyRing } from '../../../core/auth.ts';
import { callGate, PEER_HEADER } from '../../../producer/grpc/call-gate.ts';

const keys = KeyRing.fromConfig({ MODELQ_API_KEYS: undefined, MODELQ_API_KEYS_FILE: undefined });
const logger = { warn: () => {}, info: () => {}, error: () => {} } as never;

function call(peerHeader?: string) {
  const metadata = new grpc.Metadata();
  if (peerHeader !== undefined) metadata.set(PEER_HEADER, peerHeader);
  return { metadata, getPeer: () => 'ipv4:127.0.0.1:5000', cancelled: false };
}

describe('gRPC call gate: client address', () => {
  it('counts the connection peer when nothing is forwarded', () => {
    expect(callGate({ logger }, keys, undefined, 's3cret').enter('ServerMetadata', 'read', call()).client).toBe(
      callGate({ logger }, keys).enter('ServerMetadata', 'read', call()).client,
    );
  });

  it("takes the forwarded peer with the process's secret, and ignores it without", () => {
    const gate = callGate({ logger }, keys, undefined, 's3cret');
    const local = gate.enter('ServerMetadata', 'read', call()).client;
    const forwarded = gate.enter('ServerMetadata', 'read', call('s3cret 10.1.2.3:40000')).client;
    expect(forwarded).not.toBe(local);
    expect(forwarded).toContain('10.1.2.3');
    expect(gate.enter('ServerMetadata', 'read', call('guess 10.1.2.3:40000')).client).toBe(local);
    expect(gate.enter('ServerMetadata', 'read', call('10.1.2.3:40000')).client).toBe(local);
    // A gate without a secret (grpc-js serving alone) trusts no forwarded peer.
    expect(callGate({ logger }, keys).enter('ServerMetadata', 'read', call('s3cret 10.1.2.3:40000')).client).toBe(local);
  });
});
