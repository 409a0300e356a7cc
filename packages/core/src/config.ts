import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import type { CheckpointSettings, StateBackendType } from '@weir/api';

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
  /** state.backend.rocksdb.localdir: a TaskManager's local state directory root */
  rocksdbLocalDir?: string;
  /** state.backend.rocksdb.block.cache-size, bytes */
  rocksdbBlockCacheSize?: number;
  /** state.backend.rocksdb.writebuffer.size, bytes */
  rocksdbWriteBufferSize?: number;
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

const MEMORY_UNITS: Record<string, number> = { b: 1, k: 1024, kb: 1024, m: 1024 ** 2, mb: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3 };

/** A memory size in bytes: a number (bytes) or "64 mb", "512kb", "1g" (Flink's units, powers of 1024). */
export function parseMemorySize(v: unknown, key: string): number {
  if (typeof v === 'number' && Number.isInteger(v) && v > 0) return v;
  const m = typeof v === 'string' ? /^\s*(\d+(?:\.\d+)?)\s*(b|k|kb|m|mb|g|gb)?\s*$/i.exec(v) : null;
  const bytes = m ? Math.round(Number(m[1]) * MEMORY_UNITS[(m[2] ?? 'b').toLowerCase()]!) : 0;
  if (!(bytes > 0)) fail(key, 'a positive memory size such as 8388608, "64 mb", "512kb" or "1g"', v);
  return bytes;
}

const int = (min: number): Parser => (v, key) => (Number.isInteger(v) && (v as number) >= min ? v : fail(key, `an integer >= ${min}`, v));
const oneOf = (...values: string[]): Parser => (v, key) => (typeof v === 'string' && values.includes(v) ? v : fail(key, values.join(' or '), v));
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

const OTHER_KEYS = [
  'state.savepoints.dir', 'state.backend.type', 'state.backend', 'state.backend.rocksdb.localdir',
  'state.backend.rocksdb.block.cache-size', 'state.backend.rocksdb.writebuffer.size',
];

function flatten(obj: unknown, prefix = '', out: Record<string, unknown> = {}): Record<string, unknown> {
  if (obj && typeof obj === 'object' && !Array.isArray(obj)) {
    for (const [k, v] of Object.entries(obj)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  } else if (prefix) {
    out[prefix] = obj;
  }
  return out;
}

export function parseClusterConfig(text: string, source: string): ClusterConfig {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (e) {
    throw new Error(`Cannot parse the configuration file ${source}: ${(e as Error).message}`);
  }
  const config: ClusterConfig = { checkpoint: {} };
  for (const [key, value] of Object.entries(flatten(doc ?? {}))) {
    const known = CHECKPOINT_KEYS[key];
    if (known) {
      (config.checkpoint as Record<string, unknown>)[known[0]] = known[1](value, key);
    } else if (key === 'state.savepoints.dir') {
      config.savepointDir = storageUri(value, key) as string;
    } else if (key === 'state.backend.type' || key === 'state.backend') {
      // Flink's modern key and its older one; 'hashmap' is Flink's name for the heap backend
      const v = oneOf('heap', 'hashmap', 'rocksdb')(value, key);
      config.stateBackend = v === 'rocksdb' ? 'rocksdb' : 'heap';
    } else if (key === 'state.backend.rocksdb.localdir') {
      config.rocksdbLocalDir = typeof value === 'string' && value !== '' ? value : fail(key, 'a directory', value);
    } else if (key === 'state.backend.rocksdb.block.cache-size') {
      config.rocksdbBlockCacheSize = parseMemorySize(value, key);
    } else if (key === 'state.backend.rocksdb.writebuffer.size') {
      config.rocksdbWriteBufferSize = parseMemorySize(value, key);
    } else {
      throw new Error(`Unknown configuration key '${key}' in ${source}; known keys: ${[...Object.keys(CHECKPOINT_KEYS), ...OTHER_KEYS].join(', ')}`);
    }
  }
  if (config.checkpoint.storage) config.checkpointDir = config.checkpoint.storage;
  return config;
}

export function loadClusterConfig(file: string): ClusterConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`Cannot read the configuration file ${file}: ${(e as Error).message}`);
  }
  return parseClusterConfig(text, file);
}
