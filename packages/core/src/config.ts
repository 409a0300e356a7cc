import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse } from 'yaml';
import type { RestartStrategyConfiguration, RestartStrategyType, StateBackendType } from '@weir/api';
import {
  RESTART_STRATEGY_DEFAULTS,
  validateRestartStrategy,
  type CheckpointSettings,
} from '@weir/api/internal';
import { registerSecret } from './secrets.js';
import { isStorageUri, parseStorageLocation } from './storage/location.js';

/**
 * weir's configuration: one registry of settings (`CONFIG_OPTIONS`, Flink's key names), read
 * in layers with this precedence:
 *
 *   command-line flags  >  WEIR_* environment variables  >  the configuration file  >  defaults
 *
 * Every key has one environment variable, derived systematically: `WEIR_` + the key in upper
 * case with `.` and `-` turned into `_` (`state.checkpoints.dir` <-> `WEIR_STATE_CHECKPOINTS_DIR`).
 * A few older names are kept as aliases (`WEIR_S3_PATH_STYLE`, `WEIR_AUTH_TOKEN`,
 * `AWS_ACCESS_KEY_ID`, ...); they rank below the systematic name. Every command-line flag of
 * a setting maps to its key, and `-D key=value` sets any key.
 *
 * An unknown key in the file, an unknown WEIR_* variable in a configuration namespace, or a
 * bad value anywhere is an error naming the key (or variable, or flag) and the expected form.
 */

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

function fail(key: string, expected: string, v: unknown): never {
  throw new Error(`Invalid value for '${key}': ${JSON.stringify(v)}; expected ${expected}`);
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, sec: 1000, min: 60_000, m: 60_000, h: 3_600_000 };

/** A duration in ms: a number (ms) or "500 ms", "10 s", "2 min". */
export function parseDuration(v: unknown, key: string): number {
  if (typeof v === 'number' && Number.isFinite(v) && v >= 0) return v;
  const m = typeof v === 'string' ? /^\s*(\d+(?:\.\d+)?)\s*(ms|s|sec|min|m|h)?\s*$/.exec(v) : null;
  if (!m) fail(key, 'a duration such as 500, "500 ms", "10 s" or "1 min"', v);
  return Math.round(Number(m[1]) * UNITS[m[2] ?? 'ms']!);
}

