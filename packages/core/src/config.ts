import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { RESTART_STRATEGY_DEFAULTS, validateRestartStrategy, type CheckpointSettings, type RestartStrategyConfiguration, type RestartStrategyType, type StateBackendType } from '@weir/api';

/**
 * The cluster configuration file (YAML, Flink's key names, flat `a.b.c: v` or nested). It
 * gives defaults; what a job sets in code wins, and command-line flags win over the file.
 */
export interface ClusterConfig {
  checkpoint: Partial<CheckpointSettings>;
  checkpointDir?: string;
  savepointDir?: string;
  /** state.backend.type (or state.backend): the JobManager's default for jobs that set none */
  stateBackend?: StateBackendType;
  /** state.backend.incremental: incremental checkpoints for jobs that do not say */
  incrementalCheckpoints?: boolean;
  /** state.backend.rocksdb.localdir: a TaskManager's local state directory root */
  rocksdbLocalDir?: string;
  /** state.backend.rocksdb.block.cache-size, bytes */
  rocksdbBlockCacheSize?: number;
  /** state.backend.rocksdb.writebuffer.size, bytes */
  rocksdbWriteBufferSize?: number;
  /** restart-strategy.type and the settings of that type over Flink's defaults */
  restartStrategy?: RestartStrategyConfiguration;
  heartbeatIntervalMs?: number;
  heartbeatTimeoutMs?: number;
  /** where running jobs are kept so a restarted JobManager resumes them (Flink's high-availability.storageDir) */
  jobStore?: string;
  /** `security.*` and `rpc.*` keys: transport security, authentication, message sizes */
  security: SecurityConfig;
}

/** What the configuration file says about security; file paths are resolved against the file's directory. */
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
  /** security.storage.allowed-dirs: where savepoints may be written and restored from, besides the savepoint directory */
  allowedDirs?: string[];
  /** rpc.max-message-size: largest gRPC message sent or received, in bytes */
  maxMessageBytes?: number;
}

type Parser = (v: unknown, key: string) => unknown;

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

/** A memory size in bytes (Flink's units, powers of 1024); the same parser as rpc.max-message-size. */
export function parseMemorySize(v: unknown, key: string): number {
  return parseSize(v, key);
}

const int = (min: number): Parser => (v, key) => (Number.isInteger(v) && (v as number) >= min ? v : fail(key, `an integer >= ${min}`, v));
const oneOf = (...values: string[]): Parser => (v, key) => (typeof v === 'string' && values.includes(v) ? v : fail(key, values.join(' or '), v));
const bool: Parser = (v, key) => (typeof v === 'boolean' ? v : v === 'true' ? true : v === 'false' ? false : fail(key, 'true or false', v));
const file: Parser = (v, key) => (typeof v === 'string' && v.trim() !== '' ? v : fail(key, 'a file path', v));
const SIZE_UNITS: Record<string, number> = { b: 1, kb: 1024, k: 1024, kib: 1024, mb: 1 << 20, m: 1 << 20, mib: 1 << 20, gb: 1 << 30, g: 1 << 30, gib: 1 << 30 };

/** A size in bytes: a number, or "512 kb", "64 mb", "1 gb" (binary units). */
export function parseSize(v: unknown, key: string): number {
  if (typeof v === 'number' && Number.isInteger(v) && v > 0) return v;
  const m = typeof v === 'string' ? /^\s*(\d+(?:\.\d+)?)\s*([a-z]+)?\s*$/i.exec(v) : null;
  const unit = SIZE_UNITS[(m?.[2] ?? 'b').toLowerCase()];
  if (!m || !unit || Number(m[1]) <= 0) fail(key, 'a size such as 4194304, "512 kb" or "64 mb"', v);
  return Math.round(Number(m[1]) * unit);
}

const storageUri: Parser = (v, key) => (typeof v === 'string' && /^(file:\/\/\/|s3:\/\/)/.test(v) ? v : fail(key, 'file:///path or s3://bucket/prefix', v));

