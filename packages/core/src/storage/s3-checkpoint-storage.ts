import type * as S3SdkModule from '@aws-sdk/client-s3';
import type { S3Client, S3ClientConfig } from '@aws-sdk/client-s3';
import { Readable } from 'node:stream';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { BackgroundSha256 } from './background-sha256.js';
import {
  checkedRelativePath,
  sha256,
  type CheckpointStorage,
  type StateHandle,
} from './checkpoint-storage.js';
import { parseStorageLocation, storageUri, type S3Location, type StorageLocation } from './location.js';
import { currentS3StorageSettings, s3ClientConfig, s3Encryption, type S3Encryption } from './s3-settings.js';
import { StorageError } from './storage-error.js';

type S3Sdk = typeof S3SdkModule;

let sdk: Promise<S3Sdk> | undefined;

const DEFAULT_READ_PART_SIZE = 8 * 1024 * 1024;
const DEFAULT_READ_CONCURRENCY = 4;

/**
 * The AWS SDK is loaded on first use of an s3:// location (it is large, and a deployment that
 * keeps its checkpoints in files never needs it).
 */
function loadSdk(where: string): Promise<S3Sdk> {
  sdk ??= import('@aws-sdk/client-s3').catch((err: Error) => {
    sdk = undefined;
    throw new StorageError(
      'UNAVAILABLE',
      `S3 storage ${where} needs the AWS SDK package @aws-sdk/client-s3 (a dependency of @weir/core), which cannot be loaded: ${err.message}. Reinstall weir's dependencies (npm ci) or use file:// storage`,
      { cause: err },
    );
  });
  return sdk;
}

function describe(err: unknown): string {
  const e = err as { name?: string; message?: string; Code?: string };
  return `${e.Code ?? e.name ?? 'Error'}: ${e.message ?? String(err)}`;
}

/** A missing key or bucket, as opposed to S3 that cannot be reached or refuses. */
function isNotFound(err: unknown): boolean {
  const e = err as { name?: string; Code?: string };
  const code = e.Code ?? e.name;
  return code === 'NoSuchKey' || code === 'NoSuchBucket' || code === 'NotFound';
}

/**
 * Multipart part size of uploads (S3's smallest is 5 MiB). A file that ends within the first
 * part goes up as one PutObject (one request), which is most checkpoint files; larger ones go in
 * parts this big, UPLOAD_QUEUE in flight (at most about 80 MiB held).
 */
const DEFAULT_WRITE_PART_SIZE = 16 * 1024 * 1024;
/** S3 refuses smaller parts than this (except the last) */
const MIN_WRITE_PART_SIZE = 5 * 1024 * 1024;
/** bytes of a streamed upload after which the task thread is handed back (see writeStream) */
const YIELD_EVERY = 1 << 20;
/** parts of one streamed upload in flight at once */
const UPLOAD_QUEUE = 4;

/** Whether an S3 endpoint setting is plain HTTP (no endpoint: AWS over HTTPS). */
function plainHttp(endpoint: S3ClientConfig['endpoint']): boolean {
  return typeof endpoint === 'string' && endpoint.toLowerCase().startsWith('http:');
}

/**
 * The most bytes handed to the socket in one write, and the longest run of writes before the
 * event loop is handed back. A large write on a fast link (loopback, a LAN) goes into the
 * kernel in one system call that holds the task thread for tens of milliseconds per several
 * MiB (a 1M-key heap snapshot is one 13 MB chunk); in pieces, with the loop handed back every
 * few milliseconds, records flow during the upload and the upload still goes at full speed
 * when nothing else waits.
 */
const SOCKET_WRITE = 256 * 1024;
const WRITE_SLICE_MS = 4;

/** A body's chunks as views of at most SOCKET_WRITE bytes, the event loop handed back every WRITE_SLICE_MS. */
async function* socketWrites(chunks: readonly Uint8Array[]): AsyncGenerator<Uint8Array> {
  let since = performance.now();
  for (const c of chunks)
    for (let at = 0; at < c.byteLength; at += SOCKET_WRITE) {
      if (performance.now() - since >= WRITE_SLICE_MS) {
        await yieldToLoop();
        since = performance.now();
      }
      yield c.subarray(at, Math.min(c.byteLength, at + SOCKET_WRITE));
    }
}

