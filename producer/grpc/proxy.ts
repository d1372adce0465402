// The lean gRPC server's hand-over: a call it does not answer itself goes to grpc-js on a loopback
// port as it came (headers, DATA frames, half-close), and grpc-js's headers, messages and trailers
// come back the same way, with flow control on both legs. The client's address travels in
// PEER_HEADER with the process's secret, since grpc-js sees only the loopback connection.
import http2 from 'node:http2';
import { PEER_HEADER } from './call-gate.ts';

const { NGHTTP2_CANCEL, NGHTTP2_INTERNAL_ERROR } = http2.constants;

export interface Proxy {
  (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, peer: string): void;
  close(): void;
}

/** Request headers grpc-js may see: the path and method, and every non-pseudo header but the peer's. */
function forwarded(headers: http2.IncomingHttpHeaders, peer: string, secret: string): http2.OutgoingHttpHeaders {
  const out: http2.OutgoingHttpHeaders = { ':method': 'POST', ':path': headers[':path'] };
  for (const k in headers) if (k[0] !== ':' && k !== PEER_HEADER) out[k] = headers[k];
  out[PEER_HEADER] = `${secret} ${peer}`;
  return out;
}

/** Response headers or trailers as the client gets them (pseudo headers but :status are the session's). */
function answered(h: http2.IncomingHttpHeaders): http2.OutgoingHttpHeaders {
  const out: http2.OutgoingHttpHeaders = {};
  for (const k in h) if (k[0] !== ':' || k === ':status') out[k] = h[k];
  return out;
}

export function proxyTo(upstream: string, secret: string): Proxy {
  let session: http2.ClientHttp2Session | undefined;
  const connect = () => {
    if (session && !session.closed && !session.destroyed) return session;
    const s = http2.connect(upstream);
    s.on('error', () => {}); // its streams fail with it; the next call connects again
    s.on('close', () => {
      if (session === s) session = undefined;
    });
    return (session = s);
  };

  const proxy = ((stream, headers, peer) => {
    let up: http2.ClientHttp2Stream;
    try {
      up = connect().request(forwarded(headers, peer, secret));
    } catch {
      return void stream.respond(
        { ':status': 200, 'content-type': 'application/grpc+proto', 'grpc-status': '14', 'grpc-message': 'unavailable' },
        { endStream: true },
      );
    }
    let trailers: http2.OutgoingHttpHeaders | undefined;
    let trailersOnly = false;
    up.on('response', (h) => {
      if (stream.destroyed || stream.closed) return;
      trailersOnly = h['grpc-status'] !== undefined;
      stream.respond(answered(h), trailersOnly ? { endStream: true } : { waitForTrailers: true });
    });
    up.on('trailers', (t) => (trailers = answered(t)));
    stream.on('wantTrailers', () => stream.sendTrailers(trailers ?? { 'grpc-status': '13', 'grpc-message': 'the call ended without a status' }));
    up.on('data', (c: Buffer) => {
      if (!stream.write(c)) up.pause();
    });
    stream.on('drain', () => up.resume());
    up.on('end', () => {
      if (!trailersOnly && !stream.destroyed && !stream.closed) stream.end();
    });
    up.on('error', () => {});
    up.on('close', () => {
      // Reset by grpc-js or its session lost before the call ended: the client's stream goes the same way.
      if (!stream.closed && !stream.destroyed && (up.rstCode ?? 0) !== 0) stream.close(up.rstCode || NGHTTP2_INTERNAL_ERROR);
    });
    stream.pipe(up);
    stream.on('close', () => {
      if (!up.closed && !up.destroyed) up.close(NGHTTP2_CANCEL); // the client went away: grpc-js's call is cancelled
    });
  }) as Proxy;
  proxy.close = () => session?.close();
  return proxy;
}
