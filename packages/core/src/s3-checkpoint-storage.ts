import {
  DeleteObjectsCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import path from 'node:path';
import { sha256, type CheckpointStorage, type StateHandle } from './storage-handle.js';

/**
 * S3 settings come from the process's configuration (`s3.*` keys: flags, WEIR_S3_* variables, the
 * configuration file), never from job graphs, so secrets do not travel with jobs. The CLI resolves
 * them once at start-up and hands them on through the environment (`exportS3Settings`), which is
 * also what slot worker threads inherit: WEIR_S3_ENDPOINT (for MinIO and local servers),
 * WEIR_S3_REGION, WEIR_S3_PATH_STYLE_ACCESS (older name WEIR_S3_PATH_STYLE), WEIR_S3_ACCESS_KEY /
 * WEIR_S3_SECRET_KEY, and the standard AWS variables below them.
 */
export function s3ConfigFromEnv(env: NodeJS.ProcessEnv = process.env): S3ClientConfig {
  const pick = (...names: string[]): string | undefined =>
    names.map((n) => env[n]).find((v) => v !== undefined && v !== '');
  const endpoint = pick('WEIR_S3_ENDPOINT');
  const config: S3ClientConfig = {
    region: pick('WEIR_S3_REGION', 'AWS_REGION') ?? 'us-east-1',
    forcePathStyle:
      (pick('WEIR_S3_PATH_STYLE_ACCESS', 'WEIR_S3_PATH_STYLE') ?? (endpoint ? 'true' : 'false')) === 'true',
    maxAttempts: 2,
  };
  if (endpoint) config.endpoint = endpoint;
  const key = pick('WEIR_S3_ACCESS_KEY', 'AWS_ACCESS_KEY_ID');
  const secret = pick('WEIR_S3_SECRET_KEY', 'AWS_SECRET_ACCESS_KEY');
  if (key && secret) config.credentials = { accessKeyId: key, secretAccessKey: secret };
  return config;
}

/**
 * Puts the resolved S3 settings into this process's environment under their WEIR_S3_* names, so
 * every S3 client of the process and of its worker threads uses them (flags and the file
 * included, not only the environment it started with).
 */
export function exportS3Settings(
  s3: {
    endpoint?: string;
    region?: string;
    pathStyleAccess?: boolean;
    accessKey?: string;
    secretKey?: string;
  },
  env: NodeJS.ProcessEnv = process.env,
): void {
  if (s3.endpoint !== undefined) env.WEIR_S3_ENDPOINT = s3.endpoint;
  if (s3.region !== undefined) env.WEIR_S3_REGION = s3.region;
  if (s3.pathStyleAccess !== undefined) env.WEIR_S3_PATH_STYLE_ACCESS = String(s3.pathStyleAccess);
  if (s3.accessKey !== undefined) env.WEIR_S3_ACCESS_KEY = s3.accessKey;
  if (s3.secretKey !== undefined) env.WEIR_S3_SECRET_KEY = s3.secretKey;
}

function describe(err: unknown): string {
  const e = err as { name?: string; message?: string; Code?: string };
  return `${e.Code ?? e.name ?? 'Error'}: ${e.message ?? String(err)}`;
}

/** Checkpoint files as objects under s3://bucket/prefix, uploaded with multipart when large. */
export class S3CheckpointStorage implements CheckpointStorage {
  readonly bucket: string;
  readonly prefix: string;
  private readonly client: S3Client;

  constructor(
    readonly root: string,
    config: S3ClientConfig = s3ConfigFromEnv(),
  ) {
    const m = /^s3:\/\/([^/]+)\/?(.*)$/.exec(root);
    if (!m) throw new Error(`Invalid S3 checkpoint storage '${root}': expected s3://bucket/prefix`);
    this.bucket = m[1]!;
    this.prefix = m[2]!.replace(/\/+$/, '');
    this.client = new S3Client(config);
  }

  private key(rel: string): string {
    const norm = path.posix.normalize(rel);
    if (norm.startsWith('..') || path.posix.isAbsolute(norm))
      throw new Error(`Checkpoint path escapes the storage root: ${rel}`);
    return this.prefix ? `${this.prefix}/${norm}` : norm;
  }

  private where(key: string): string {
    return `s3://${this.bucket}/${key}`;
  }

  async write(relPath: string, data: Uint8Array): Promise<StateHandle> {
    const key = this.key(relPath);
    try {
      await new Upload({
        client: this.client,
        params: { Bucket: this.bucket, Key: key, Body: data },
        partSize: 8 * 1024 * 1024,
        queueSize: 2,
      }).done();
    } catch (err) {
      throw new Error(`S3 upload to ${this.where(key)} failed: ${describe(err)}`);
    }
    return { path: relPath, size: data.byteLength, sha256: sha256(data) };
  }

  async read(relPath: string, expectedSha256?: string): Promise<Buffer> {
    const key = this.key(relPath);
    let data: Buffer;
    try {
      const res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      data = Buffer.from(await res.Body!.transformToByteArray());
    } catch (err) {
      throw new Error(`Cannot read checkpoint file ${this.where(key)}: ${describe(err)}`);
    }
    if (expectedSha256 && sha256(data) !== expectedSha256)
      throw new Error(`Checksum mismatch in checkpoint file ${this.where(key)}: the file is corrupt`);
    return data;
  }

  private async keys(relDir: string, delimiter?: string): Promise<{ keys: string[]; dirs: string[] }> {
    const prefix = `${this.key(relDir)}/`;
    const keys: string[] = [];
    const dirs: string[] = [];
    let token: string | undefined;
    do {
      const res = await this.client.send(
        new ListObjectsV2Command({
          Bucket: this.bucket,
          Prefix: prefix,
          ContinuationToken: token,
          ...(delimiter ? { Delimiter: delimiter } : {}),
        }),
      );
      for (const o of res.Contents ?? []) if (o.Key) keys.push(o.Key);
      for (const p of res.CommonPrefixes ?? []) if (p.Prefix) dirs.push(p.Prefix);
      token = res.IsTruncated ? res.NextContinuationToken : undefined;
    } while (token);
    return { keys, dirs };
  }

  async list(relDir: string): Promise<string[]> {
    const prefix = `${this.key(relDir)}/`;
    const { keys, dirs } = await this.keys(relDir, '/');
    return [...keys, ...dirs].map((k) => k.slice(prefix.length).replace(/\/$/, '')).sort();
  }

  async delete(relPath: string): Promise<void> {
    await this.client.send(
      new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: [{ Key: this.key(relPath) }] } }),
    );
  }

  async deleteDir(relDir: string): Promise<void> {
    const { keys } = await this.keys(relDir);
    for (let i = 0; i < keys.length; i += 1000) {
      await this.client.send(
        new DeleteObjectsCommand({
          Bucket: this.bucket,
          Delete: { Objects: keys.slice(i, i + 1000).map((Key) => ({ Key })) },
        }),
      );
    }
  }
}
