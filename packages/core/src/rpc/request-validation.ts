/**
 * Checks of every request a weir server accepts, by method path. A request that decodes but
 * makes no sense (a job id that is not one, a negative slot count, an unknown state) is
 * answered INVALID_ARGUMENT by the server interceptor before any handler sees it. Returns what
 * is wrong, or undefined.
 */
type Msg = Record<string, unknown>;
type Check = (m: Msg) => string | undefined;

const JOB_ID = /^[0-9a-f]{32}$/;
const EXECUTION_STATES = new Set([
  'CREATED',
  'SCHEDULED',
  'DEPLOYING',
  'RUNNING',
  'FINISHED',
  'CANCELING',
  'CANCELED',
  'FAILED',
]);

const CONTROL = /[\u0000-\u001f\u007f]/;

function str(
  m: Msg,
  field: string,
  opts: { required?: boolean; max?: number; pattern?: RegExp; what?: string } = {},
): string | undefined {
  const v = m[field];
  if (typeof v !== 'string') return `${field} must be a string`;
  if (opts.required && v.length === 0) return `${field} is required`;
  if (v.length > (opts.max ?? 1024)) return `${field} is longer than ${opts.max ?? 1024} characters`;
  if (v.length > 0 && opts.pattern && !opts.pattern.test(v))
    return `${field} '${v.slice(0, 80)}' is not ${opts.what ?? 'valid'}`;
  return undefined;
}

function int(m: Msg, field: string, min: number, max: number): string | undefined {
  const v = Number(m[field]);
  if (!Number.isInteger(v) || v < min || v > max)
    return `${field} must be an integer in ${min}..${max}, got ${String(m[field])}`;
  return undefined;
}

const jobId: Check = (m) =>
  str(m, 'jobId', { required: true, max: 32, pattern: JOB_ID, what: 'a job id (32 hex digits)' });
const executionId: Check = (m) => str(m, 'executionId', { required: true, max: 256 });
const noControl =
  (field: string, max: number): Check =>
  (m) =>
    str(m, field, {
      max,
      pattern: new RegExp(`^[^${CONTROL.source.slice(1, -1)}]*$`),
      what: 'free of control characters',
    });
const all =
  (...checks: Check[]): Check =>
  (m) => {
    for (const c of checks) {
      const problem = c(m);
      if (problem) return problem;
    }
    return undefined;
  };