/**
 * A request body sent as the chunks it is made of, without gathering them into one buffer; the
 * weirChunkedBody middleware makes a fresh stream of them for every attempt (a retry sends them
 * again). `sha256`: the body's hash for the signature, computed ahead (plain HTTP).
 */
class ChunkedBody {
  constructor(
    readonly chunks: Uint8Array[],
    readonly sha256: string | undefined,
  ) {}
}

function uploadFailed(where: string, err: unknown): StorageError {
  if (err instanceof StorageError) return err;
  return new StorageError('UNAVAILABLE', `S3 upload to ${where} failed: ${describe(err)}`, { cause: err });
}

type Connection = { client: S3Client; s3: S3Sdk };

/** One multipart upload: parts sent as they are added, UPLOAD_QUEUE at a time. */
class MultipartUpload {
  private readonly id: Promise<string>;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly done: Array<{ PartNumber: number; ETag: string }> = [];
  private failure: StorageError | undefined;
  private parts = 0;

  constructor(
    private readonly conn: Connection,
    private readonly bucket: string,
    private readonly key: string,
    encryption: S3Encryption,
  ) {
    const { client, s3 } = conn;
    this.id = client
      .send(new s3.CreateMultipartUploadCommand({ Bucket: bucket, Key: key, ...encryption }))
      .then((r) => {
        if (!r.UploadId) throw new Error('CreateMultipartUpload answered without an UploadId');
        return r.UploadId;
      });
    this.id.catch(() => {});
  }

  private get where(): string {
    return `s3://${this.bucket}/${this.key}`;
  }

  /** Sends a part; waits while UPLOAD_QUEUE parts are in flight. `sha256`: its hash for the signature. */
  async add(chunks: Uint8Array[], bytes: number, sha256: Promise<string> | undefined): Promise<void> {
    if (this.failure) throw this.failure;
    const n = ++this.parts;
    const { client, s3 } = this.conn;
    const sent = (async () => {
      const [id, hex] = await Promise.all([this.id, sha256]);
      const res = await client.send(
        new s3.UploadPartCommand({
          Bucket: this.bucket,
          Key: this.key,
          UploadId: id,
          PartNumber: n,
          Body: new ChunkedBody(chunks, hex) as unknown as Readable,
          ContentLength: bytes,
        }),
      );
      if (!res.ETag) throw new Error(`UploadPart ${n} answered without an ETag`);
      this.done.push({ PartNumber: n, ETag: res.ETag });
    })();
    const tracked: Promise<void> = sent.then(
      () => void this.inFlight.delete(tracked),
      (err: unknown) => {
        this.failure ??= uploadFailed(this.where, err);
        this.inFlight.delete(tracked);
      },
    );
    this.inFlight.add(tracked);
    while (this.inFlight.size >= UPLOAD_QUEUE && !this.failure) await Promise.race(this.inFlight);
    if (this.failure) throw this.failure;
  }

  async complete(): Promise<void> {
    await Promise.all(this.inFlight);
    if (this.failure) throw this.failure;
    const { client, s3 } = this.conn;
    try {
      await client.send(
        new s3.CompleteMultipartUploadCommand({
          Bucket: this.bucket,
          Key: this.key,
          UploadId: await this.id,
          MultipartUpload: { Parts: [...this.done].sort((a, b) => a.PartNumber - b.PartNumber) },
        }),
      );
    } catch (err) {
      throw uploadFailed(this.where, err);
    }
  }

  /** Drops the parts sent so far (best effort: S3 lifecycle rules clean up what this cannot). */
  async abort(): Promise<void> {
    await Promise.all(this.inFlight);
    try {
      const { client, s3 } = this.conn;
      await client.send(
        new s3.AbortMultipartUploadCommand({ Bucket: this.bucket, Key: this.key, UploadId: await this.id }),
      );
    } catch {
      // the upload never started, or S3 is unreachable: nothing more to do here
    }
  }
}

/** `data` as consecutive views of at most `size` bytes (none when it is empty). */
function* slices(data: Uint8Array, size: number): Generator<Uint8Array> {
  for (let at = 0; at < data.byteLength; at += size)
    yield data.subarray(at, Math.min(data.byteLength, at + size));
}

