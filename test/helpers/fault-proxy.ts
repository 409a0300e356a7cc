// An HTTP proxy with faults, in front of the S3 test server: it passes requests on, answers them
// 503 SlowDown (what S3 says when it sheds load), or holds each one for a while before passing it
// on. The mode changes at run time, so a test can start and end an outage while a job runs.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export type FaultMode = { kind: 'pass' } | { kind: 'unavailable' } | { kind: 'slow'; delayMs: number };

const SLOW_DOWN =
  '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code><Message>Please reduce your request rate (fault proxy).</Message></Error>';

export class FaultProxy {
  mode: FaultMode = { kind: 'pass' };
  /** requests answered 503 and requests held back, for the test's report */
  readonly counts = { passed: 0, refused: 0, delayed: 0 };
  private readonly server: http.Server;

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {
    this.server = http.createServer((req, res) => this.handle(req, res));
    this.server.keepAliveTimeout = 1_000;
  }

  async listen(host: string, port: number): Promise<number> {
    await new Promise<void>((r) => this.server.listen(port, host, r));
    return (this.server.address() as AddressInfo).port;
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const mode = this.mode;
    if (mode.kind === 'unavailable') {
      this.counts.refused++;
      req.resume();
      res.writeHead(503, { 'content-type': 'application/xml', 'retry-after': '1' });
      res.end(SLOW_DOWN);
      return;
    }
    const forward = (): void => {
      this.counts.passed++;
      const up = http.request(
        {
          host: this.targetHost,
          port: this.targetPort,
          method: req.method,
          path: req.url,
          headers: req.headers,
        },
        (r) => {
          res.writeHead(r.statusCode ?? 502, r.headers);
          r.pipe(res);
        },
      );
      up.on('error', (e) => {
        if (!res.headersSent) res.writeHead(502);
        res.end(String(e.message));
      });
      req.pipe(up);
    };
    if (mode.kind === 'slow') {
      this.counts.delayed++;
      req.pause();
      setTimeout(forward, mode.delayMs);
    } else forward();
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }
}
