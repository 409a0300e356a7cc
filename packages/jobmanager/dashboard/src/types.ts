/** The REST API's JSON as the dashboard reads it (see packages/jobmanager/src/rest/job-views.ts). */
export interface VertexMetrics {
  'read-records': number;
  'write-records': number;
  'read-bytes': number;
  'write-bytes': number;
  'read-records-per-second': number;
  'write-records-per-second': number;
  'busy-time-ms-per-second': number;
  'backpressured-time-ms-per-second': number;
  'idle-time-ms-per-second': number;
  'input-buffer-usage': number;
  'output-buffer-usage': number;
}

export interface Vertex {
  id: string;
  name: string;
  parallelism: number;
  status: string;
  metrics: VertexMetrics;
}

export interface PlanNode {
  id: string;
  description: string;
  inputs?: Array<{ id: string; ship_strategy: string }>;
}

export interface JobDetails {
  jid: string;
  name: string;
  state: string;
  'start-time': number;
  duration: number;
  vertices: Vertex[];
  plan: { nodes: PlanNode[] };
  'num-restarts': number;
  'failure-cause': string;
  'waiting-reason': string;
}

export interface JobSummary {
  jid: string;
  name: string;
  state: string;
  'start-time': number;
  duration: number;
  tasks: Record<string, number>;
}

export interface Subtask {
  subtask: number;
  status: string;
  attempt: number;
  host: string;
  'taskmanager-id': string;
  metrics: VertexMetrics;
}

export interface CheckpointEntry {
  id: number;
  status: string;
  is_savepoint: boolean;
  trigger_timestamp: number;
  end_to_end_duration: number;
  state_size: number;
  alignment_duration: number;
  /** in-flight bytes stored as channel state (unaligned) */
  persisted_data: number;
  unaligned_checkpoint: boolean;
  sync_duration: number;
  async_duration: number;
  num_subtasks: number;
  num_acknowledged_subtasks: number;
  failure_message?: string;
  external_path: string | null;
}

export interface Checkpoints {
  counts: { restored: number; total: number; in_progress: number; completed: number; failed: number };
  latest: { completed: CheckpointEntry | null; failed: CheckpointEntry | null };
  history: CheckpointEntry[];
}

export interface CheckpointSubtask {
  vertex: string;
  'vertex-name': string;
  index: number;
  status: string;
  ack_timestamp: number;
  end_to_end_duration: number;
  state_size: number;
  checkpoint: { sync: number; async: number };
  alignment: { duration: number; persisted: number };
  unaligned_checkpoint: boolean;
}

export interface Restart {
  attempt: number;
  cause: string;
  'restored-checkpoint-id': number | null;
  'recovery-ms': number | null;
  steps: Array<{ name: string; timestamp: number | null; 'since-detection-ms': number | null }>;
}

export interface TaskManagerInfo {
  id: string;
  path: string;
  slotsNumber: number;
  freeSlots: number;
  timeSinceLastHeartbeat: number;
  'prometheus-address': string | null;
  metrics: Record<string, number>;
  slots?: Array<{ slot: number; 'job-id': string | null }>;
}
