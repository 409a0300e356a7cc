import { createHash, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { getTransportSecurity } from '../rpc/grpc-factory.js';

export type HttpHandler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

/**
 * Starts an HTTP server for the REST API or a Prometheus endpoint: HTTPS with this process's
 * certificate when TLS is configured (browsers and scrapers present no client certificate, so
 * none is asked for). A port in use is a clear error naming the port and the setting.
 */
export function listenHttp(
  host: string,
  port: number,
  handler: HttpHandler,
  what: string,
): Promise<{ server: http.Server; port: number }> {
  const tls = getTransportSecurity().tls;
  const server =
    tls?.cert && tls.key
      ? https.createServer({ cert: tls.cert, key: tls.key, ca: tls.ca }, handler)
      : http.createServer(handler);
  server.keepAliveTimeout = 5_000;
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      const reason =
        err.code === 'EADDRINUSE'
          ? `port ${port} is already in use; choose another with ${what}`
          : err.code === 'EACCES'
            ? `permission denied for port ${port}; choose a port above 1023 with ${what}`
            : err.message;
      reject(new Error(`Cannot listen on ${host}:${port}: ${reason}`));
    });
    server.listen(port, host, () => resolve({ server, port: (server.address() as AddressInfo).port }));
  });
}

/** Stops accepting connections and drops idle ones. */
export function closeHttp(server: http.Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeIdleConnections();
    setTimeout(() => {
      server.closeAllConnections();
      resolve();
    }, 1_000).unref();
  });
}

/** `Authorization: Bearer <token>` compared in constant time, as the gRPC server does. */
export function bearerMatches(header: string | undefined, token: string): boolean {
  const presented = /^Bearer\s+(.+)$/i.exec(header ?? '')?.[1]?.trim();
  if (!presented) return false;
  const a = createHash('sha256').update(presented).digest();
  const b = createHash('sha256').update(token).digest();
  return timingSafeEqual(a, b);
}
