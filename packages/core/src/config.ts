/**
 * weir's configuration: one registry of settings (`CONFIG_OPTIONS` in config-registry.ts, Flink's
 * key names; value parsers in config-values.ts), read
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
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type * as YamlModule from 'yaml';
import os from 'node:os';
import path from 'node:path';
import type { RestartStrategyConfiguration, RestartStrategyType, StateBackendType } from '@weir/api';
import {
  RESTART_STRATEGY_DEFAULTS,
  validateRestartStrategy,
  type CheckpointSettings,
} from '@weir/api/internal';
import { registerSecret } from './secrets.js';
import {
  BY_ENV,
  BY_KEY,
  CONFIG_NAMESPACES,
  CONFIG_OPTIONS,
  type ConfigKey,
  OTHER_ENV_VARS,
  type Setting,
  type Settings,
  envVarForKey,
  knownEnvVars,
  optionForEnvVar,
} from './config-registry.js';
import type { ConfigOption } from './config-values.js';

export {
  CONFIG_OPTIONS,
  defaultSettings,
  envVarForKey,
  findOption,
  knownEnvVars,
  optionForEnvVar,
  OTHER_ENV_VARS,
  type ConfigKey,
  type Setting,
  type Settings,
} from './config-registry.js';
export {
  LOG_LEVELS,
  parseDuration,
  parseMemorySize,
  parseSize,
  type ConfigOption,
  type LogLevel,
  type Parser,
} from './config-values.js';

/**
 * The YAML parser, loaded when a configuration file is read: its 72 modules are a fifth of what
 * every weir process and slot worker loads at start, most of which never read a file.
 */
const yaml = (): typeof YamlModule => createRequire(import.meta.url)('yaml') as typeof YamlModule;

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
    doc = yaml().parse(text);
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
  /** security.ssl.internal.verify-hostname: false skips the host name check on channels between cluster processes */
  verifyInternalHostname?: boolean;
  /** security.cluster.secret-file: file holding the shared secret of the cluster's own processes */
  clusterSecretFile?: string;
  /** security.cluster.secret: that secret itself (WEIR_CLUSTER_SECRET) */
  clusterSecret?: string;
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
  'execution.checkpointing.unaligned.enabled': 'unaligned',
  'execution.checkpointing.aligned-checkpoint-timeout': 'alignedCheckpointTimeoutMs',
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
  assign(config.security, 'verifyInternalHostname', 'security.ssl.internal.verify-hostname');
  assign(config.security, 'clusterSecretFile', 'security.cluster.secret-file');
  assign(config.security, 'clusterSecret', 'security.cluster.secret');
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