const SIZE_UNITS: Record<string, number> = {
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

const asNumber = (v: unknown): unknown =>
  typeof v === 'string' && /^\s*-?\d+(\.\d+)?\s*$/.test(v) ? Number(v) : v;
const int =
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
const num =
  (min: number): Parser<number> =>
  (v, key) => {
    const n = asNumber(v);
    return typeof n === 'number' && Number.isFinite(n) && n >= min ? n : fail(key, `a number >= ${min}`, v);
  };
const oneOf =
  <V extends string>(...values: readonly V[]): Parser<V> =>
  (v, key) =>
    typeof v === 'string' && (values as readonly string[]).includes(v)
      ? (v as V)
      : fail(key, values.join(' or '), v);
const bool: Parser<boolean> = (v, key) =>
  typeof v === 'boolean' ? v : v === 'true' ? true : v === 'false' ? false : fail(key, 'true or false', v);
const file: Parser<string> = (v, key) =>
  typeof v === 'string' && v.trim() !== '' ? v : fail(key, 'a file path', v);
const dir: Parser<string> = (v, key) =>
  typeof v === 'string' && v.trim() !== '' ? v : fail(key, 'a directory', v);
const text: Parser<string> = (v, key) =>
  typeof v === 'string' && v.trim() !== '' ? v.trim() : fail(key, 'a non-empty string', v);
const host: Parser<string> = (v, key) =>
  typeof v === 'string' && /^[A-Za-z0-9._:[\]-]+$/.test(v) ? v : fail(key, 'a host name or IP address', v);
const httpUrl: Parser<string> = (v, key) =>
  typeof v === 'string' && /^https?:\/\/[^\s/]+/.test(v)
    ? v
    : fail(key, 'an http:// or https:// URL such as http://minio:9000', v);
const storageUri: Parser<string> = (v, key) => {
  if (typeof v !== 'string' || !isStorageUri(v)) return fail(key, STORAGE, v);
  // a URI: throws naming the key, the value and what is wrong with it
  parseStorageLocation(v, { what: `Invalid value for '${key}':` });
  return v;
};
const stringList: Parser<string[]> = (v, key) => {
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

const RESTART_TYPES: Record<string, RestartStrategyType> = {
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
const restartType: Parser<RestartStrategyType> = (v, key) =>
  RESTART_TYPES[String(v).toLowerCase()] ??
  fail(key, 'none, fixed-delay, exponential-delay or failure-rate', v);
/** Flink's `hashmap` is the heap backend */
const stateBackend: Parser<StateBackendType> = (v, key) =>
  oneOf('heap', 'hashmap', 'rocksdb')(v, key) === 'rocksdb' ? 'rocksdb' : 'heap';
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

const DURATION = 'a duration: 500, "500 ms", "10 s", "1 min"';
const SIZE = 'a memory size: 4194304, "512 kb", "64 mb"';
const STORAGE = 'file:///path or s3://bucket/prefix';

/** A registry entry that keeps its key, its parsed type and whether it has a default in its type. */
type TypedOption<T, K extends string, D extends T | undefined> = ConfigOption<T, K> & { default: D };

const o = <K extends string, T, D extends T | undefined = undefined>(
  key: K,
  parse: Parser<T>,
  form: string,
  description: string,
  extra: Omit<Partial<ConfigOption<T>>, 'default'> & { default?: D } = {},
): TypedOption<T, K, D> => ({ key, parse, form, description, ...extra }) as TypedOption<T, K, D>;

/** Every setting weir reads. */
export const CONFIG_OPTIONS = [
  // processes and ports
  o('jobmanager.rpc.address', host, 'a host name or IP', 'the JobManager a TaskManager registers with', {
    default: '127.0.0.1',
  }),
  o('jobmanager.rpc.port', int(0, 65535), 'a port (0: any free port)', 'the JobManager port', {
    default: 6123,
  }),
  o(
    'jobmanager.bind-host',
    host,
    'an address to listen on (0.0.0.0: all)',
    'the interface the JobManager listens on',
    { default: '127.0.0.1' },
  ),
  o(
    'taskmanager.numberOfTaskSlots',
    int(1, 1024),
    'an integer from 1 to 1024',
    'task slots per TaskManager (one worker thread each)',
    { default: 1 },
  ),
  o(
    'taskmanager.bind-host',
    host,
    'an address to listen on (0.0.0.0: all)',
    'the interface a TaskManager listens on',
    { default: '127.0.0.1' },
  ),
  o(
    'taskmanager.host',
    host,
    'a host name or IP',
    "the address other processes use to reach this TaskManager (default: the bind host, or this machine's first non-loopback IPv4 address when binding to all interfaces)",
  ),
  o(
    'taskmanager.rpc.port',
    int(0, 65535),
    'a port (0: any free port)',
    'the TaskManager port for tasks and data exchange',
    { default: 0 },
  ),
  o('taskmanager.resource-id', text, 'a name', 'the TaskManager id (default: tm-<random>)'),
  o(
    'process.taskmanager.working-dir',
    dir,
    'a directory',
    "a TaskManager's working directory (bundle cache)",
    { default: '.weir/work' },
  ),
  o(
    'slot.request.timeout',
    parseDuration,
    DURATION,
    'a job that cannot get its slots fails after this long',
    { default: 300_000 },
  ),
  o('heartbeat.interval', parseDuration, DURATION, 'heartbeat interval between JobManager and TaskManagers', {
    default: 1000,
  }),
  o('heartbeat.timeout', parseDuration, DURATION, 'a silent TaskManager is lost after this long', {
    default: 10_000,
  }),
  o(
    'task.cancellation.timeout',
    parseDuration,
    DURATION,
    "a task stuck in user code this long after a cancel has its slot's worker thread terminated",
    { default: 30_000 },
  ),
  o(
    'log.level',
    oneOf(...LOG_LEVELS),
    LOG_LEVELS.join(', '),
    'log level of JobManagers and TaskManagers (pino)',
    { default: 'info' },
  ),
  // checkpoints (defaults for jobs that set nothing in code)
  o(
    'execution.checkpointing.interval',
    parseDuration,
    DURATION,
    'checkpoint every this long (unset: checkpointing off unless the job enables it)',
  ),
  o(
    'execution.checkpointing.mode',
    oneOf('EXACTLY_ONCE', 'AT_LEAST_ONCE'),
    'EXACTLY_ONCE or AT_LEAST_ONCE',
    'barrier alignment or counting',
  ),
  o(
    'execution.checkpointing.timeout',
    parseDuration,
    DURATION,
    'a checkpoint not complete after this long is aborted',
  ),
  o('execution.checkpointing.min-pause', parseDuration, DURATION, 'minimum pause between checkpoints'),
  o(
    'execution.checkpointing.max-concurrent-checkpoints',
    int(1),
    'an integer >= 1',
    'checkpoints in flight at once',
  ),
  o(
    'execution.checkpointing.tolerable-failed-checkpoints',
    int(0),
    'an integer >= 0',
    'consecutive checkpoint failures before the job fails',
  ),
  o(
    'execution.checkpointing.externalized-checkpoint-retention',
    oneOf('DELETE_ON_CANCELLATION', 'RETAIN_ON_CANCELLATION'),
    'DELETE_ON_CANCELLATION or RETAIN_ON_CANCELLATION',
    'what happens to checkpoints when a job is canceled',
  ),
  o('state.checkpoints.num-retained', int(1), 'an integer >= 1', 'completed checkpoints kept'),
  o(
    'state.checkpoints.dir',
    storageUri,
    STORAGE,
    'checkpoint storage (default file:// under .weir/checkpoints)',
  ),
  o(
    'state.savepoints.dir',
    storageUri,
    STORAGE,
    'default savepoint target (default file:// under .weir/savepoints)',
  ),
  o(
    'high-availability.type',
    oneOf('job-store', 'none'),
    'job-store or none',
    'keep running jobs in the job store so a restarted JobManager resumes them',
    { default: 'job-store' },
  ),
  o('high-availability.storageDir', storageUri, STORAGE, 'the job store (default file:// under .weir/ha)'),
  // state backends
  o(
    'state.backend.type',
    stateBackend,
    'heap, hashmap or rocksdb',
    'the state backend of jobs that choose none',
    { keyAliases: ['state.backend'] },
  ),
  o(
    'state.backend.incremental',
    bool,
    'true or false',
    'incremental checkpoints (RocksDB) for jobs that do not say',
    { default: false },
  ),
  o(
    'state.backend.rocksdb.localdir',
    dir,
    'a directory',
    'RocksDB directory root; each TaskManager uses <dir>/<id> (default .weir/tm-state)',
  ),
  o('state.backend.rocksdb.block.cache-size', parseSize, SIZE, 'RocksDB block cache per database', {
    default: 8 << 20,
  }),
  o('state.backend.rocksdb.writebuffer.size', parseSize, SIZE, 'RocksDB memtable per database', {
    default: 16 << 20,
  }),
  // restart strategy
  o(
    'restart-strategy.type',
    restartType,
    'none, fixed-delay, exponential-delay or failure-rate',
    'the restart strategy of jobs that set none (default: exponential-delay with checkpointing, none without)',
  ),
  o(
    'restart-strategy.fixed-delay.attempts',
    int(0),
    'an integer >= 0',
    'fixed-delay: restarts before the job fails',
  ),
  o('restart-strategy.fixed-delay.delay', parseDuration, DURATION, 'fixed-delay: wait before a restart'),
  o(
    'restart-strategy.exponential-delay.initial-backoff',
    parseDuration,
    DURATION,
    'exponential-delay: first wait',
  ),
  o(
    'restart-strategy.exponential-delay.max-backoff',
    parseDuration,
    DURATION,
    'exponential-delay: longest wait',
  ),
  o(
    'restart-strategy.exponential-delay.backoff-multiplier',
    num(1),
    'a number >= 1',
    'exponential-delay: growth factor',
  ),
  o(
    'restart-strategy.exponential-delay.jitter-factor',
    num(0),
    'a number >= 0',
    'exponential-delay: random jitter',
  ),
  o(
    'restart-strategy.exponential-delay.reset-backoff-threshold',
    parseDuration,
    DURATION,
    'exponential-delay: reset after running this long',
  ),
  o(
    'restart-strategy.exponential-delay.attempts-before-reset-backoff',
    int(0),
    'an integer >= 0',
    'exponential-delay: restarts allowed before a reset',
  ),
  o(
    'restart-strategy.failure-rate.max-failures-per-interval',
    int(1),
    'an integer >= 1',
    'failure-rate: failures allowed per interval',
  ),
  o(
    'restart-strategy.failure-rate.failure-rate-interval',
    parseDuration,
    DURATION,
    'failure-rate: the interval',
  ),
  o('restart-strategy.failure-rate.delay', parseDuration, DURATION, 'failure-rate: wait before a restart'),
  // S3 (and MinIO)
  o(
    's3.endpoint',
    httpUrl,
    'an http(s) URL such as http://minio:9000',
    'S3 endpoint for MinIO and other S3-compatible servers (default: AWS)',
  ),
  o('s3.region', text, 'a region such as us-east-1', 'S3 region', {
    default: 'us-east-1',
    envAliases: ['AWS_REGION'],
  }),
  o(
    's3.path-style-access',
    bool,
    'true or false',
    'path-style bucket addressing (default: true when an endpoint is set)',
    { envAliases: ['WEIR_S3_PATH_STYLE'] },
  ),
  o(
    's3.access-key',
    text,
    'an access key id',
    "S3 access key (else the AWS SDK's default credential chain)",
    { secret: true, envAliases: ['AWS_ACCESS_KEY_ID'] },
  ),
  o('s3.secret-key', text, 'a secret access key', 'S3 secret key', {
    secret: true,
    envAliases: ['AWS_SECRET_ACCESS_KEY'],
  }),
  // security
  o(
    'security.ssl.enabled',
    bool,
    'true or false',
    'TLS on every gRPC server and channel (default: on when a CA or certificate is given)',
  ),
  o('security.ssl.ca', file, 'a PEM file', 'the cluster CA every peer must chain to', { path: true }),
  o('security.ssl.cert', file, 'a PEM file', 'the certificate this process presents', { path: true }),
  o('security.ssl.key', file, 'a PEM file', 'the private key of that certificate', { path: true }),
  o('security.auth.token-file', file, 'a file path', 'file holding the bearer token for the Dispatcher', {
    path: true,
  }),
  o(
    'security.auth.token',
    text,
    'a token of at least 16 characters',
    'the bearer token itself (prefer token-file or the environment)',
    { secret: true, envAliases: ['WEIR_AUTH_TOKEN'] },
  ),
  o(
    'security.storage.allowed-dirs',
    stringList,
    'a list of directories or s3:// URIs',
    'where savepoints may be written and restored from, besides the savepoint directory',
  ),
  o(
    'security.insecure',
    bool,
    'true or false',
    'allow listening on a non-loopback address without TLS (and, for the JobManager, a token)',
    { default: false },
  ),
  o('rpc.max-message-size', parseSize, SIZE, 'largest gRPC message', { default: 128 << 20 }),
] as const;

type Registry = (typeof CONFIG_OPTIONS)[number];
/** Every configuration key (`heartbeat.interval`, ...). */
export type ConfigKey = Registry['key'];
/**
 * The parsed type of a key, derived from its registry entry: the parser's type, and possibly
 * undefined only when the entry has no default (`Setting<'heartbeat.interval'>` is number).
 */
export type Setting<K extends ConfigKey> =
  Extract<Registry, { key: K }> extends TypedOption<infer T, K, infer D>
    ? [D] extends [undefined]
      ? T | undefined
      : T
    : never;
/** Every setting of a process, complete (defaults filled in from the registry) and typed by key. */
export type Settings = { readonly [K in ConfigKey]: Setting<K> };

/** The registry's defaults: the settings of a process given no file, no variable and no flag. */
export function defaultSettings(): Settings {
  return Object.fromEntries(CONFIG_OPTIONS.map((opt) => [opt.key, opt.default])) as unknown as Settings;
}

const BY_KEY = new Map<string, ConfigOption>();
for (const opt of CONFIG_OPTIONS) {
  BY_KEY.set(opt.key, opt);
  for (const a of opt.keyAliases ?? []) BY_KEY.set(a, opt);
}

/** The environment variable of a key: `state.checkpoints.dir` -> `WEIR_STATE_CHECKPOINTS_DIR`. */
export function envVarForKey(key: string): string {
  return `WEIR_${key.replace(/[.-]/g, '_').toUpperCase()}`;
}

const BY_ENV = new Map<string, ConfigOption>();
for (const opt of CONFIG_OPTIONS) {
  const name = envVarForKey(opt.key);
  const clash = BY_ENV.get(name);
  if (clash)
    throw new Error(`configuration keys ${clash.key} and ${opt.key} map to the same variable ${name}`);
  BY_ENV.set(name, opt);
}

/** WEIR_* variables that are not configuration keys. */
export const OTHER_ENV_VARS: Readonly<Record<string, string>> = {
  WEIR_JOBMANAGER: 'the JobManager address client commands use (HOST:PORT)',
};

/** First segments of WEIR_* names that belong to configuration keys: an unknown variable under one of them is an error. */
const CONFIG_NAMESPACES = new Set([
  'EXECUTION',
  'STATE',
  'RESTART',
  'HEARTBEAT',
  'HIGH',
  'SECURITY',
  'RPC',
  'S3',
  'LOG',
  'JOBMANAGER',
  'TASKMANAGER',
  'SLOT',
  'PROCESS',
  'AUTH',
]);

export function findOption(key: string): ConfigOption | undefined {
  return BY_KEY.get(key);
}

/** The option an environment variable sets (its systematic name or an alias), or undefined. */
export function optionForEnvVar(name: string): ConfigOption | undefined {
  return BY_ENV.get(name) ?? CONFIG_OPTIONS.find((opt) => opt.envAliases?.includes(name));
}

/** Every environment variable weir understands, with what it does. */
export function knownEnvVars(): Map<string, string> {
  const m = new Map<string, string>();
  for (const opt of CONFIG_OPTIONS) {
    m.set(envVarForKey(opt.key), opt.key);
    for (const a of opt.envAliases ?? []) m.set(a, `${opt.key} (alias)`);
  }
  for (const [k, v] of Object.entries(OTHER_ENV_VARS)) m.set(k, v);
  return m;
}

function distance(a: string, b: string): number {
  const d = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = d[0]!;
    d[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = d[j]!;
      d[j] = Math.min(d[j]! + 1, d[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return d[b.length]!;
}

function closest(name: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const dd = distance(name.toLowerCase(), c.toLowerCase());
    if (dd < bestD) [best, bestD] = [c, dd];
  }
  return best !== undefined && bestD <= Math.max(3, Math.floor(name.length / 4)) ? best : undefined;
}

function unknownKey(key: string, where: string): Error {
  const near = closest(key, BY_KEY.keys());
  return new Error(
    `Unknown configuration key '${key}' in ${where}${near ? ` (did you mean '${near}'?)` : ''}; known keys: ${CONFIG_OPTIONS.map((x) => x.key).join(', ')}`,
  );
}

/** Parses one value, with an error naming where it came from. */
function parseValue(opt: ConfigOption, raw: unknown, label: string, where: string): unknown {
  try {
    return opt.parse(raw, label);
  } catch (e) {
    throw new Error(`${(e as Error).message}${where ? ` (${where})` : ''}`);
  }
}

// ---------------------------------------------------------------- layers

export type ConfigSource = 'default' | `file ${string}` | `env ${string}` | `flag ${string}`;

export interface ConfigValue {
  value: unknown;
  source: ConfigSource;
}

/** A flag value for a key: `flag` names the flag for messages and `weir config`. */
export interface FlagValue {
  key: string;
  value: unknown;
  flag: string;
}

function flatten(obj: unknown, prefix = '', out: Record<string, unknown> = {}): Record<string, unknown> {
  // nested mappings are keys too (`state: { backend: { type: rocksdb } }`); lists and scalars are values
  if (obj && typeof obj === 'object' && !Array.isArray(obj)) {
    for (const [k, v] of Object.entries(obj)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  } else if (prefix) {
    out[prefix] = obj;
  }
  return out;
}

/** The settings of a configuration file: key -> parsed value (relative paths resolved against `baseDir`). */
export function parseConfigFile(text: string, source: string, baseDir = process.cwd()): Map<string, unknown> {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (e) {
    throw new Error(`Cannot parse the configuration file ${source}: ${(e as Error).message}`);
  }
  if (doc !== null && doc !== undefined && (typeof doc !== 'object' || Array.isArray(doc))) {
    throw new Error(`The configuration file ${source} must be a YAML mapping of keys to values`);
  }
  const out = new Map<string, unknown>();
  for (const [key, raw] of Object.entries(flatten(doc ?? {}))) {
    const opt = BY_KEY.get(key);
    if (!opt) throw unknownKey(key, source);
    let v = opt.parse(raw, key);
    if (opt.path) v = path.resolve(baseDir, v as string);
    out.set(opt.key, v);
  }
  return out;
}

function readConfigFile(file: string): Map<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`Cannot read the configuration file ${file}: ${(e as Error).message}`);
  }
  return parseConfigFile(text, file, path.dirname(path.resolve(file)));
}

/**
 * The settings of the environment: WEIR_<KEY> variables and the older aliases. An unknown
 * WEIR_* variable in a configuration namespace (WEIR_STATE_..., WEIR_S3_..., ...) is an error.
 */
export function parseConfigEnv(env: NodeJS.ProcessEnv = process.env): Map<string, ConfigValue> {
  const out = new Map<string, ConfigValue>();
  const known = knownEnvVars();
  for (const [name, raw] of Object.entries(env)) {
    if (raw === undefined || !name.startsWith('WEIR_')) continue;
    if (OTHER_ENV_VARS[name]) continue;
    const opt = BY_ENV.get(name);
    if (opt) {
      if (raw === '') continue;
      out.set(opt.key, {
        value: parseValue(opt, raw, name, `environment variable for ${opt.key}`),
        source: `env ${name}`,
      });
      continue;
    }
    if (optionForEnvVar(name)) continue; // an alias, below
    const ns = name.slice(5).split('_')[0]!;
    if (CONFIG_NAMESPACES.has(ns)) {
      const near = closest(name, known.keys());
      throw new Error(
        `Unknown environment variable ${name}: it is in weir's configuration namespace but sets no key${near ? ` (did you mean ${near}, for ${known.get(near)}?)` : ''}. ` +
          'Variables are WEIR_ + the key in upper case with . and - as _, e.g. WEIR_STATE_CHECKPOINTS_DIR for state.checkpoints.dir (see `weir config --describe`)',
      );
    }
  }
  // aliases: only where the systematic variable is absent; earlier aliases win
  for (const opt of CONFIG_OPTIONS) {
    if (out.has(opt.key)) continue;
    for (const alias of opt.envAliases ?? []) {
      const raw = env[alias];
      if (raw === undefined || raw === '') continue;
      out.set(opt.key, {
        value: parseValue(opt, raw, alias, `environment variable for ${opt.key}`),
        source: `env ${alias}`,
      });
      break;
    }
  }
  return out;
}

/** Parses `-D key=value` flags. */
export function parseDefinitions(defs: string[] | undefined): FlagValue[] {
  return (defs ?? []).map((d) => {
    const i = d.indexOf('=');
    if (i <= 0)
      throw new Error(
        `Invalid -D ${JSON.stringify(d)}: expected -D key=value, e.g. -D state.checkpoints.dir=s3://weir/checkpoints`,
      );
    const key = d.slice(0, i).trim();
    const opt = BY_KEY.get(key);
    if (!opt) throw unknownKey(key, `-D ${d}`);
    return { key: opt.key, value: d.slice(i + 1), flag: `-D ${key}` };
  });
}

/** The effective configuration of one process: each key's value and where it came from. */
export class EffectiveConfig {
  constructor(
    readonly values: ReadonlyMap<string, ConfigValue>,
    readonly file?: string,
  ) {}

  /** The value of a key, typed by its registry entry; undefined only for a key without a default that is not set. */
  get<K extends ConfigKey>(key: K): Setting<K> {
    return this.values.get(key)?.value as Setting<K>;
  }

  /** Every setting, complete and typed, built from the registry (no field is restated). */
  get settings(): Settings {
    return Object.fromEntries(
      CONFIG_OPTIONS.map((opt) => [opt.key, this.values.get(opt.key)?.value]),
    ) as unknown as Settings;
  }

  source(key: string): ConfigSource | undefined {
    return this.values.get(key)?.source;
  }

  /** True when the key was set by a flag, the environment or the file (not a default). */
  isSet(key: string): boolean {
    const s = this.values.get(key)?.source;
    return s !== undefined && s !== 'default';
  }

  /** Every key (set or not) with its value, masked when secret, and its source. */
  describe(): Array<{ key: string; value: unknown; source: ConfigSource | 'unset'; env: string }> {
    return CONFIG_OPTIONS.map((opt) => {
      const v = this.values.get(opt.key);
      return {
        key: opt.key,
        value: v === undefined ? undefined : opt.secret ? '***' : v.value,
        source: v?.source ?? 'unset',
        env: envVarForKey(opt.key),
      };
    });
  }

  /** The structured view the processes use. */
  toClusterConfig(): ClusterConfig {
    return buildClusterConfig(this, this.file ?? 'the configuration');
  }
}

/**
 * Resolves the configuration: defaults, then the file, then the environment, then flags.
 * Secret values are registered so logs mask them.
 */
export function resolveConfig(
  opts: { file?: string; env?: NodeJS.ProcessEnv; flags?: FlagValue[] } = {},
): EffectiveConfig {
  const values = new Map<string, ConfigValue>();
  for (const opt of CONFIG_OPTIONS)
    if (opt.default !== undefined) values.set(opt.key, { value: opt.default, source: 'default' });
  if (opts.file)
    for (const [k, v] of readConfigFile(opts.file)) values.set(k, { value: v, source: `file ${opts.file}` });
  for (const [k, v] of parseConfigEnv(opts.env ?? process.env)) values.set(k, v);
  for (const f of opts.flags ?? []) {
    const opt = BY_KEY.get(f.key);
    if (!opt) throw unknownKey(f.key, f.flag);
    if (f.value === undefined) continue;
    values.set(opt.key, {
      value: parseValue(opt, f.value, f.flag, `flag for ${opt.key}`),
      source: `flag ${f.flag}`,
    });
  }
  for (const opt of CONFIG_OPTIONS)
    if (opt.secret) registerSecret(values.get(opt.key)?.value as string | undefined);
  return new EffectiveConfig(values, opts.file);
}

// ---------------------------------------------------------------- the structured view

/**
 * What the configuration says about jobs and security, translated into the forms the job
 * settings and the transport use (`CheckpointSettings`, the restart strategy, `SecurityConfig`).
 * It gives defaults for jobs; what a job sets in code wins. Only keys that were set are in it.
 * Process settings (ports, heartbeats, timeouts, RocksDB memory, S3, the log level) are not
 * restated here: the processes take them from `EffectiveConfig.settings`.
 */
export interface ClusterConfig {
  checkpoint: Partial<CheckpointSettings>;
  checkpointDir?: string;
  savepointDir?: string;
  /** state.backend.type (or state.backend): the JobManager's default for jobs that set none */
  stateBackend?: StateBackendType;
  /** state.backend.incremental: incremental checkpoints for jobs that do not say */
  incrementalCheckpoints?: boolean;
  /** restart-strategy.type and the settings of that type over Flink's defaults */
  restartStrategy?: RestartStrategyConfiguration;
  /** where running jobs are kept so a restarted JobManager resumes them (Flink's high-availability.storageDir) */
  jobStore?: string;
  /** high-availability.type: none turns the job store off */
  jobStoreEnabled?: boolean;
  /** `security.*` and `rpc.*` keys: transport security, authentication, message sizes */
  security: SecurityConfig;
}

/** What the configuration says about security; file paths are resolved against the file's directory. */
export interface SecurityConfig {
  /** security.ssl.enabled: TLS on every gRPC server and channel, mutual between cluster processes */
  sslEnabled?: boolean;
  /** security.ssl.ca: PEM of the cluster CA that every peer's certificate must chain to */
  sslCa?: string;
  /** security.ssl.cert: PEM certificate (chain) this process presents */
  sslCert?: string;
  /** security.ssl.key: PEM private key of that certificate */
  sslKey?: string;
  /** security.auth.token-file: file holding the bearer token clients must present to the Dispatcher */
  tokenFile?: string;
  /** security.auth.token: the token itself (WEIR_AUTH_TOKEN) */
  token?: string;
  /** security.storage.allowed-dirs: where savepoints may be written and restored from, besides the savepoint directory */
  allowedDirs?: string[];
  /** rpc.max-message-size: largest gRPC message sent or received, in bytes */
  maxMessageBytes?: number;
  /** security.insecure: listening on a non-loopback address without TLS is allowed */
  insecure?: boolean;
}

const CHECKPOINT_FIELDS: Partial<Record<ConfigKey, keyof CheckpointSettings>> = {
  'execution.checkpointing.interval': 'intervalMs',
  'execution.checkpointing.mode': 'mode',
  'execution.checkpointing.timeout': 'timeoutMs',
  'execution.checkpointing.min-pause': 'minPauseBetweenCheckpointsMs',
  'execution.checkpointing.max-concurrent-checkpoints': 'maxConcurrentCheckpoints',
  'execution.checkpointing.tolerable-failed-checkpoints': 'tolerableFailedCheckpoints',
  'execution.checkpointing.externalized-checkpoint-retention': 'externalizedRetention',
  'state.checkpoints.num-retained': 'retainedCheckpoints',
  'state.checkpoints.dir': 'storage',
};

const RESTART_FIELDS: Partial<Record<ConfigKey, [RestartStrategyType, string]>> = {
  'restart-strategy.fixed-delay.attempts': ['fixed-delay', 'attempts'],
  'restart-strategy.fixed-delay.delay': ['fixed-delay', 'delayMs'],
  'restart-strategy.exponential-delay.initial-backoff': ['exponential-delay', 'initialBackoffMs'],
  'restart-strategy.exponential-delay.max-backoff': ['exponential-delay', 'maxBackoffMs'],
  'restart-strategy.exponential-delay.backoff-multiplier': ['exponential-delay', 'multiplier'],
  'restart-strategy.exponential-delay.jitter-factor': ['exponential-delay', 'jitterFactor'],
  'restart-strategy.exponential-delay.reset-backoff-threshold': [
    'exponential-delay',
    'resetBackoffThresholdMs',
  ],
  'restart-strategy.exponential-delay.attempts-before-reset-backoff': ['exponential-delay', 'attempts'],
  'restart-strategy.failure-rate.max-failures-per-interval': ['failure-rate', 'maxFailuresPerInterval'],
  'restart-strategy.failure-rate.failure-rate-interval': ['failure-rate', 'failureRateIntervalMs'],
  'restart-strategy.failure-rate.delay': ['failure-rate', 'delayMs'],
};

/** Only values that were set (not defaults) go into the structured view, except where noted. */
function buildClusterConfig(c: EffectiveConfig, source: string): ClusterConfig {
  const set = <K extends ConfigKey>(key: K): Setting<K> | undefined =>
    c.isSet(key) ? c.get(key) : undefined;
  const config: ClusterConfig = { checkpoint: {}, security: {} };
  for (const [key, field] of Object.entries(CHECKPOINT_FIELDS) as Array<[ConfigKey, string]>) {
    const v = set(key);
    if (v !== undefined) (config.checkpoint as Record<string, unknown>)[field] = v;
  }
  if (config.checkpoint.storage) config.checkpointDir = config.checkpoint.storage;
  const assign = <O extends object>(target: O, field: keyof O, key: ConfigKey, always = false): void => {
    const v = always ? c.get(key) : set(key);
    if (v !== undefined) (target as Record<string, unknown>)[field as string] = v;
  };
  assign(config, 'savepointDir', 'state.savepoints.dir');
  assign(config, 'stateBackend', 'state.backend.type');
  assign(config, 'incrementalCheckpoints', 'state.backend.incremental');
  assign(config, 'jobStore', 'high-availability.storageDir');
  if (c.get('high-availability.type') === 'none') config.jobStoreEnabled = false;
  assign(config.security, 'sslEnabled', 'security.ssl.enabled');
  assign(config.security, 'sslCa', 'security.ssl.ca');
  assign(config.security, 'sslCert', 'security.ssl.cert');
  assign(config.security, 'sslKey', 'security.ssl.key');
  assign(config.security, 'tokenFile', 'security.auth.token-file');
  assign(config.security, 'token', 'security.auth.token');
  assign(config.security, 'allowedDirs', 'security.storage.allowed-dirs');
  assign(config.security, 'maxMessageBytes', 'rpc.max-message-size');
  assign(config.security, 'insecure', 'security.insecure');

  const type = set('restart-strategy.type');
  if (type) {
    const settings: Record<string, unknown> = {};
    for (const [key, [t, field]] of Object.entries(RESTART_FIELDS) as Array<[ConfigKey, [string, string]]>) {
      const v = set(key);
      if (t === type && v !== undefined) settings[field] = v;
    }
    try {
      config.restartStrategy = validateRestartStrategy({
        ...RESTART_STRATEGY_DEFAULTS[type],
        ...settings,
      } as RestartStrategyConfiguration);
    } catch (e) {
      throw new Error(`Invalid restart strategy in ${source}: ${(e as Error).message}`);
    }
  }
  return config;
}

/** `baseDir`: relative file paths in security keys are resolved against it (the file's directory). */
export function parseClusterConfig(text: string, source: string, baseDir = process.cwd()): ClusterConfig {
  const values = new Map<string, ConfigValue>();
  for (const [k, v] of parseConfigFile(text, source, baseDir))
    values.set(k, { value: v, source: `file ${source}` });
  return buildClusterConfig(new EffectiveConfig(values, source), source);
}

/** The file alone (no environment, no flags). */
export function loadClusterConfig(file: string): ClusterConfig {
  const values = new Map<string, ConfigValue>();
  for (const [k, v] of readConfigFile(file)) values.set(k, { value: v, source: `file ${file}` });
  return buildClusterConfig(new EffectiveConfig(values, file), file);
}

/**
 * The address a TaskManager advertises when none is configured: the bind host, or, when it
 * binds every interface, this machine's first non-internal IPv4 address (a container's own
 * address), else its host name.
 */
export function defaultAdvertisedHost(bindHost: string): string {
  if (bindHost !== '0.0.0.0' && bindHost !== '::' && bindHost !== '[::]') return bindHost;
  for (const addrs of Object.values(os.networkInterfaces())) {
    for (const a of addrs ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return os.hostname();
}
