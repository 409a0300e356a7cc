import { afterEach, beforeEach, describe, mock, test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_CHECKPOINT_SETTINGS, type CheckpointSettings } from '../../packages/api/src/internal.js';
import {
  createLogger,
  sha256,
  type CheckpointStorage,
  type IncrementalKeyedHandle,
} from '../../packages/core/src/index.js';
import {
  CheckpointCoordinator,
  type CheckpointedJob,
  type RetainedCheckpoint,
} from '../../packages/jobmanager/src/checkpoint-coordinator.js';

const log = createLogger('test', {}, 'silent');

/** Checkpoint storage in memory. */
class MemoryStorage implements CheckpointStorage {
  readonly root = 'file:///checkpoints';
  readonly location = { scheme: 'file', path: '/checkpoints' } as const;
  readonly files = new Map<string, Buffer>();
  /** the next deleteDir calls that fail, as S3 answering 503 does */
  failDeletes = 0;

  async write(relPath: string, data: Uint8Array): Promise<{ path: string; size: number; sha256: string }> {
    this.files.set(relPath, Buffer.from(data));
    return { path: relPath, size: data.byteLength, sha256: sha256(data) };
  }
  async read(relPath: string): Promise<Buffer> {
    const f = this.files.get(relPath);
    if (!f) throw new Error(`ENOENT ${relPath}`);
    return f;
  }
  async exists(relPath: string): Promise<boolean> {
    return [...this.files.keys()].some((k) => k === relPath || k.startsWith(`${relPath}/`));
  }
  async list(relDir: string): Promise<string[]> {
    const names = new Set<string>();
    for (const k of this.files.keys())
      if (k.startsWith(`${relDir}/`)) names.add(k.slice(relDir.length + 1).split('/')[0]!);
    return [...names].sort();
  }
  async delete(relPath: string): Promise<void> {
    this.files.delete(relPath);
  }
  async deleteDir(relDir: string): Promise<void> {
    if (this.failDeletes > 0) {
      this.failDeletes--;
      throw new Error('503 Service Unavailable');
    }
    for (const k of [...this.files.keys()]) if (k.startsWith(`${relDir}/`)) this.files.delete(k);
  }
  dirs(jobId: string): string[] {
    return [...new Set([...this.files.keys()].map((k) => k.split('/').slice(0, 2).join('/')))]
      .filter((d) => d.startsWith(`${jobId}/chk-`))
      .sort();
  }
}

interface PersistCall {
  retained: number[];
  highest: number;
  release(): void;
  fail(err: Error): void;
}

/** A job of one source and one sink task; the job store write can be held back. */
class FakeJob implements CheckpointedJob {
  readonly jobId = 'job1';
  readonly maxParallelism = 128;
  readonly tasks = [
    {
      executionId: 'src',
      vertex: 'Source',
      subtask: 0,
      isSource: true,
      operatorIds: ['src'],
      parallelism: 1,
    },
    {
      executionId: 'sink',
      vertex: 'Sink',
      subtask: 0,
      isSource: false,
      operatorIds: ['sink'],
      parallelism: 1,
    },
  ];
  readonly triggered: number[] = [];
  readonly notifications: Array<[string, number, boolean]> = [];
  readonly failovers: string[] = [];
  readonly persistCalls: PersistCall[] = [];
  /** what the job store holds: the last write that landed */
  landed: { retained: number[]; highest: number } = { retained: [], highest: 0 };
  holdPersist = false;

