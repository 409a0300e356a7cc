/**
 * JSON Schemas of the REST API's answers (Flink's shapes where Flink has the resource), for
 * ajv in the REST tests: every field the dashboard or a Flink client reads is required and typed.
 */
const int = { type: 'integer' } as const;
const num = { type: 'number' } as const;
const str = { type: 'string' } as const;
const bool = { type: 'boolean' } as const;
const nullable = (s: object): object => ({ anyOf: [s, { type: 'null' }] });
const obj = (properties: Record<string, object>, extra: object = {}): object => ({
  type: 'object',
  required: Object.keys(properties),
  properties,
  ...extra,
});
const arrayOf = (items: object, minItems = 0): object => ({ type: 'array', items, minItems });

const taskCounts = obj({
  total: int,
  created: int,
  scheduled: int,
  deploying: int,
  running: int,
  finished: int,
  canceling: int,
  canceled: int,
  failed: int,
});
const stateCounts = obj(
  Object.fromEntries(
    ['CREATED', 'SCHEDULED', 'DEPLOYING', 'RUNNING', 'FINISHED', 'CANCELING', 'CANCELED', 'FAILED'].map(
      (s) => [s, int],
    ),
  ),
);
const ioMetrics = obj({
  'read-bytes': int,
  'write-bytes': int,
  'read-records': int,
  'write-records': int,
  'read-records-per-second': num,
  'write-records-per-second': num,
  'busy-time-ms-per-second': { type: 'number', minimum: 0, maximum: 1000 },
  'backpressured-time-ms-per-second': { type: 'number', minimum: 0, maximum: 1000 },
  'idle-time-ms-per-second': { type: 'number', minimum: 0, maximum: 1000 },
  'input-buffer-usage': { type: 'number', minimum: 0, maximum: 1 },
  'output-buffer-usage': { type: 'number', minimum: 0, maximum: 1 },
});
const jobState = {
  enum: ['CREATED', 'RUNNING', 'RESTARTING', 'FAILING', 'CANCELLING', 'FINISHED', 'CANCELED', 'FAILED'],
};
const checkpointEntry = obj({
  id: int,
  status: { enum: ['IN_PROGRESS', 'COMPLETED', 'FAILED'] },
  is_savepoint: bool,
  trigger_timestamp: int,
  latest_ack_timestamp: int,
  state_size: int,
  checkpointed_size: int,
  end_to_end_duration: int,
  num_subtasks: int,
  num_acknowledged_subtasks: int,
  checkpoint_type: { enum: ['CHECKPOINT', 'SAVEPOINT'] },
  external_path: nullable(str),
  alignment_duration: int,
  sync_duration: int,
  async_duration: int,
  persisted_data: int,
  unaligned_checkpoint: bool,
});
const stat = obj({ min: num, max: num, avg: num, p50: num, p90: num, p95: num, p99: num, p999: num });

export const SCHEMAS = {
  error: obj({ errors: arrayOf(str, 1) }),
  overview: obj({
    taskmanagers: int,
    'slots-total': int,
    'slots-available': int,
    'jobs-running': int,
    'jobs-finished': int,
    'jobs-cancelled': int,
    'jobs-failed': int,
  }),
  jobsOverview: obj({
    jobs: arrayOf(
      obj({
        jid: { type: 'string', pattern: '^[0-9a-f]{32}$' },
        name: str,
        state: jobState,
        'start-time': int,
        'end-time': int,
        duration: int,
        tasks: taskCounts,
      }),
    ),
  }),
  job: obj({
    jid: str,
    name: str,
    state: jobState,
    'start-time': int,
    'end-time': int,
    duration: int,
    now: int,
    vertices: arrayOf(
      obj({
        id: str,
        name: str,
        parallelism: int,
        maxParallelism: int,
        status: str,
        tasks: stateCounts,
        metrics: ioMetrics,
      }),
      1,
    ),
    'status-counts': stateCounts,
    plan: obj({
      jid: str,
      name: str,
      nodes: arrayOf(
        obj(
          { id: str, parallelism: int, description: str },
          { properties: { inputs: arrayOf(obj({ num: int, id: str, ship_strategy: str })) } },
        ),
        1,
      ),
    }),
    'num-restarts': int,
  }),
  vertex: obj({
    id: str,
    name: str,
    parallelism: int,
    subtasks: arrayOf(
      obj({ subtask: int, status: str, attempt: int, host: str, 'taskmanager-id': str, metrics: ioMetrics }),
      1,
    ),
  }),
  backpressure: obj({
    status: { const: 'ok' },
    backpressureLevel: { enum: ['ok', 'low', 'high'] },
    'end-timestamp': int,
    subtasks: arrayOf(
      obj({
        subtask: int,
        backpressureLevel: { enum: ['ok', 'low', 'high'] },
        ratio: { type: 'number', minimum: 0, maximum: 1 },
        idleRatio: { type: 'number', minimum: 0, maximum: 1 },
        busyRatio: { type: 'number', minimum: 0, maximum: 1 },
      }),
      1,
    ),
  }),
  checkpoints: obj({
    counts: obj({ restored: int, total: int, in_progress: int, completed: int, failed: int }),
    summary: obj({ checkpointed_size: stat, state_size: stat, end_to_end_duration: stat }),
    latest: obj({
      completed: nullable(checkpointEntry),
      savepoint: nullable(checkpointEntry),
      failed: nullable(checkpointEntry),
      restored: nullable(obj({ id: int, restore_timestamp: int, is_savepoint: bool, external_path: str })),
    }),
    history: arrayOf(checkpointEntry),
  }),
  checkpointDetails: {
    allOf: [
      checkpointEntry,
      obj({
        tasks: { type: 'object', minProperties: 1 },
        subtasks: arrayOf(
          obj({
            vertex: str,
            index: int,
            status: str,
            ack_timestamp: int,
            state_size: int,
            checkpoint: obj({ sync: int, async: int }),
            alignment: obj({ duration: int, persisted: int }),
            unaligned_checkpoint: bool,
          }),
          1,
        ),
      }),
    ],
  },
  exceptions: obj({
    'root-exception': nullable(str),
    timestamp: nullable(int),
    exceptionHistory: obj({
      entries: arrayOf(obj({ exceptionName: str, stacktrace: str, timestamp: int, taskName: nullable(str) })),
      truncated: bool,
    }),
  }),
  restarts: obj({
    restarts: arrayOf(
      obj({
        attempt: int,
        cause: str,
        'recovery-ms': nullable(int),
        steps: arrayOf(obj({ name: str, timestamp: nullable(int), 'since-detection-ms': nullable(int) }), 6),
      }),
    ),
  }),
  taskmanagers: obj({
    taskmanagers: arrayOf(
      obj({
        id: str,
        path: str,
        dataPort: int,
        slotsNumber: int,
        freeSlots: int,
        'prometheus-address': nullable(str),
        metrics: obj({ heapUsed: int, rss: int, eventLoopDelayP99Ms: num, garbageCollections: int }),
      }),
      1,
    ),
  }),
  taskmanager: obj({
    id: str,
    path: str,
    slotsNumber: int,
    slots: arrayOf(obj({ slot: int, 'job-id': nullable(str) }), 1),
    metrics: obj({ heapUsed: int, rss: int }),
  }),
  savepointTrigger: obj({ 'request-id': str }),
  savepointStatus: obj(
    { status: obj({ id: { enum: ['IN_PROGRESS', 'COMPLETED'] } }) },
    { properties: { operation: { type: 'object' } } },
  ),
} as const;
