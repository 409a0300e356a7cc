import type { S3ClientConfig } from '@aws-sdk/client-s3';
import { defaultSettings, type Settings } from '../config.js';

/** The `s3.*` keys of the registry. */
export type S3Key =
  | 's3.endpoint'
  | 's3.region'
  | 's3.path-style-access'
  | 's3.access-key'
  | 's3.secret-key'
  | 's3.sse.type'
  | 's3.sse.kms-key-id';
/** A process's S3 settings, typed by the registry (flags, WEIR_S3_* variables, the configuration file, defaults). */
export type S3StorageSettings = Pick<Settings, S3Key>;

/** Only the S3 keys of complete settings, e.g. to hand to a worker thread. */
export function s3StorageSettings(settings: S3StorageSettings): S3StorageSettings {
  return {
    's3.endpoint': settings['s3.endpoint'],
    's3.region': settings['s3.region'],
    's3.path-style-access': settings['s3.path-style-access'],
    's3.access-key': settings['s3.access-key'],
    's3.secret-key': settings['s3.secret-key'],
    's3.sse.type': settings['s3.sse.type'],
    's3.sse.kms-key-id': settings['s3.sse.kms-key-id'],
  };
}

/** The server-side encryption parameters of every PutObject/CreateMultipartUpload weir sends. */
export interface S3Encryption {
  ServerSideEncryption?: 'AES256' | 'aws:kms';
  SSEKMSKeyId?: string;
}

/**
 * s3.sse.type and s3.sse.kms-key-id as request parameters: sse-s3 is AES256 (keys managed by
 * S3), sse-kms is aws:kms with the given key (or the AWS managed one). A KMS key id without
 * sse-kms is a mistake that would silently store unencrypted data, so it is refused.
 */
export function s3Encryption(s: Pick<S3StorageSettings, 's3.sse.type' | 's3.sse.kms-key-id'>): S3Encryption {
  const type = s['s3.sse.type'] ?? 'none';
  const keyId = s['s3.sse.kms-key-id'];
  if (keyId && type !== 'sse-kms')
    throw new Error(
      `s3.sse.kms-key-id is set but s3.sse.type is ${type}: set s3.sse.type: sse-kms to encrypt with that key`,
    );
  if (type === 'sse-s3') return { ServerSideEncryption: 'AES256' };
  if (type === 'sse-kms')
    return { ServerSideEncryption: 'aws:kms', ...(keyId ? { SSEKMSKeyId: keyId } : {}) };
  return {};
}

/**
 * The AWS SDK client settings of S3 settings. Path-style addressing is on by default when an
 * endpoint is set (MinIO and other S3-compatible servers); without an access key and secret key
 * the SDK's default credential chain applies.
 */
export function s3ClientConfig(s: S3StorageSettings): S3ClientConfig {
  const endpoint = s['s3.endpoint'];
  const config: S3ClientConfig = {
    region: s['s3.region'],
    forcePathStyle: s['s3.path-style-access'] ?? endpoint !== undefined,
    maxAttempts: 2,
  };
  if (endpoint) config.endpoint = endpoint;
  const key = s['s3.access-key'];
  const secret = s['s3.secret-key'];
  if (key && secret) config.credentials = { accessKeyId: key, secretAccessKey: secret };
  return config;
}

let processSettings: S3StorageSettings = s3StorageSettings(defaultSettings());

/**
 * S3 settings come from the process's configuration, never from job graphs, so secrets do not
 * travel with jobs. The process edge (the CLI command, a slot worker thread from its
 * `workerData`) resolves them once and sets them here for every S3 storage the process opens,
 * the way `configureTransportSecurity` sets TLS; until then the registry's defaults apply.
 */
export function configureS3Storage(settings: S3StorageSettings): void {
  s3Encryption(settings); // an inconsistent encryption setting fails at start-up, not at the first checkpoint
  processSettings = s3StorageSettings(settings);
}

/** The S3 settings `configureS3Storage` set (the registry's defaults before). */
export function currentS3StorageSettings(): S3StorageSettings {
  return processSettings;
}