  runningTasks(): FakeJob['tasks'] {
    return this.tasks;
  }
  trigger(_executionId: string, checkpointId: number): Promise<void> {
    this.triggered.push(checkpointId);
    return Promise.resolve();
  }
  notify(executionId: string, checkpointId: number, completed: boolean): void {
    this.notifications.push([executionId, checkpointId, completed]);
  }
  failover(cause: string): void {
    this.failovers.push(cause);
  }
  persist = (retained: RetainedCheckpoint[], highest: number): Promise<void> => {
    const content = { retained: retained.map((r) => r.id), highest };
    return new Promise<void>((resolve, reject) => {
      const call: PersistCall = {
        ...content,
        release: () => {
          this.landed = content;
          resolve();
        },
        fail: reject,
      };
      this.persistCalls.push(call);
      if (!this.holdPersist) call.release();
    });
  };
  completions(): number[] {
    return this.notifications.filter(([e, , ok]) => ok && e === 'sink').map(([, id]) => id);
  }
  aborts(): number[] {
    return this.notifications.filter(([e, , ok]) => !ok && e === 'sink').map(([, id]) => id);
  }
}

const M = { syncDurationMs: 0, asyncDurationMs: 0, alignmentDurationMs: 0, stateSizeBytes: 0 };

/** Lets pending promise chains (storage, job store, completions) run. */
async function flush(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise<void>((r) => setImmediate(r));
}

function ackAll(c: CheckpointCoordinator, id: number): void {
  c.acknowledge('src', id, {}, M);
  c.acknowledge('sink', id, {}, M);
}

