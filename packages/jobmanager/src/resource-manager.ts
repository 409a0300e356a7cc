import { randomBytes, timingSafeEqual } from 'node:crypto';
import { EventEmitter } from 'node:events';
import {
  controlProto,
  createClient,
  JOBMANAGER_SESSION_HEADER,
  type JobManagerGatewayHandlers,
  type Logger,
  type TaskExecutorGatewayClient,
  type TaskManagerHeartbeat__Output,
  type ProcessMetrics__Output,
  type RunningJob,
  type TaskMetrics__Output,
} from '@weir/core';

/** The JobManager's end of a TaskManager's heartbeat stream, as the generated service handler gets it. */
type HeartbeatStream = Parameters<JobManagerGatewayHandlers['Heartbeat']>[0];

/** How many registration sessions the JobManager remembers to refuse replays. */
const SESSIONS_REMEMBERED = 100_000;

export interface RegisteredTaskManager {
  id: string;
  registrationId: string;
  /** the session of its registration: it presents it on every call, the JobManager on every call to it */
  session: string;
  address: string;
  slots: number;
  /** jobId per slot, undefined when free */
  allocations: Array<string | undefined>;
  /** per slot, when it was last freed (ResourceManager's release count; 0: never used) */
  freedAt: number[];
  gateway: TaskExecutorGatewayClient;
  lastHeartbeat: number;
  heartbeatStream?: HeartbeatStream;
  rssBytes: number;
  heapUsedBytes: number;
  /** the latest process figures from its heartbeat */
  process?: ProcessMetrics__Output;
  /** host:port of its Prometheus endpoint, empty when it has none */
  metricsAddress: string;
  registeredAt: number;
}

/**
 * The free slot of `tm` freed longest ago (never used first). A slot's TaskManager replaces the
 * worker thread of a job that ended there with a blank one, which takes it about half a second
 * to load: a job submitted right after another goes to a slot whose blank worker is ready.
 */
function leastRecentlyFreed(tm: RegisteredTaskManager): number {
  let best = -1;
  for (let i = 0; i < tm.allocations.length; i++)
    if (tm.allocations[i] === undefined && (best < 0 || tm.freedAt[i]! < tm.freedAt[best]!)) best = i;
  return best;
}

export interface SlotAllocation {
  taskManager: RegisteredTaskManager;
  slotIndex: number;
}

export interface ResourceManagerEvents {
  taskManagerLost: [tm: RegisteredTaskManager, reason: string];
  slotsAvailable: [];
  metrics: [metrics: TaskMetrics__Output[]];
}

/**
 * Knows the registered TaskManagers and their slots. A TaskManager is lost when its
 * heartbeat stream breaks (at once) or stays silent past the heartbeat timeout.
 */
export class ResourceManager extends EventEmitter<ResourceManagerEvents> {
  readonly taskManagers = new Map<string, RegisteredTaskManager>();
  private readonly timer: NodeJS.Timeout;
  /** sessions of registrations seen, oldest first: a registration that repeats one is a replay */
  private readonly sessions = new Set<string>();
  /** jobs not yet ended, told to every TaskManager with each heartbeat (slot prewarming) */
  runningJobs: () => RunningJob[] = () => [];
  /** slots freed so far (RegisteredTaskManager.freedAt) */
  private frees = 0;

  constructor(
    private readonly log: Logger,
    readonly heartbeatIntervalMs: number,
    readonly heartbeatTimeoutMs: number,
    private readonly jobManagerId: string,
  ) {
    super();
    this.timer = setInterval(() => this.checkHeartbeats(), Math.min(1000, heartbeatIntervalMs));
    this.timer.unref();
  }

  /** The registered TaskManager whose session `presented` is, if any (constant-time comparison). */
  bySession(presented: unknown): RegisteredTaskManager | undefined {
    if (typeof presented !== 'string' || presented.length === 0) return undefined;
    const p = Buffer.from(presented);
    for (const tm of this.taskManagers.values()) {
      const s = Buffer.from(tm.session);
      if (s.length === p.length && timingSafeEqual(s, p)) return tm;
    }
    return undefined;
  }

  /** Records a registration's session; false when it was seen before (a replay). */
  claimSession(session: string): boolean {
    if (this.sessions.has(session)) return false;
    this.sessions.add(session);
    if (this.sessions.size > SESSIONS_REMEMBERED)
      this.sessions.delete(this.sessions.values().next().value as string);
    return true;
  }

  /**
   * A TaskManager joins. Its gateway client presents `session` on every call, which the
   * TaskManager requires: deployments and triggers come only from this JobManager.
   */
  register(
    id: string,
    address: string,
    slots: number,
    session: string,
    metricsAddress = '',
  ): RegisteredTaskManager {
    const previous = this.taskManagers.get(id);
    if (previous) this.lose(previous, 'it registered again (restarted)');
    const tm: RegisteredTaskManager = {
      id,
      registrationId: `${id}-${randomBytes(12).toString('hex')}`,
      session,
      address,
      slots,
      allocations: new Array<string | undefined>(slots).fill(undefined),
      freedAt: new Array<number>(slots).fill(0),
      gateway: createClient(controlProto.TaskExecutorGateway, address, undefined, {
        [JOBMANAGER_SESSION_HEADER]: session,
      }),
      lastHeartbeat: Date.now(),
      rssBytes: 0,
      heapUsedBytes: 0,
      metricsAddress,
      registeredAt: Date.now(),
    };
    this.taskManagers.set(id, tm);
    this.log.info({ taskManagerId: id, address, slots }, 'TaskManager registered');
    this.emit('slotsAvailable');
    return tm;
  }

