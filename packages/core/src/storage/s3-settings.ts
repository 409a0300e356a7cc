import type { S3ClientConfig } from '@aws-sdk/client-s3';

/**
 * S3 settings come from the process's configuration (`s3.*` keys: flags, WEIR_S3_* variables, the
 * configuration file), never from job graphs, so secrets do not travel with jobs. The CLI resolves
 * them once at start-up and hands them on through the environment (`exportS3Settings`), which is
 * also what slot worker threads inherit: WEIR_S3_ENDPOINT (for MinIO and local servers),
 * WEIR_S3_REGION, WEIR_S3_PATH_STYLE_ACCESS (older name WEIR_S3_PATH_STYLE), WEIR_S3_ACCESS_KEY /
 * WEIR_S3_SECRET_KEY, and the standard AWS variables below them. Only the SDK's types are
 * imported here: the SDK itself is loaded when an s3:// location is first used.
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