const CHECKPOINT_KEYS: Record<string, [keyof CheckpointSettings, Parser]> = {
  'execution.checkpointing.interval': ['intervalMs', parseDuration],
  'execution.checkpointing.mode': ['mode', oneOf('EXACTLY_ONCE', 'AT_LEAST_ONCE')],
  'execution.checkpointing.timeout': ['timeoutMs', parseDuration],
  'execution.checkpointing.min-pause': ['minPauseBetweenCheckpointsMs', parseDuration],
  'execution.checkpointing.max-concurrent-checkpoints': ['maxConcurrentCheckpoints', int(1)],
  'execution.checkpointing.tolerable-failed-checkpoints': ['tolerableFailedCheckpoints', int(0)],
  'execution.checkpointing.externalized-checkpoint-retention': ['externalizedRetention', oneOf('DELETE_ON_CANCELLATION', 'RETAIN_ON_CANCELLATION')],
  'state.checkpoints.num-retained': ['retainedCheckpoints', int(1)],
  'state.checkpoints.dir': ['storage', storageUri],
};

const RESTART_TYPES: Record<string, RestartStrategyType> = {
  none: 'none', off: 'none', disable: 'none', 'no-restart': 'none',
  'fixed-delay': 'fixed-delay', fixeddelay: 'fixed-delay',
  'exponential-delay': 'exponential-delay', exponentialdelay: 'exponential-delay',
  'failure-rate': 'failure-rate', failurerate: 'failure-rate',
};

const num = (min: number): Parser => (v, key) => (typeof v === 'number' && Number.isFinite(v) && v >= min ? v : fail(key, `a number >= ${min}`, v));

/** Settings of each restart strategy, under `restart-strategy.<type>.` */
const RESTART_KEYS: Record<string, [RestartStrategyType, string, Parser]> = {
  'restart-strategy.fixed-delay.attempts': ['fixed-delay', 'attempts', int(0)],
  'restart-strategy.fixed-delay.delay': ['fixed-delay', 'delayMs', parseDuration],
  'restart-strategy.exponential-delay.initial-backoff': ['exponential-delay', 'initialBackoffMs', parseDuration],
  'restart-strategy.exponential-delay.max-backoff': ['exponential-delay', 'maxBackoffMs', parseDuration],
  'restart-strategy.exponential-delay.backoff-multiplier': ['exponential-delay', 'multiplier', num(1)],
  'restart-strategy.exponential-delay.jitter-factor': ['exponential-delay', 'jitterFactor', num(0)],
  'restart-strategy.exponential-delay.reset-backoff-threshold': ['exponential-delay', 'resetBackoffThresholdMs', parseDuration],
  'restart-strategy.exponential-delay.attempts-before-reset-backoff': ['exponential-delay', 'attempts', int(0)],
  'restart-strategy.failure-rate.max-failures-per-interval': ['failure-rate', 'maxFailuresPerInterval', int(1)],
  'restart-strategy.failure-rate.failure-rate-interval': ['failure-rate', 'failureRateIntervalMs', parseDuration],
  'restart-strategy.failure-rate.delay': ['failure-rate', 'delayMs', parseDuration],
};

const OTHER_KEYS = [
  'state.savepoints.dir', 'restart-strategy.type', 'heartbeat.interval', 'heartbeat.timeout', 'high-availability.storageDir',
  'state.backend.type', 'state.backend', 'state.backend.incremental', 'state.backend.rocksdb.localdir', 'state.backend.rocksdb.block.cache-size', 'state.backend.rocksdb.writebuffer.size',
];

const SECURITY_KEYS: Record<string, [keyof SecurityConfig, Parser]> = {
  'security.ssl.enabled': ['sslEnabled', bool],
  'security.ssl.ca': ['sslCa', file],
  'security.ssl.cert': ['sslCert', file],
  'security.ssl.key': ['sslKey', file],
  'security.auth.token-file': ['tokenFile', file],
  'security.storage.allowed-dirs': ['allowedDirs', (v, key) => {
    const list = typeof v === 'string' ? v.split(',').map((x) => x.trim()).filter(Boolean) : v;
    return Array.isArray(list) && list.every((x) => typeof x === 'string' && x !== '') ? list : fail(key, 'a list of directories or s3:// URIs', v);
  }],
  'rpc.max-message-size': ['maxMessageBytes', parseSize],
};

const PATH_KEYS = new Set<keyof SecurityConfig>(['sslCa', 'sslCert', 'sslKey', 'tokenFile']);

