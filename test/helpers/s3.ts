import { fork, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { ROOT, tempDir } from './cli.js';

/** s3rver as a child process; its settings as the WEIR_S3_* environment weir reads. */
export class TestS3Server {
  private child: ChildProcess | undefined;
  private readonly dir = tempDir('weir-s3-');
  port = 0;

  /** Starts the server; after stop(), start() again serves the same objects on the same port. */
  async start(): Promise<this> {
    const child = fork(
      path.join(ROOT, 'test/helpers/s3-server-main.mjs'),
      [this.dir, ...(this.port ? ['127.0.0.1', String(this.port)] : [])],
      // plain JavaScript: none of this process's flags (tsx)
      { execArgv: [], stdio: 'ignore' },
    );
    this.child = child;
    this.port = await new Promise<number>((resolve, reject) => {
      child.once('message', (m: { port: number }) => resolve(m.port));
      child.once('exit', (code) => reject(new Error(`s3rver exited with ${code}`)));
    });
    return this;
  }

  get env(): Record<string, string> {
    return {
      WEIR_S3_ENDPOINT: `http://127.0.0.1:${this.port}`,
      WEIR_S3_REGION: 'us-east-1',
      WEIR_S3_PATH_STYLE: 'true',
      AWS_ACCESS_KEY_ID: 'S3RVER',
      AWS_SECRET_ACCESS_KEY: 'S3RVER',
    };
  }

  /** An AWS SDK client of this server (the caller destroys it). */
  client(): S3Client {
    return new S3Client({
      endpoint: this.env.WEIR_S3_ENDPOINT,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    });
  }

  async keys(prefix: string): Promise<string[]> {
    const s3 = this.client();
    const out: string[] = [];
    let token: string | undefined;
    do {
      const r = await s3.send(
        new ListObjectsV2Command({ Bucket: 'weir', Prefix: prefix, ContinuationToken: token }),
      );
      for (const o of r.Contents ?? []) out.push(o.Key!);
      token = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (token);
    return out;
  }

  async stop(): Promise<void> {
    const c = this.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      c.once('exit', () => resolve());
      c.kill('SIGKILL');
    });
  }
}

/** One request as an HTTP proxy in front of S3 saw it. */
export interface RecordedRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  /** the SHA-256 (hex) of the request body as it arrived, once it has */
  bodySha256?: string;
  /** its length in bytes */
  bodyBytes?: number;
}

/** An S3 error answer a proxy gives instead of passing a request on. */
export interface S3ErrorAnswer {
  status: number;
  code: string;
  message: string;
}

/**
 * A plain HTTP proxy in front of an S3 endpoint that records every request's method, URL and
 * headers, so a test can see what weir sent (e.g. server-side encryption headers). `fail`
 * answers the requests it picks with an S3 error instead of passing them on.
 */
export class RecordingS3Proxy {
  readonly requests: RecordedRequest[] = [];
  private server: http.Server | undefined;
  port = 0;

  constructor(
    private readonly targetPort: number,
    private readonly fail?: (req: RecordedRequest) => S3ErrorAnswer | undefined,
  ) {}

  async start(): Promise<this> {
    const server = http.createServer((req, res) => {
      const recorded: RecordedRequest = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
      };
      this.requests.push(recorded);
      const hash = createHash('sha256');
      let bytes = 0;
      req.on('data', (c: Buffer) => {
        hash.update(c);
        bytes += c.length;
      });
      req.on('end', () => {
        recorded.bodySha256 = hash.digest('hex');
        recorded.bodyBytes = bytes;
      });
      const answer = this.fail?.(recorded);
      if (answer) {
        req.on('end', () => {
          res.writeHead(answer.status, { 'content-type': 'application/xml' });
          res.end(
            `<?xml version="1.0"?><Error><Code>${answer.code}</Code><Message>${answer.message}</Message></Error>`,
          );
        });
        return;
      }
      const up = http.request(
        { host: '127.0.0.1', port: this.targetPort, method: req.method, path: req.url, headers: req.headers },
        (r) => {
          res.writeHead(r.statusCode ?? 502, r.headers);
          // headers at once: s3rver announces one byte for a range of an empty object and never sends it
          res.flushHeaders();
          r.pipe(res);
        },
      );
      up.on('error', () => res.destroy());
      req.pipe(up);
    });
    this.server = server;
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    this.port = (server.address() as AddressInfo).port;
    return this;
  }

  /** Object writes: PutObject and CreateMultipartUpload (UploadPart carries no encryption header). */
  writes(): RecordedRequest[] {
    return this.requests.filter(
      (r) =>
        (r.method === 'PUT' && !/[?&]partNumber=/.test(r.url) && !r.url.endsWith('/weir')) ||
        (r.method === 'POST' && /[?&]uploads(=|&|$)/.test(r.url)),
    );
  }

  stop(): Promise<void> {
    return new Promise((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}