  attachHeartbeat(stream: HeartbeatStream): void {
    let tm: RegisteredTaskManager | undefined;
    const reply = setInterval(
      () =>
        stream.write({
          jobManagerId: this.jobManagerId,
          timestamp: Date.now(),
          runningJobs: this.runningJobs(),
        }),
      this.heartbeatIntervalMs,
    );
    stream.on('data', (hb: TaskManagerHeartbeat__Output) => {
      const known = this.taskManagers.get(hb.taskManagerId);
      if (!known || known.registrationId !== hb.registrationId) {
        stream.end();
        return;
      }
      tm = known;
      tm.heartbeatStream = stream;
      tm.lastHeartbeat = Date.now();
      tm.rssBytes = hb.rssBytes;
      tm.heapUsedBytes = hb.heapUsedBytes;
      if (hb.process) tm.process = hb.process;
      if (hb.metrics.length > 0) this.emit('metrics', hb.metrics);
    });
    const closed = (why: string): void => {
      clearInterval(reply);
      if (tm && this.taskManagers.get(tm.id) === tm && tm.heartbeatStream === stream) this.lose(tm, why);
    };
    stream.on('end', () => closed('its heartbeat stream closed'));
    stream.on('error', (err: Error) => closed(`its heartbeat stream broke (${err.message})`));
    stream.on('cancelled', () => closed('its connection was lost'));
  }

  private checkHeartbeats(): void {
    const now = Date.now();
    for (const tm of this.taskManagers.values()) {
      if (now - tm.lastHeartbeat > this.heartbeatTimeoutMs) {
        this.lose(
          tm,
          `no heartbeat for ${Math.round((now - tm.lastHeartbeat) / 1000)} s (timeout ${this.heartbeatTimeoutMs / 1000} s)`,
        );
      }
    }
  }

  private lose(tm: RegisteredTaskManager, reason: string): void {
    if (this.taskManagers.get(tm.id) !== tm) return;
    this.taskManagers.delete(tm.id);
    this.log.warn({ taskManagerId: tm.id, address: tm.address, reason }, 'TaskManager lost');
    tm.gateway.close();
    try {
      tm.heartbeatStream?.end();
    } catch {
      /* already closed */
    }
    this.emit('taskManagerLost', tm, reason);
  }

  freeSlots(): number {
    let n = 0;
    for (const tm of this.taskManagers.values()) n += tm.allocations.filter((a) => a === undefined).length;
    return n;
  }

  totalSlots(): number {
    let n = 0;
    for (const tm of this.taskManagers.values()) n += tm.slots;
    return n;
  }

  /**
   * All or nothing: `count` slots for a job, spread over TaskManagers (the one with the most
   * free slots first), so a job uses every process and core it can. `preferred[i]`, when given,
   * is where slot i ran before: that TaskManager (by id: a TaskManager restarted with its id
   * keeps its local directory) is taken for it while it is registered and has a free slot, so a
   * task finds its local recovery copy there.
   */
  allocate(
    jobId: string,
    count: number,
    preferred: ReadonlyArray<SlotAllocation | undefined> = [],
  ): SlotAllocation[] | undefined {
    if (this.freeSlots() < count) return undefined;
    const result = new Array<SlotAllocation | undefined>(count).fill(undefined);
    for (let i = 0; i < count; i++) {
      const prev = preferred[i];
      const tm = prev && this.taskManagers.get(prev.taskManager.id);
      if (!tm) continue;
      const slotIndex =
        tm.allocations[prev.slotIndex] === undefined ? prev.slotIndex : tm.allocations.indexOf(undefined);
      if (slotIndex < 0) continue;
      tm.allocations[slotIndex] = jobId;
      result[i] = { taskManager: tm, slotIndex };
    }
    const tms = [...this.taskManagers.values()];
    for (let i = 0; i < count; i++) {
      if (result[i]) continue;
      let best: RegisteredTaskManager | undefined;
      let bestFree = 0;
      for (const tm of tms) {
        const free = tm.allocations.filter((a) => a === undefined).length;
        if (free > bestFree) {
          best = tm;
          bestFree = free;
        }
      }
      const slotIndex = leastRecentlyFreed(best!);
      best!.allocations[slotIndex] = jobId;
      result[i] = { taskManager: best!, slotIndex };
    }
    return result as SlotAllocation[];
  }

  /** Frees some of a job's slots (a region that restarts); slots of lost TaskManagers are gone already. */
  releaseSlots(jobId: string, slots: readonly SlotAllocation[]): void {
    let freed = false;
    for (const { taskManager, slotIndex } of slots) {
      if (this.taskManagers.get(taskManager.id) !== taskManager) continue;
      if (taskManager.allocations[slotIndex] !== jobId) continue;
      taskManager.allocations[slotIndex] = undefined;
      taskManager.freedAt[slotIndex] = ++this.frees;
      freed = true;
    }
    if (freed) this.emit('slotsAvailable');
  }

  release(jobId: string): void {
    let freed = false;
    for (const tm of this.taskManagers.values()) {
      tm.allocations = tm.allocations.map((a, i) => {
        if (a !== jobId) return a;
        freed = true;
        tm.freedAt[i] = ++this.frees;
        return undefined;
      });
    }
    if (freed) this.emit('slotsAvailable');
  }

  close(): void {
    clearInterval(this.timer);
    for (const tm of this.taskManagers.values()) {
      tm.gateway.close();
      try {
        tm.heartbeatStream?.end();
      } catch {
        /* ignore */
      }
    }
  }
}