describe('CheckpointCoordinator ordering (controllable clock, fake job and storage)', () => {
  let job: FakeJob;
  let storage: MemoryStorage;
  let coord: CheckpointCoordinator;

  const make = (s: Partial<CheckpointSettings> = {}): CheckpointCoordinator => {
    coord = new CheckpointCoordinator(
      job,
      { ...DEFAULT_CHECKPOINT_SETTINGS, intervalMs: 1000, timeoutMs: 5000, ...s },
      storage,
      log,
    );
    return coord;
  };
  /** lets the periodic trigger fire once */
  const nextCheckpoint = async (): Promise<void> => {
    mock.timers.tick(1000);
    await flush();
  };

  beforeEach(() => {
    mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'], now: 1_000_000 });
    job = new FakeJob();
    storage = new MemoryStorage();
  });
  afterEach(async () => {
    await coord?.stop('JOB_CANCELED');
    mock.timers.reset();
  });

  test('the checkpoint id is recorded in the job store before any task sees it', async () => {
    make().start();
    job.holdPersist = true;
    await nextCheckpoint();
    assert.equal(job.persistCalls.length, 1, 'one job store write for the new id');
    assert.equal(job.persistCalls[0]!.highest, 1);
    assert.deepEqual(job.triggered, [], 'no source is triggered before the id is durable');
    job.persistCalls[0]!.release();
    await flush();
    assert.deepEqual(job.triggered, [1]);
    assert.equal(job.landed.highest, 1);
  });

  test('a checkpoint whose id cannot be recorded is aborted and never triggered', async () => {
    make({ tolerableFailedCheckpoints: 5 }).start();
    job.holdPersist = true;
    await nextCheckpoint();
    job.persistCalls[0]!.fail(new Error('disk full'));
    await flush();
    assert.deepEqual(job.triggered, []);
    const s = coord.snapshotStats().history[0]!;
    assert.equal(s.status, 'FAILED');
    assert.match(s.failureReason!, /cannot record checkpoint id 1 in the job store: disk full/);
  });

  test('a completion while an older completion is still persisting waits; the store ends at the newer one', async () => {
    make({ maxConcurrentCheckpoints: 2 }).start();
    await nextCheckpoint();
    await nextCheckpoint();
    assert.deepEqual(job.triggered, [1, 2]);
    job.holdPersist = true;
    ackAll(coord, 1); // its job store write hangs
    await flush();
    const held = job.persistCalls.at(-1)!;
    assert.deepEqual(held.retained, [1]);
    job.holdPersist = false;
    ackAll(coord, 2); // completes while checkpoint 1 is still persisting
    await flush();
    assert.deepEqual(job.completions(), [], 'nothing is announced before checkpoint 1 is recorded');
    held.release();
    await flush();
    assert.deepEqual(job.landed.retained, [2], 'the job store points at the newer checkpoint');
    assert.deepEqual(job.completions(), [1, 2], 'tasks hear of completions in id order');
    assert.equal(coord.latestCompleted()?.id, 2);
    assert.deepEqual(
      storage.dirs('job1'),
      ['job1/chk-2'],
      'the newer checkpoint is kept, the older subsumed',
    );
  });

  test('a newer checkpoint completing first aborts the older pending one; the latest id never goes back', async () => {
    make({ maxConcurrentCheckpoints: 2, tolerableFailedCheckpoints: 0 }).start();
    await nextCheckpoint();
    await nextCheckpoint();
    coord.acknowledge('src', 1, {}, M);
    ackAll(coord, 2);
    await flush();
    assert.deepEqual(job.completions(), [2]);
    assert.deepEqual(job.aborts(), [1], 'the older checkpoint is aborted and its tasks are told');
    const one = coord.snapshotStats().history.find((h) => h.id === 1)!;
    assert.equal(one.status, 'FAILED');
    assert.match(one.failureReason!, /subsumed by the completed checkpoint 2/);
    // its last acknowledgement arrives late: nothing changes
    coord.acknowledge('sink', 1, {}, M);
    await flush();
    assert.deepEqual(job.completions(), [2]);
    assert.equal(coord.latestCompleted()?.id, 2);
    assert.deepEqual(job.landed.retained, [2]);
    assert.deepEqual(storage.dirs('job1'), ['job1/chk-2']);
    assert.deepEqual(job.failovers, [], 'a subsumed checkpoint is not a failed one');
  });

  test('both checkpoints acknowledged in reverse order: only the newer completes', async () => {
    make({ maxConcurrentCheckpoints: 2, retainedCheckpoints: 3 }).start();
    await nextCheckpoint();
    await nextCheckpoint();
    ackAll(coord, 2);
    ackAll(coord, 1);
    await flush();
    assert.deepEqual(job.completions(), [2]);
    assert.deepEqual(job.landed.retained, [2]);
    assert.equal(coord.latestCompleted()?.id, 2);
  });

  test('an acknowledgement after a timeout abort is ignored', async () => {
    make({ tolerableFailedCheckpoints: 5 }).start();
    await nextCheckpoint();
    coord.acknowledge('src', 1, {}, M);
    mock.timers.tick(5000);
    await flush();
    assert.deepEqual(job.aborts(), [1]);
    coord.acknowledge('sink', 1, {}, M);
    await flush();
    assert.deepEqual(job.completions(), []);
    assert.equal(coord.latestCompleted(), undefined);
    assert.match(coord.snapshotStats().history[0]!.failureReason!, /expired after 5000 ms/);
    assert.deepEqual(storage.dirs('job1'), []);
  });

  test('a late acknowledgement of an aborted checkpoint: the shared files it wrote are deleted, older ones stay', async () => {
    make({ tolerableFailedCheckpoints: 5 }).start();
    await nextCheckpoint();
    coord.decline('sink', 1, 'no');
    await flush();
    for (const f of ['1-src-0-a-0', '0-src-0-b-0']) await storage.write(`job1/shared/${f}`, Buffer.from('x'));
    const file = (name: string, checkpointId: number) => ({
      path: `../shared/${name}`,
      size: 1,
      sha256: '',
      checkpointId,
    });
    const keyed: IncrementalKeyedHandle = {
      format: 'incremental',
      kinds: {},
      groups: {},
      checkpointedSize: 1,
      fullSize: 2,
      files: [file('1-src-0-a-0', 1), file('0-src-0-b-0', 0)],
    };
    coord.acknowledge('src', 1, { src: { keyed } }, M);
    await flush();
    assert.deepEqual(await storage.list('job1/shared'), ['0-src-0-b-0']);
  });

  test('a decline after completion changes nothing', async () => {
    make().start();
    await nextCheckpoint();
    ackAll(coord, 1);
    await flush();
    coord.decline('sink', 1, 'too late');
    await flush();
    assert.deepEqual(job.aborts(), []);
    assert.equal(coord.snapshotStats().history[0]!.status, 'COMPLETED');
    assert.equal(coord.latestCompleted()?.id, 1);
  });

  test('a fully acknowledged checkpoint waiting behind a slow completion does not expire', async () => {
    make({ maxConcurrentCheckpoints: 2, tolerableFailedCheckpoints: 5 }).start();
    await nextCheckpoint();
    await nextCheckpoint();
    job.holdPersist = true;
    ackAll(coord, 1);
    ackAll(coord, 2);
    await flush();
    mock.timers.tick(6000);
    await flush();
    assert.deepEqual(job.aborts(), []);
    for (let i = 0; i < 3; i++) {
      for (const c of job.persistCalls) c.release();
      await flush();
    }
    assert.deepEqual(job.completions(), [1, 2]);
  });

  test('a pending savepoint is not aborted by a newer checkpoint completing', async () => {
    make({ maxConcurrentCheckpoints: 2 });
    const savepoint = coord.triggerSavepoint(storage);
    coord.start();
    await nextCheckpoint();
    assert.deepEqual(job.triggered, [1, 2]);
    ackAll(coord, 2);
    await flush();
    assert.deepEqual(job.aborts(), []);
    ackAll(coord, 1);
    assert.match(await savepoint, /savepoint-job1-1$/);
    assert.equal(coord.latestCompleted()?.id, 2, 'a savepoint is never the latest checkpoint');
  });

  test('a savepoint that ends the job stops periodic checkpoints; a failed one resumes them', async () => {
    make({ maxConcurrentCheckpoints: 3 });
    coord.start();
    const savepoint = coord.triggerSavepoint(storage, { terminate: true });
    await flush();
    assert.deepEqual(job.triggered, [1]);
    await nextCheckpoint();
    await nextCheckpoint();
    // without the stop, checkpoints 2 and 3 would be triggered after the savepoint's barrier and
    // could commit sink output that the job resumed from the savepoint writes again
    assert.deepEqual(job.triggered, [1], 'no checkpoint after a stop-with-savepoint barrier');
    coord.decline('sink', 1, 'test decline');
    await assert.rejects(savepoint, /test decline/);
    await nextCheckpoint();
    assert.deepEqual(job.triggered, [1, 2], 'periodic checkpoints resume after the savepoint failed');
  });

  test('after the final checkpoint completed nothing more is triggered while the tasks finish', async () => {
    make({ intervalMs: 300 }).start();
    coord.requestFinalCheckpoint();
    await flush();
    assert.deepEqual(job.triggered, [1]);
    // the completion is being recorded in the job store: the checkpoint is no longer pending
    job.holdPersist = true;
    ackAll(coord, 1);
    await flush();
    for (let i = 0; i < 3; i++) await nextCheckpoint();
    job.holdPersist = false;
    for (const c of job.persistCalls) c.release();
    await flush();
    assert.deepEqual(job.completions(), [1]);
    // the tasks still look running until they report FINISHED
    for (let i = 0; i < 5; i++) await nextCheckpoint();
    for (const c of job.persistCalls) c.release();
    await flush();
    assert.deepEqual(job.triggered, [1], 'no checkpoint after the final one');
    assert.deepEqual(job.failovers, []);
  });

  test('a trigger that cannot reach its TaskManager (UNAVAILABLE) aborts the checkpoint without failing the job over; other trigger errors count', async () => {
    make({ intervalMs: 300, tolerableFailedCheckpoints: 0 }).start();
    const trigger = job.trigger.bind(job);
    job.trigger = (executionId: string, checkpointId: number) =>
      trigger(executionId, checkpointId).then(() =>
        Promise.reject(Object.assign(new Error('14 UNAVAILABLE: read ECONNRESET'), { code: 14 })),
      );
    await flush();
    for (let i = 0; i < 3; i++) await nextCheckpoint();
    await flush();
    assert.ok(job.triggered.length >= 2, `checkpoints triggered: ${job.triggered.join(', ')}`);
    assert.deepEqual(job.failovers, [], "the lost TaskManager is failure detection's to handle");
    job.trigger = (executionId: string, checkpointId: number) =>
      trigger(executionId, checkpointId).then(() => Promise.reject(new Error('the task refused')));
    await nextCheckpoint();
    await flush();
    assert.equal(job.failovers.length, 1, 'a refused trigger is a failed checkpoint');
  });

  test('a refused delete of a subsumed checkpoint is tried again until it is gone', async () => {
    make().start();
    await nextCheckpoint();
    ackAll(coord, 1);
    await flush();
    storage.failDeletes = 2;
    await nextCheckpoint();
    ackAll(coord, 2);
    await flush();
    assert.deepEqual(storage.dirs('job1'), ['job1/chk-1', 'job1/chk-2'], 'the first delete was refused');
    mock.timers.tick(250);
    await flush();
    mock.timers.tick(500);
    await flush();
    assert.deepEqual(storage.dirs('job1'), ['job1/chk-2']);
  });

  test('files a task writes after its checkpoint was aborted go when a newer one completes', async () => {
    make({ tolerableFailedCheckpoints: 5 }).start();
    await nextCheckpoint();
    coord.decline('sink', 1, 'test');
    await flush();
    // a task cut off from the JobManager writes its state after the abort
    await storage.write('job1/chk-1/count/0-late', Buffer.from('x'));
    await nextCheckpoint();
    ackAll(coord, 2);
    await flush();
    assert.deepEqual(storage.dirs('job1'), ['job1/chk-2']);
  });

  test('a finished job leaves nothing of its own in the checkpoint storage', async () => {
    make().start();
    await nextCheckpoint();
    ackAll(coord, 1);
    await flush();
    await storage.write('job1/chk-9/count/0-late', Buffer.from('x'));
    await storage.write('job1/shared/1-count-0-x', Buffer.from('x'));
    await storage.write('job2/chk-1/_metadata', Buffer.from('{}'));
    await coord.stop('JOB_FINISHED');
    assert.deepEqual(
      [...storage.files.keys()].filter((k) => k.startsWith('job1/')),
      [],
      'retained, shared and orphaned files of the job are gone',
    );
    assert.ok(storage.files.has('job2/chk-1/_metadata'), "another job's files stay");
  });

  test('a canceled job that retains its checkpoints keeps only the retained ones', async () => {
    make({ externalizedRetention: 'RETAIN_ON_CANCELLATION', tolerableFailedCheckpoints: 5 }).start();
    await nextCheckpoint();
    ackAll(coord, 1);
    await flush();
    await storage.write('job1/chk-5/count/0-late', Buffer.from('x'));
    await coord.stop('JOB_CANCELED');
    assert.deepEqual(storage.dirs('job1'), ['job1/chk-1']);
  });

  test('ids only grow: after a JobManager restart and after a restore', async () => {
    make();
    coord.recover([{ id: 3, path: 'file:///checkpoints/job1/chk-3' }], 5);
    coord.continueAfter(4);
    coord.start();
    await nextCheckpoint();
    assert.deepEqual(job.triggered, [6], 'above every id the previous JobManager handed out');
    const other = new CheckpointCoordinator(new FakeJob(), { ...DEFAULT_CHECKPOINT_SETTINGS }, storage, log);
    other.continueAfter(20);
    assert.equal(other.highestId, 20, 'a job resumed from checkpoint or savepoint 20 goes on at 21');
  });

  test('a restarted JobManager deletes the checkpoints its predecessor left unfinished', async () => {
    for (const f of ['chk-3/_metadata', 'chk-3/op/0', 'chk-4/op/0', 'chk-5/op/0'])
      storage.files.set(`job1/${f}`, Buffer.from('{}'));
    make();
    coord.recover([{ id: 3, path: 'file:///checkpoints/job1/chk-3' }], 5);
    await flush();
    assert.deepEqual(storage.dirs('job1'), ['job1/chk-3']);
  });
});
