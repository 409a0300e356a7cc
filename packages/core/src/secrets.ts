/**
 * Secrets this process knows (the bearer token, S3 keys). Every log line, every printed
 * configuration and every job status the JobManager serves is passed through `maskSecrets`,
 * so a secret that ends up in an error message (an S3 error, a user exception) is shown as
 * `***` instead.
 */
const secrets = new Set<string>();
let pattern: RegExp | undefined;

export const MASK = '***';

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Values shorter than 4 characters are not registered: masking them would mangle text. */
export function registerSecret(value: string | undefined): void {
  if (!value || value.length < 4 || secrets.has(value)) return;
  secrets.add(value);
  pattern = new RegExp(
    [...secrets]
      .sort((a, b) => b.length - a.length)
      .map(escape)
      .join('|'),
    'g',
  );
}

/**
 * Registers the secrets of an environment (S3 keys, AWS session tokens, the bearer token), so
 * logs mask them even where no setting holds them; the process edge calls it with its own.
 */
export function registerEnvironmentSecrets(env: NodeJS.ProcessEnv): void {
  for (const k of [
    'WEIR_S3_SECRET_KEY',
    'AWS_SECRET_ACCESS_KEY',
    'AWS_SESSION_TOKEN',
    'WEIR_S3_ACCESS_KEY',
    'AWS_ACCESS_KEY_ID',
    'WEIR_AUTH_TOKEN',
    'WEIR_CLUSTER_SECRET',
    'WEIR_SECURITY_CLUSTER_SECRET',
    'WEIR_SECURITY_AUTH_TOKEN',
  ])
    registerSecret(env[k]);
}

export function hasSecrets(): boolean {
  return secrets.size > 0;
}

/** Replaces every known secret in a string. */
export function maskString(s: string): string {
  return pattern && s.length >= 4 ? s.replace(pattern, MASK) : s;
}

/** Deep copy of plain data (objects, arrays, strings) with every known secret masked. */
export function maskSecrets<T>(value: T, depth = 0): T {
  if (!pattern || depth > 12) return value;
  if (typeof value === 'string') return maskString(value) as T;
  if (Array.isArray(value)) return value.map((v) => maskSecrets(v, depth + 1)) as T;
  if (value instanceof Error) {
    const e = new Error(maskString(value.message));
    e.name = value.name;
    if (value.stack) e.stack = maskString(value.stack);
    return e as T;
  }
  if (value && typeof value === 'object' && !Buffer.isBuffer(value) && !ArrayBuffer.isView(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = maskSecrets(v, depth + 1);
    return out as T;
  }
  return value;
}