/** Checkpoint files as objects under s3://bucket/prefix, uploaded with multipart when large. */
export class S3CheckpointStorage implements CheckpointStorage {
  readonly location: S3Location;
  readonly root: string;
  readonly bucket: string;
  readonly prefix: string;
  private client: Promise<Connection> | undefined;
  /** uploads of more than this many bytes are multipart uploads of parts this big (at least 5 MiB) */
  writePartSize = DEFAULT_WRITE_PART_SIZE;
  /** reads of larger objects are split into ranged GETs of this many bytes... */
  readPartSize = DEFAULT_READ_PART_SIZE;
  /** ...this many in flight at a time */
  readConcurrency = DEFAULT_READ_CONCURRENCY;

  /** `root`: an s3:// URI or a parsed S3 location; the client settings (default: the process's, see configureS3Storage) are read now, the SDK loaded on first use */
  constructor(
    root: string | StorageLocation,
    private readonly config: S3ClientConfig = s3ClientConfig(currentS3StorageSettings()),
    private readonly encryption: S3Encryption = s3Encryption(currentS3StorageSettings()),
  ) {
    const loc =
      typeof root === 'string' ? parseStorageLocation(root, { what: 'S3 checkpoint storage' }) : root;
    if (loc.scheme !== 's3')
      throw new StorageError(
        'INVALID_LOCATION',
        `Invalid S3 checkpoint storage '${storageUri(loc)}': expected s3://bucket/prefix`,
      );
    this.location = loc;
    this.root = storageUri(loc);
    this.bucket = loc.bucket;
    this.prefix = loc.prefix;
  }

  private connect(): Promise<Connection> {
    this.client ??= loadSdk(this.root).then((s3) => {
      // no CRC32 of every uploaded part unless the operation needs one: the SDK computes it in
      // JavaScript on the task thread (tens of ms per checkpoint of a few MB); the files carry
      // their own SHA-256, which restore verifies
      const client = new s3.S3Client({ requestChecksumCalculation: 'WHEN_REQUIRED', ...this.config });
      // Over TLS, uploads are signed without a SHA-256 of the body (UNSIGNED-PAYLOAD, what the
      // SDK itself does for streamed bodies): SigV4 would hash each part (up to 16 MiB) in one go
      // on the task thread, and TLS already protects the bytes on the way (every checkpoint
      // file's own SHA-256 is verified again when it is read back). Over plain HTTP the body
      // stays signed, so the server refuses bytes damaged in transit and the checkpoint fails
      // instead of completing with a damaged file.
      // streamed bodies (ChunkedBody): their precomputed hash for the signature, and a fresh
      // stream of their chunks for every attempt
      client.middlewareStack.add(
        (next) => (args) => {
          const req = args.request as { headers?: Record<string, string>; body?: unknown };
          if (req.body instanceof ChunkedBody && req.body.sha256 && req.headers)
            req.headers['x-amz-content-sha256'] = req.body.sha256;
          return next(args);
        },
        { step: 'build', name: 'weirChunkedBodyHash' },
      );
      client.middlewareStack.add(
        (next) => (args) => {
          const req = args.request as { body?: unknown };
          if (!(req.body instanceof ChunkedBody)) return next(args);
          const attempt = Object.assign(Object.create(Object.getPrototypeOf(req) as object) as object, req, {
            body: Readable.from(socketWrites(req.body.chunks), { objectMode: false }),
          });
          return next({ ...args, request: attempt });
        },
        { step: 'deserialize', name: 'weirChunkedBodyStream' },
      );
      if (!plainHttp(this.config.endpoint))
        client.middlewareStack.add(
          (next, context) => (args) => {
            if (context.commandName === 'PutObjectCommand' || context.commandName === 'UploadPartCommand') {
              const headers = (args.request as { headers?: Record<string, string> }).headers;
              if (headers) headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
            }
            return next(args);
          },
          { step: 'build', name: 'weirUnsignedPayload' },
        );
      return { client, s3 };
    });
    return this.client;
  }

  private key(rel: string): string {
    const norm = checkedRelativePath(rel);
    return this.prefix ? (norm ? `${this.prefix}/${norm}` : this.prefix) : norm;
  }

  private where(key: string): string {
    return `s3://${this.bucket}/${key}`;
  }

  /**
   * A file in one buffer: uploaded as writeStream uploads, the buffer's slices (no copies) being
   * the parts.
   */
  write(relPath: string, data: Uint8Array): Promise<StateHandle> {
    // the slices are taken lazily, once writeStream has checked the part size
    return this.writeStream(relPath, slices(data, this.writePartSize));
  }

