import type * as S3SdkModule from '@aws-sdk/client-s3';
import type { S3Client, S3ClientConfig } from '@aws-sdk/client-s3';
import type * as LibStorageModule from '@aws-sdk/lib-storage';
import { Readable } from 'node:stream';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import {
  HashingChunks,
  checkedRelativePath,
  sha256,
  type CheckpointStorage,
  type StateHandle,
} from './checkpoint-storage.js';
import { parseStorageLocation, storageUri, type S3Location, type StorageLocation } from './location.js';
import { currentS3StorageSettings, s3ClientConfig, s3Encryption, type S3Encryption } from './s3-settings.js';
import { StorageError } from './storage-error.js';

type S3Sdk = typeof S3SdkModule;
type LibStorage = typeof LibStorageModule;

let sdk: Promise<{ s3: S3Sdk; lib: LibStorage }> | undefined;

const DEFAULT_READ_PART_SIZE = 8 * 1024 * 1024;
const DEFAULT_READ_CONCURRENCY = 4;

/**
 * The AWS SDK is loaded on first use of an s3:// location (it is large, and a deployment that
 * keeps its checkpoints in files never needs it).
 */
function loadSdk(where: string): Promise<{ s3: S3Sdk; lib: LibStorage }> {
  sdk ??= Promise.all([import('@aws-sdk/client-s3'), import('@aws-sdk/lib-storage')]).then(
    ([s3, lib]) => ({ s3, lib }),
    (err: Error) => {
      sdk = undefined;
      throw new StorageError(
        'UNAVAILABLE',
        `S3 storage ${where} needs the AWS SDK (@aws-sdk/client-s3, @aws-sdk/lib-storage), which cannot be loaded: ${err.message}`,
        { cause: err },
      );
    },
  );
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
 * Multipart part size of streamed uploads (S3's smallest is 5 MiB). A file that ends within the
 * first part goes up as one PutObject (one request, as a plain write), which is most checkpoint
 * files; larger ones go in parts this big, UPLOAD_QUEUE in flight (at most about 80 MiB held).
 */
const PART_SIZE = 16 * 1024 * 1024;
/** bytes of a streamed upload after which the task thread is handed back (see writeStream) */
const YIELD_EVERY = 1 << 20;
/** parts of one streamed upload in flight at once */
const UPLOAD_QUEUE = 4;

/** Whether an S3 endpoint setting is plain HTTP (no endpoint: AWS over HTTPS). */
function plainHttp(endpoint: S3ClientConfig['endpoint']): boolean {
  return typeof endpoint === 'string' && endpoint.toLowerCase().startsWith('http:');
}

/** Checkpoint files as objects under s3://bucket/prefix, uploaded with multipart when large. */
export class S3CheckpointStorage implements CheckpointStorage {
  readonly location: S3Location;
  readonly root: string;
  readonly bucket: string;
  readonly prefix: string;
  private client: Promise<{ client: S3Client; s3: S3Sdk; lib: LibStorage }> | undefined;
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

  private connect(): Promise<{ client: S3Client; s3: S3Sdk; lib: LibStorage }> {
    this.client ??= loadSdk(this.root).then(({ s3, lib }) => {
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
      return { client, s3, lib };
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

  async write(relPath: string, data: Uint8Array): Promise<StateHandle> {
    const key = this.key(relPath);
    try {
      const { client, lib } = await this.connect();
      await new lib.Upload({
        client,
        // server-side encryption on every object (Upload passes it to PutObject and CreateMultipartUpload)
        params: { Bucket: this.bucket, Key: key, Body: data, ...this.encryption },
        partSize: 8 * 1024 * 1024,
        queueSize: 2,
      }).done();
    } catch (err) {
      if (err instanceof StorageError) throw err;
      throw new StorageError('UNAVAILABLE', `S3 upload to ${this.where(key)} failed: ${describe(err)}`, {
        cause: err,
      });
    }
    return { path: relPath, size: data.byteLength, sha256: sha256(data) };
  }

  /**
   * A streamed file: multipart when it outgrows one part, PART_SIZE parts uploaded
   * UPLOAD_QUEUE at a time while the next ones are produced.
   */
  async writeStream(relPath: string, chunks: AsyncIterable<Uint8Array>): Promise<StateHandle> {
    const key = this.key(relPath);
    const hashed = new HashingChunks(chunks);
    let producerFailure: unknown;
    const body = Readable.from(
      (async function* () {
        try {
          // chunks that are ready at once (a snapshot encoded ahead) would otherwise be hashed
          // and gathered into a whole part in one run of the task thread: hand it back every MiB
          let since = 0;
          for await (const c of hashed) {
            yield c;
            since += c.byteLength;
            if (since >= YIELD_EVERY) {
              since = 0;
              await yieldToLoop();
            }
          }
        } catch (e) {
          producerFailure = e;
          throw e;
        }
      })(),
      { objectMode: false },
    );
    try {
      const { client, lib } = await this.connect();
      await new lib.Upload({
        client,
        params: { Bucket: this.bucket, Key: key, Body: body, ...this.encryption },
        partSize: PART_SIZE,
        queueSize: UPLOAD_QUEUE,
      }).done();
    } catch (err) {
      if (producerFailure !== undefined) throw producerFailure;
      if (err instanceof StorageError) throw err;
      throw new StorageError('UNAVAILABLE', `S3 upload to ${this.where(key)} failed: ${describe(err)}`, {
        cause: err,
      });
    }
    return { path: relPath, size: hashed.size, sha256: hashed.digest() };
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