const RULES: Record<string, Check> = {
  // clients -> JobManager
  '/weir.Dispatcher/SubmitJob': all(
    noControl('jobName', 512),
    (m) => str(m, 'jobGraphJson', { required: true, max: 64 * 1024 * 1024 }),
    (m) => (Buffer.isBuffer(m.bundle) && m.bundle.length > 0 ? undefined : 'bundle is required'),
    noControl('jobContextJson', 16 * 1024 * 1024),
    noControl('restorePath', 4096),
  ),
  '/weir.Dispatcher/ListJobs': () => undefined,
  '/weir.Dispatcher/GetClusterOverview': () => undefined,
  '/weir.Dispatcher/GetJobStatus': jobId,
  '/weir.Dispatcher/CancelJob': jobId,
  '/weir.Dispatcher/GetCollectedRecords': jobId,
  '/weir.Dispatcher/GetCheckpoints': jobId,
  '/weir.Dispatcher/TriggerSavepoint': all(jobId, noControl('target', 4096)),
  // TaskManagers -> JobManager
  '/weir.JobManagerGateway/RegisterTaskManager': all(
    (m) =>
      str(m, 'taskManagerId', {
        required: true,
        max: 128,
        pattern: /^[A-Za-z0-9._:@-]+$/,
        what: 'a TaskManager id (letters, digits, . _ : @ -)',
      }),
    (m) =>
      str(m, 'address', {
        required: true,
        max: 300,
        pattern: /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._-]+):\d{1,5}$/,
        what: 'HOST:PORT',
      }),
    (m) => int(m, 'slots', 1, 1024),
    noControl('hostname', 256),
    (m) =>
      str(m, 'session', {
        required: true,
        max: 256,
        pattern: /^[A-Za-z0-9_-]{32,}$/,
        what: 'a session (at least 32 letters, digits, _ or -)',
      }),
  ),
  '/weir.JobManagerGateway/Heartbeat': all(
    (m) => str(m, 'taskManagerId', { required: true, max: 128 }),
    (m) => str(m, 'registrationId', { required: true, max: 256 }),
    (m) =>
      Array.isArray(m.metrics) && m.metrics.length <= 100_000
        ? undefined
        : 'metrics must be a list of at most 100000 entries',
  ),
  '/weir.JobManagerGateway/UpdateTaskExecutionState': all(jobId, executionId, (m) =>
    EXECUTION_STATES.has(m.state as string)
      ? undefined
      : `state must be one of ${[...EXECUTION_STATES].join(', ')}`,
  ),
  '/weir.JobManagerGateway/GetJobBundle': jobId,
  '/weir.JobManagerGateway/ReportCollectedRecords': all(jobId, executionId),
  '/weir.JobManagerGateway/AcknowledgeCheckpoint': all(jobId, executionId, (m) =>
    int(m, 'checkpointId', 1, Number.MAX_SAFE_INTEGER),
  ),
  '/weir.JobManagerGateway/DeclineCheckpoint': all(
    jobId,
    executionId,
    (m) => int(m, 'checkpointId', 1, Number.MAX_SAFE_INTEGER),
    noControl('reason', 64 * 1024),
  ),
  // JobManager -> TaskManagers
  '/weir.TaskExecutorGateway/SubmitTask': all(
    jobId,
    executionId,
    (m) => int(m, 'parallelism', 1, 32_768),
    (m) => int(m, 'maxParallelism', 1, 32_768),
    (m) => int(m, 'subtaskIndex', 0, Number(m.parallelism) - 1),
    (m) => int(m, 'slotIndex', 0, 1023),
    (m) => int(m, 'attemptNumber', 0, 1_000_000),
    (m) => (Array.isArray(m.operatorIds) && m.operatorIds.length > 0 ? undefined : 'operatorIds is required'),
  ),
  '/weir.TaskExecutorGateway/CancelTask': executionId,
  '/weir.TaskExecutorGateway/TriggerCheckpoint': all(jobId, executionId, (m) =>
    int(m, 'checkpointId', 1, Number.MAX_SAFE_INTEGER),
  ),
  '/weir.TaskExecutorGateway/NotifyCheckpoint': all(executionId, (m) =>
    int(m, 'checkpointId', 1, Number.MAX_SAFE_INTEGER),
  ),
  // TaskManager -> TaskManager
  '/weir.DataExchange/Exchange': (m) => {
    if (m.kind === 'credit') return int(m, 'credit', 0, 1_000_000);
    if (m.kind === 'bufferSize') return int(m, 'bufferSize', 16, 1 << 30);
    if (m.kind !== 'request' || !m.request || typeof m.request !== 'object')
      return 'a message needs a partition request, a credit or a buffer size';
    const r = m.request as Msg;
    return (
      str(r, 'partitionId', { required: true, max: 512 }) ??
      int(r, 'subpartitionIndex', 0, 32_767) ??
      int(r, 'initialCredit', 0, 1_000_000) ??
      str(r, 'consumerExecutionId', { max: 256 }) ??
      (r.bufferSize === undefined ? undefined : int(r, 'bufferSize', 0, 1 << 30))
    );
  },
};

/** What is wrong with a decoded request to `path`, or undefined; unknown paths have no rule. */
export function validateRequest(path: string, message: unknown): string | undefined {
  const rule = RULES[path];
  if (!rule) return undefined;
  if (!message || typeof message !== 'object') return 'the request is not a message';
  return rule(message as Msg);
}

export function hasValidationRule(path: string): boolean {
  return path in RULES;
}