function flatten(obj: unknown, prefix = '', out: Record<string, unknown> = {}): Record<string, unknown> {
  if (obj && typeof obj === 'object' && !Array.isArray(obj) && !(prefix in SECURITY_KEYS)) {
    for (const [k, v] of Object.entries(obj)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  } else if (prefix) {
    out[prefix] = obj;
  }
  return out;
}

/** `baseDir`: relative file paths in security keys are resolved against it (the file's directory). */
export function parseClusterConfig(text: string, source: string, baseDir = process.cwd()): ClusterConfig {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (e) {
    throw new Error(`Cannot parse the configuration file ${source}: ${(e as Error).message}`);
  }
  const config: ClusterConfig = { checkpoint: {}, security: {} };
  let restartType: RestartStrategyType | undefined;
  const restartSettings: Partial<Record<RestartStrategyType, Record<string, unknown>>> = {};
  for (const [key, value] of Object.entries(flatten(doc ?? {}))) {
    const known = CHECKPOINT_KEYS[key];
    const restart = RESTART_KEYS[key];
    if (known) {
      (config.checkpoint as Record<string, unknown>)[known[0]] = known[1](value, key);
    } else if (restart) {
      (restartSettings[restart[0]] ??= {})[restart[1]] = restart[2](value, key);
    } else if (key === 'restart-strategy.type') {
      restartType = RESTART_TYPES[String(value).toLowerCase()] ?? fail(key, 'none, fixed-delay, exponential-delay or failure-rate', value);
    } else if (SECURITY_KEYS[key]) {
      const [field, parse] = SECURITY_KEYS[key]!;
      let v = parse(value, key);
      if (PATH_KEYS.has(field)) v = path.resolve(baseDir, v as string);
      (config.security as Record<string, unknown>)[field] = v;
    } else if (key === 'state.savepoints.dir') {
      config.savepointDir = storageUri(value, key) as string;
    } else if (key === 'state.backend.type' || key === 'state.backend') {
      // Flink's modern key and its older one; 'hashmap' is Flink's name for the heap backend
      const v = oneOf('heap', 'hashmap', 'rocksdb')(value, key);
      config.stateBackend = v === 'rocksdb' ? 'rocksdb' : 'heap';
    } else if (key === 'state.backend.incremental') {
      config.incrementalCheckpoints = bool(value, key) as boolean;
    } else if (key === 'state.backend.rocksdb.localdir') {
      config.rocksdbLocalDir = typeof value === 'string' && value !== '' ? value : fail(key, 'a directory', value);
    } else if (key === 'state.backend.rocksdb.block.cache-size') {
      config.rocksdbBlockCacheSize = parseMemorySize(value, key);
    } else if (key === 'state.backend.rocksdb.writebuffer.size') {
      config.rocksdbWriteBufferSize = parseMemorySize(value, key);
    } else if (key === 'high-availability.storageDir') {
      config.jobStore = storageUri(value, key) as string;
    } else if (key === 'heartbeat.interval') {
      config.heartbeatIntervalMs = parseDuration(value, key);
    } else if (key === 'heartbeat.timeout') {
      config.heartbeatTimeoutMs = parseDuration(value, key);
    } else {
      throw new Error(`Unknown configuration key '${key}' in ${source}; known keys: ${[...Object.keys(CHECKPOINT_KEYS), ...Object.keys(RESTART_KEYS), ...OTHER_KEYS, ...Object.keys(SECURITY_KEYS)].join(', ')}`);
    }
  }
  if (config.checkpoint.storage) config.checkpointDir = config.checkpoint.storage;
  if (restartType) {
    try {
      config.restartStrategy = validateRestartStrategy({ ...RESTART_STRATEGY_DEFAULTS[restartType], ...restartSettings[restartType] } as RestartStrategyConfiguration);
    } catch (e) {
      throw new Error(`Invalid restart strategy in ${source}: ${(e as Error).message}`);
    }
  }
  return config;
}

export function loadClusterConfig(file: string): ClusterConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`Cannot read the configuration file ${file}: ${(e as Error).message}`);
  }
  return parseClusterConfig(text, file, path.dirname(path.resolve(file)));
}
