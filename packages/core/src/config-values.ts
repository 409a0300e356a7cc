import type { RestartStrategyType, StateBackendType } from '@weir/api';
import { isStorageUri, parseStorageLocation } from './storage/location.js';

/** Turns a raw value (from the file, a variable or a flag) into the setting's type, or throws naming `key`. */
export type Parser<T = unknown> = (v: unknown, key: string) => T;

export interface ConfigOption<T = unknown, K extends string = string> {
  key: K;
  parse: Parser<T>;
  /** the expected form, for `weir config --describe` and the docs */
  form: string;
  description: string;
  /** the default, as a parsed value (undefined: unset); the only place a setting's default is written */
  default?: T;
  /** shown as `***` and registered as a secret so logs mask it */
  secret?: boolean;
  /** a file path: relative values in the configuration file are relative to the file */
  path?: boolean;
  /** older environment variables that also set this key, below the systematic one */
  envAliases?: string[];
  /** other key names accepted in the file (Flink's older names) */
  keyAliases?: string[];
}

export function fail(key: string, expected: string, v: unknown): never {
  throw new Error(`Invalid value for '${key}': ${JSON.stringify(v)}; expected ${expected}`);
}

export const UNITS: Record<string, number> = {
  ms: 1,
  s: 1000,
  sec: 1000,
  min: 60_000,
  m: 60_000,
  h: 3_600_000,
};

/** A duration in ms: a number (ms) or "500 ms", "10 s", "2 min". */
export function parseDuration(v: unknown, key: string): number {
  if (typeof v === 'number' && Number.isFinite(v) && v >= 0) return v;
  const m = typeof v === 'string' ? /^\s*(\d+(?:\.\d+)?)\s*(ms|s|sec|min|m|h)?\s*$/.exec(v) : null;
  if (!m) fail(key, 'a duration such as 500, "500 ms", "10 s" or "1 min"', v);
  return Math.round(Number(m[1]) * UNITS[m[2] ?? 'ms']!);
}

export const SIZE_UNITS: Record<string, number> = {
  b: 1,
  kb: 1024,
  k: 1024,
  kib: 1024,
  mb: 1 << 20,
  m: 1 << 20,
  mib: 1 << 20,
  gb: 1 << 30,
  g: 1 << 30,
  gib: 1 << 30,
};

/** A size in bytes: a number, or "512 kb", "64 mb", "1 gb" (binary units). */
export function parseSize(v: unknown, key: string): number {
  if (typeof v === 'number' && Number.isInteger(v) && v > 0) return v;
  const m = typeof v === 'string' ? /^\s*(\d+(?:\.\d+)?)\s*([a-z]+)?\s*$/i.exec(v) : null;
  const unit = SIZE_UNITS[(m?.[2] ?? 'b').toLowerCase()];
  if (!m || !unit || Number(m[1]) <= 0) fail(key, 'a memory size such as 4194304, "512 kb" or "64 mb"', v);
  return Math.round(Number(m[1]) * unit);
}

/** A memory size in bytes (Flink's units, powers of 1024); the same parser as rpc.max-message-size. */
export function parseMemorySize(v: unknown, key: string): number {
  return parseSize(v, key);
}

export const asNumber = (v: unknown): unknown =>
  typeof v === 'string' && /^\s*-?\d+(\.\d+)?\s*$/.test(v) ? Number(v) : v;
export const int =
  (min: number, max = Number.MAX_SAFE_INTEGER): Parser<number> =>
  (v, key) => {
    const n = asNumber(v);
    return Number.isInteger(n) && (n as number) >= min && (n as number) <= max
      ? (n as number)
      : fail(
          key,
          max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer from ${min} to ${max}`,
          v,
        );
  };
export const num =
  (min: number): Parser<number> =>
  (v, key) => {
    const n = asNumber(v);
    return typeof n === 'number' && Number.isFinite(n) && n >= min ? n : fail(key, `a number >= ${min}`, v);
  };
export const oneOf =
  <V extends string>(...values: readonly V[]): Parser<V> =>
  (v, key) =>
    typeof v === 'string' && (values as readonly string[]).includes(v)
      ? (v as V)
      : fail(key, values.join(' or '), v);
export const bool: Parser<boolean> = (v, key) =>
  typeof v === 'boolean' ? v : v === 'true' ? true : v === 'false' ? false : fail(key, 'true or false', v);
export const file: Parser<string> = (v, key) =>
  typeof v === 'string' && v.trim() !== '' ? v : fail(key, 'a file path', v);
export const dir: Parser<string> = (v, key) =>
  typeof v === 'string' && v.trim() !== '' ? v : fail(key, 'a directory', v);
export const text: Parser<string> = (v, key) =>
  typeof v === 'string' && v.trim() !== '' ? v.trim() : fail(key, 'a non-empty string', v);
export const host: Parser<string> = (v, key) =>
  typeof v === 'string' && /^[A-Za-z0-9._:[\]-]+$/.test(v) ? v : fail(key, 'a host name or IP address', v);
export const httpUrl: Parser<string> = (v, key) =>
  typeof v === 'string' && /^https?:\/\/[^\s/]+/.test(v)
    ? v
    : fail(key, 'an http:// or https:// URL such as http://minio:9000', v);
export const storageUri: Parser<string> = (v, key) => {
  if (typeof v !== 'string' || !isStorageUri(v)) return fail(key, STORAGE, v);
  // a URI: throws naming the key, the value and what is wrong with it
  parseStorageLocation(v, { what: `Invalid value for '${key}':` });
  return v;
};
export const stringList: Parser<string[]> = (v, key) => {
  const list =
    typeof v === 'string'
      ? v
          .split(',')
          .map((x) => x.trim())
          .filter(Boolean)
      : v;
  return Array.isArray(list) && list.every((x) => typeof x === 'string' && x !== '')
    ? (list as string[])
    : fail(key, 'a list of directories or s3:// URIs (comma-separated in a variable)', v);
};

export const RESTART_TYPES: Record<string, RestartStrategyType> = {
  none: 'none',
  off: 'none',
  disable: 'none',
  'no-restart': 'none',
  'fixed-delay': 'fixed-delay',
  fixeddelay: 'fixed-delay',
  'exponential-delay': 'exponential-delay',
  exponentialdelay: 'exponential-delay',
  'failure-rate': 'failure-rate',
  failurerate: 'failure-rate',
};
export const restartType: Parser<RestartStrategyType> = (v, key) =>
  RESTART_TYPES[String(v).toLowerCase()] ??
  fail(key, 'none, fixed-delay, exponential-delay or failure-rate', v);
/** Flink's `hashmap` is the heap backend */
export const stateBackend: Parser<StateBackendType> = (v, key) =>
  oneOf('heap', 'hashmap', 'rocksdb')(v, key) === 'rocksdb' ? 'rocksdb' : 'heap';
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export const DURATION = 'a duration: 500, "500 ms", "10 s", "1 min"';
export const SIZE = 'a memory size: 4194304, "512 kb", "64 mb"';
export const STORAGE = 'file:///path or s3://bucket/prefix';
