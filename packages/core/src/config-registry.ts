import {
  type ConfigOption,
  DURATION,
  LOG_LEVELS,
  type Parser,
  SIZE,
  STORAGE,
  bool,
  dir,
  file,
  host,
  httpUrl,
  int,
  num,
  oneOf,
  parseDuration,
  parseSize,
  restartType,
  stateBackend,
  storageUri,
  stringList,
  text,
} from './config-values.js';

/** The registry of every setting weir reads (Flink's key names), and the lookups over it. */
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
  o('rest.port', int(0, 65535), 'a port (0: any free port)', "the JobManager's REST API and dashboard port", {
    default: 8081,
  }),
  o(
    'rest.address',
    host,
    'an address to listen on (0.0.0.0: all)',
    'the interface the REST API listens on (a non-loopback address needs TLS and a token, or --insecure)',
    { default: '127.0.0.1' },
  ),
  o(
    'rest.enabled',
    bool,
    'true or false',
    'serve the REST API, the dashboard and /metrics on the JobManager',
    {
      default: true,
    },
  ),
  o(
    'metrics.reporter.prometheus.port',
    int(0, 65535),
    'a port (0: any free port)',
    "a TaskManager's Prometheus endpoint, GET /metrics (unset: none); it listens on taskmanager.bind-host",
  ),
  o(
    'process.jobmanager.working-dir',
    dir,
    'a directory',
    "the JobManager's working directory (job bundles it plans for split enumerators); unset: the system's temporary directory",
  ),
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
    'taskmanager.slot.prewarm',
    bool,
    'true or false',
    "start a worker thread with the job's bundle planned in each free slot while a job runs, so a task moved there on failover starts without that work; a slot whose tasks ended gets a started worker for the next job",
    { default: true },
  ),
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
    'pipeline.auto-watermark-interval',
    parseDuration,
    DURATION,
    'how often sources and timestamp assigners emit watermarks (a job may set its own)',
    { default: 200 },
  ),
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
  o(
    'execution.checkpointing.unaligned.enabled',
    bool,
    'true or false',
    'barriers overtake queued records, which are stored with the checkpoint (EXACTLY_ONCE only; savepoints stay aligned)',
  ),
  o(
    'execution.checkpointing.aligned-checkpoint-timeout',
    parseDuration,
    DURATION,
    'with unaligned checkpoints: start aligned, switch to unaligned when alignment takes longer (0: unaligned at once)',
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
  o(
    'state.backend.local-recovery',
    bool,
    'true or false',
    "keep a copy of each task's latest checkpoint files on the TaskManager's local disk; a task restarted on the same TaskManager restores from it and reads checkpoint storage only for what is missing or damaged",
    { default: false },
  ),
  o(
    'state.backend.rocksdb.native-checkpoints',
    bool,
    'true or false',
    "RocksDB checkpoints upload the database's own files (Flink's incremental RocksDB checkpoints): only table files the last completed checkpoint did not have, and a restore at the same parallelism downloads and opens the database instead of writing every row again; savepoints stay in the canonical format",
    { default: true },
  ),
  o(
    'taskmanager.state.local.root-dirs',
    dir,
    'a directory',
    'where local recovery keeps its copies; each TaskManager uses <dir>/<id> (default: <state.backend.rocksdb.localdir>/<id>/local-recovery)',
  ),
  o(
    'taskmanager.memory.process.size',
    parseSize,
    SIZE,
    "total memory of a TaskManager process; when set, the slots' JavaScript heaps (each slot's worker thread gets a limit) and managed memory are sized from it after 128 MiB for the framework and an overhead of 10% (at least 192 MiB, at most 1 GiB), and taskmanager.memory.managed.fraction is a share of what those leave (default: unset, the JavaScript heap limit and managed memory are set on their own)",
  ),
  o(
    'taskmanager.memory.managed.size',
    parseSize,
    SIZE,
    "memory for RocksDB keyed state per TaskManager (read caches, block caches, write buffers), split evenly between its slots (default: taskmanager.memory.managed.fraction of the process's JavaScript heap limit)",
  ),
  o(
    'taskmanager.memory.managed.fraction',
    num(0.01),
    'a number from 0.01 to 1',
    'the share of the JavaScript heap limit (--max-old-space-size) taken as managed memory when its size is not set',
    { default: 0.4 },
  ),
  // network: buffer debloating (FLIP-183)
  o(
    'taskmanager.network.memory.buffer-debloat.enabled',
    bool,
    'true or false',
    "size each input's network buffers by its measured throughput so that in-flight data takes about the target time to process: a checkpoint barrier behind it under backpressure then waits about that long, not for every full buffer",
    { default: true },
  ),
  o(
    'taskmanager.network.memory.buffer-debloat.target',
    parseDuration,
    DURATION,
    'how long the data queued before a subtask (producer backlog, in transit, input queue) should take it to process',
    { default: 100 },
  ),
  o(
    'taskmanager.network.memory.buffer-debloat.period',
    parseDuration,
    DURATION,
    "how often a subtask's input throughput is sampled and its buffer size recalculated (at least 10 ms)",
    { default: 200 },
  ),
  o(
    'taskmanager.network.memory.buffer-debloat.samples',
    int(1, 1000),
    'an integer from 1 to 1000',
    'throughput samples the moving average spans (more: steadier, slower to follow a change)',
    { default: 10 },
  ),
  o(
    'taskmanager.network.memory.buffer-debloat.threshold-percentages',
    int(0, 1000),
    'an integer from 0 to 1000',
    'a new buffer size is announced to the producers only when it differs from the last by at least this many percent',
    { default: 25 },
  ),
  o(
    'taskmanager.memory.min-segment-size',
    parseSize,
    SIZE,
    'the smallest network buffer debloating asks a producer for (the largest is the 32 KiB buffer size); a record larger than a buffer still travels in one buffer of its size',
    { default: 16 },
  ),
  o(
    'state.backend.rocksdb.read-cache.size',
    parseSize,
    SIZE,
    "read cache in front of each RocksDB database, on the slot's JavaScript heap (default: half of the database's share of managed memory)",
  ),
  o(
    'state.backend.rocksdb.block.cache-size',
    parseSize,
    SIZE,
    "RocksDB block cache per database (default: 30% of the database's share of managed memory, plus what the memtables leave of their 20%)",
  ),
  o(
    'state.backend.rocksdb.writebuffer.size',
    parseSize,
    SIZE,
    "RocksDB memtables per database, all of them together (default: 20% of the database's share of managed memory, at most 32 MB; the rest of that 20% goes to the block cache)",
  ),
  o(
    'jobmanager.execution.failover-strategy',
    oneOf('region', 'full'),
    'region or full',
    'what a task failure restarts: region restarts only the pipelined region of the failed task (the tasks connected to it), full restarts every task of the job',
    { default: 'region' },
  ),
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
  o(
    's3.sse.type',
    oneOf('none', 'sse-s3', 'sse-kms'),
    'none, sse-s3 or sse-kms',
    'server-side encryption of every object weir writes (sse-s3: AES256; sse-kms: aws:kms)',
    { default: 'none' },
  ),
  o(
    's3.sse.kms-key-id',
    text,
    'a KMS key id or ARN',
    "the KMS key for sse-kms (default: the bucket's or account's AWS managed key)",
  ),
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
    'security.ssl.internal.verify-hostname',
    bool,
    'true or false',
    'check the host name of JobManagers and TaskManagers against their certificates; false where TaskManagers have addresses no certificate can name (compose replicas, pod IPs): the cluster CA and the cluster identity are still checked',
    { default: true },
  ),
  o(
    'security.cluster.secret-file',
    file,
    'a file path',
    'file holding the cluster secret every JobManager/TaskManager call carries (weir cluster start makes one)',
    { path: true },
  ),
  o(
    'security.cluster.secret',
    text,
    'a secret of at least 16 characters',
    'the cluster secret itself (prefer secret-file)',
    { secret: true, envAliases: ['WEIR_CLUSTER_SECRET'] },
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

export const BY_KEY = new Map<string, ConfigOption>();
for (const opt of CONFIG_OPTIONS) {
  BY_KEY.set(opt.key, opt);
  for (const a of opt.keyAliases ?? []) BY_KEY.set(a, opt);
}

/** The environment variable of a key: `state.checkpoints.dir` -> `WEIR_STATE_CHECKPOINTS_DIR`. */
export function envVarForKey(key: string): string {
  return `WEIR_${key.replace(/[.-]/g, '_').toUpperCase()}`;
}

export const BY_ENV = new Map<string, ConfigOption>();
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
export const CONFIG_NAMESPACES = new Set([
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