  /**
   * A streamed file: one PutObject when it ends within the first part, else a multipart upload
   * of parts of at least writePartSize, UPLOAD_QUEUE in flight while the next ones are produced.
   * Every PutObject and CreateMultipartUpload carries the server-side encryption settings; a
   * multipart upload that fails is aborted.
   * A part is sent as the chunks it is made of (no copy into one buffer), and its SHA-256 for
   * the signature (plain HTTP) is computed with the file's on the hashing thread as the chunks
   * arrive, so the task thread neither hashes nor gathers a part.
   */
  async writeStream(
    relPath: string,
    chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  ): Promise<StateHandle> {
    const key = this.key(relPath);
    const partSize = this.writePartSize;
    if (!(partSize >= MIN_WRITE_PART_SIZE))
      throw new RangeError(
        `S3CheckpointStorage.writePartSize is ${partSize}: S3 parts are at least ${MIN_WRITE_PART_SIZE} bytes (5 MiB)`,
      );
    const signed = plainHttp(this.config.endpoint);
    const hash = new BackgroundSha256(signed);
    let upload: MultipartUpload | undefined;
    try {
      const conn = await this.connect().catch((err: unknown) => {
        throw uploadFailed(this.where(key), err);
      });
      let part: Uint8Array[] = [];
      let partBytes = 0;
      let since = 0;
      for await (const c of chunks) {
        if (c.byteLength === 0) continue;
        hash.update(c);
        part.push(c);
        partBytes += c.byteLength;
        if (partBytes >= partSize) {
          upload ??= new MultipartUpload(conn, this.bucket, key, this.encryption);
          await upload.add(part, partBytes, signed ? hash.partDigest() : undefined);
          part = [];
          partBytes = 0;
        }
        // chunks that are ready at once (a snapshot encoded ahead) would otherwise all be taken
        // in one run of the task thread: hand it back every MiB
        since += c.byteLength;
        if (since >= YIELD_EVERY) {
          since = 0;
          await yieldToLoop();
        }
      }
      if (upload) {
        if (partBytes > 0) await upload.add(part, partBytes, signed ? hash.partDigest() : undefined);
        await upload.complete();
      } else {
        const { client, s3 } = conn;
        const body = new ChunkedBody(part, signed ? await hash.partDigest() : undefined);
        await client
          .send(
            new s3.PutObjectCommand({
              Bucket: this.bucket,
              Key: key,
              Body: body as unknown as Readable,
              ContentLength: partBytes,
              ...this.encryption,
            }),
          )
          .catch((err: unknown) => {
            throw uploadFailed(this.where(key), err);
          });
      }
    } catch (err) {
      // the producer's (the snapshot's) failures are its own; the upload's are StorageErrors
      hash.abort();
      await upload?.abort();
      throw err;
    }
    return { path: relPath, size: hash.size, sha256: await hash.digest() };
  }

  async read(relPath: string, expectedSha256?: string): Promise<Buffer> {
    const key = this.key(relPath);
    let data: Buffer;
    try {
      data = await this.rangedGet(key);
    } catch (err) {
      if (err instanceof StorageError) throw err;
      throw new StorageError(
        isNotFound(err) ? 'NOT_FOUND' : 'UNAVAILABLE',
        `Cannot read checkpoint file ${this.where(key)}: ${describe(err)}`,
        { cause: err },
      );
    }
    if (expectedSha256 && sha256(data) !== expectedSha256)
      throw new StorageError(
        'CORRUPT',
        `Checksum mismatch in checkpoint file ${this.where(key)}: the file is corrupt`,
      );
    return data;
  }

  /**
   * An object in ranged GETs of `readPartSize` bytes, up to `readConcurrency` at a time: the
   * first range tells the object's size (Content-Range), the rest run in parallel into one
   * buffer. One connection to S3 runs at a few tens of MB/s; several in parallel fill the link,
   * which is what a restore of large state waits on. A server that ignores Range sends the
   * whole object in the first answer.
   */
  private async rangedGet(key: string): Promise<Buffer> {
    const { client, s3 } = await this.connect();
    const part = this.readPartSize;
    const get = async (
      from: number,
      to: number,
    ): Promise<{ bytes: Uint8Array; total: number | undefined }> => {
      const res = await client.send(
        new s3.GetObjectCommand({ Bucket: this.bucket, Key: key, Range: `bytes=${from}-${to}` }),
      );
      const m = /\/(\d+)$/.exec(res.ContentRange ?? '');
      const total = m ? Number(m[1]) : undefined;
      if (total === 0) {
        // an empty object (some servers answer a range of it with a body that never comes)
        (res.Body as { destroy?: () => void } | undefined)?.destroy?.();
        return { bytes: new Uint8Array(0), total };
      }
      return { bytes: await res.Body!.transformToByteArray(), total };
    };
    let first: { bytes: Uint8Array; total: number | undefined };
    try {
      first = await get(0, part - 1);
    } catch (err) {
      // S3 refuses any range of an empty object (416 InvalidRange): read it whole
      const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
      if (e.name !== 'InvalidRange' && e.$metadata?.httpStatusCode !== 416) throw err;
      const res = await client.send(new s3.GetObjectCommand({ Bucket: this.bucket, Key: key }));
      return Buffer.from(await res.Body!.transformToByteArray());
    }
    const total = first.total;
    if (total === undefined || total <= first.bytes.byteLength) return Buffer.from(first.bytes);
    const out = Buffer.allocUnsafe(total);
    out.set(first.bytes, 0);
    let next = first.bytes.byteLength;
    const worker = async (): Promise<void> => {
      while (next < total) {
        const from = next;
        const to = Math.min(total, from + part) - 1;
        next = to + 1;
        const { bytes } = await get(from, to);
        if (bytes.byteLength !== to - from + 1)
          throw new StorageError(
            'CORRUPT',
            `S3 answered bytes ${from}-${to} of ${this.where(key)} with ${bytes.byteLength} bytes (the object changed while it was read?)`,
          );
        out.set(bytes, from);
      }
    };
    await Promise.all(Array.from({ length: this.readConcurrency }, worker));
    return out;
  }

  private async keys(
    relDir: string,
    opts: { delimiter?: string; max?: number } = {},
  ): Promise<{ keys: string[]; dirs: string[] }> {
    const base = this.key(relDir);
    const prefix = base ? `${base}/` : '';
    const { client, s3 } = await this.connect();
    const keys: string[] = [];
    const dirs: string[] = [];
    let token: string | undefined;
    do {
      const res = await client.send(
        new s3.ListObjectsV2Command({
          Bucket: this.bucket,
          Prefix: prefix,
          ContinuationToken: token,
          ...(opts.delimiter ? { Delimiter: opts.delimiter } : {}),
          ...(opts.max ? { MaxKeys: opts.max } : {}),
        }),
      );
      for (const o of res.Contents ?? []) if (o.Key) keys.push(o.Key);
      for (const p of res.CommonPrefixes ?? []) if (p.Prefix) dirs.push(p.Prefix);
      token = res.IsTruncated && !opts.max ? res.NextContinuationToken : undefined;
    } while (token);
    return { keys, dirs };
  }

  async list(relDir: string): Promise<string[]> {
    const base = this.key(relDir);
    const prefix = base ? `${base}/` : '';
    const { keys, dirs } = await this.keys(relDir, { delimiter: '/' });
    return [...keys, ...dirs].map((k) => k.slice(prefix.length).replace(/\/$/, '')).sort();
  }

  async exists(relPath: string): Promise<boolean> {
    const key = this.key(relPath);
    try {
      const { client, s3 } = await this.connect();
      if (key) {
        try {
          await client.send(new s3.HeadObjectCommand({ Bucket: this.bucket, Key: key }));
          return true;
        } catch (err) {
          if (!isNotFound(err)) throw err;
        }
      }
      return (await this.keys(relPath, { max: 1 })).keys.length > 0;
    } catch (err) {
      if (err instanceof StorageError) throw err;
      if (isNotFound(err)) return false;
      throw new StorageError('UNAVAILABLE', `Cannot look at ${this.where(key)}: ${describe(err)}`, {
        cause: err,
      });
    }
  }

  async delete(relPath: string): Promise<void> {
    const { client, s3 } = await this.connect();
    await client.send(
      new s3.DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: [{ Key: this.key(relPath) }] } }),
    );
  }

  async deleteDir(relDir: string): Promise<void> {
    const { keys } = await this.keys(relDir);
    const { client, s3 } = await this.connect();
    for (let i = 0; i < keys.length; i += 1000) {
      await client.send(
        new s3.DeleteObjectsCommand({
          Bucket: this.bucket,
          Delete: { Objects: keys.slice(i, i + 1000).map((Key) => ({ Key })) },
        }),
      );
    }
  }
}
