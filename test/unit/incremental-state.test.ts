import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import {
  ListStateDescriptor,
  MapStateDescriptor,
  StreamExecutionEnvironment,
  ValueStateDescriptor,
} from '../../packages/api/src/index.js';
import {
  buildJobGraph,
  computeKeyGroupRangeForOperatorIndex,
  createLogger,
  decodeRecords,
  FileCheckpointStorage,
  fileStorageUri,
  parseClusterConfig,
} from '../../packages/core/src/index.js';
import { SharedStateRegistry, sharedFilesOf } from '../../packages/jobmanager/src/shared-state-registry.js';
import {
  CheckpointCoordinator,
  type CheckpointedJob,
} from '../../packages/jobmanager/src/checkpoint-coordinator.js';
import { DEFAULT_CHECKPOINT_SETTINGS } from '../../packages/api/src/internal.js';
import { HeapKeyedStateBackend } from '../../packages/taskmanager/src/state/heap-keyed-state-backend.js';
import {
  restoreIncrementalState,
  type IncrementalKeyedHandle,
} from '../../packages/taskmanager/src/state/incremental-snapshot.js';
import type { KeyedStateBackend } from '../../packages/taskmanager/src/state/keyed-state-backend.js';
import type { RocksDBKeyedStateBackend } from '../../packages/taskmanager/src/state/rocksdb-keyed-state-backend.js';
import { ChangeLog, ChangeTracker } from '../../packages/taskmanager/src/state/rocksdb/change-tracker.js';
import { openRocksDB, forEachInRange } from '../../packages/taskmanager/src/state/rocksdb/binding.js';
import { stateKeyPrefix } from '../../packages/taskmanager/src/state/rocksdb/key-layout.js';
import { tempDir } from '../helpers/cli.js';
import { TestBackends } from '../helpers/state-backends.js';

const MAX_P = 128;
const root = tempDir('weir-incr-');
const storage = new FileCheckpointStorage(fileStorageUri(path.join(root, 'checkpoints')));
const backends = new TestBackends();
const rocks = (extra: Parameters<TestBackends['rocks']>[0] = {}): Promise<RocksDBKeyedStateBackend> =>
  backends.rocks({ incremental: true, ...extra });

after(async () => {
  await backends.dispose();
  rmSync(root, { recursive: true, force: true });
});

const count = new ValueStateDescriptor<number>('count');
const items = new ListStateDescriptor<string>('items');
const attrs = new MapStateDescriptor<string, number>('attrs');

/** Takes incremental checkpoint `id` as a task does: new files under job/shared, the handle relative to job/chk-<id>. */
async function checkpoint(b: KeyedStateBackend, id: number): Promise<IncrementalKeyedHandle | undefined> {
  const materialize = b.snapshotIncremental!(id, MAX_P);
  return materialize(async (name, data) => {
    const h = await storage.write(`job/shared/${id}-op-0-${name}`, Buffer.concat(data));
    return { ...h, path: `../shared/${id}-op-0-${name}` };
  });
}

/** Every entry of the state, decoded from a full canonical snapshot, for comparing two backends. */
async function contents(b: KeyedStateBackend): Promise<Map<string, unknown>> {
  const snap = await b.snapshot(MAX_P)();
  const out = new Map<string, unknown>();
  if (!snap) return out;
  for (const [off, len] of Object.values(snap.index)) {
    for (const [name, key, value] of decodeRecords(snap.data.subarray(off, off + len)) as Array<
      [string, unknown, unknown]
    >) {
      out.set(
        JSON.stringify([name, key]),
        name === 'attrs' ? new Map(value as Array<[unknown, unknown]>) : value,
      );
    }
  }
  return out;
}

async function restore(
  h: IncrementalKeyedHandle,
  id: number,
  into: KeyedStateBackend,
  inRange: (kg: number) => boolean = () => true,
): Promise<KeyedStateBackend> {
  await restoreIncrementalState(`${storage.root}/job/chk-${id}`, [h], into, inRange);
  return into;
}

function fill(b: KeyedStateBackend, from: number, to: number, tag = ''): void {
  for (let k = from; k < to; k++) {
    b.setCurrentKey(k);
    b.getState(count).update(k);
    b.getListState(items).update([`i${k}${tag}`]);
    b.getMapState(attrs).putAll([
      [`a${k}`, k],
      ['b', -k],
    ]);
  }
}

/** An incremental handle referencing shared files `[name, checkpoint that wrote it]`, without key groups. */
function referencing(files: Array<[string, number]>): IncrementalKeyedHandle {
  return {
    format: 'incremental',
    kinds: {},
    groups: {},
    checkpointedSize: 0,
    fullSize: 0,
    files: files.map(([p, c]) => ({ path: `../shared/${p}`, size: 1, sha256: '', checkpointId: c })),
  };
}

describe('incremental checkpoints of RocksDB state', () => {
  test('the first checkpoint is full, the next ones upload only what changed; restore into RocksDB and heap is exact', async () => {
    const b = await rocks();
    fill(b, 0, 2000);
    const h1 = (await checkpoint(b, 1))!;
    b.notifyCheckpointComplete!(1);
    assert.equal(h1.checkpointedSize, h1.fullSize);
    // change 1% of the keys, in every way a delta knows
    b.setCurrentKey(5);
    b.getState(count).update(-5);
    b.setCurrentKey(6);
    b.getState(count).clear();
    b.setCurrentKey(7);
    b.getMapState(attrs).remove('b');
    b.getMapState(attrs).put('new', 77);
    b.setCurrentKey(8);
    b.getMapState(attrs).clear();
    b.getMapState(attrs).put('after-clear', 8);
    b.setCurrentKey(9);
    b.getListState(items).add('more');
    b.setCurrentKey(10);
    b.getMapState(attrs).clear();
    fill(b, 5000, 5010, 'x');
    const h2 = (await checkpoint(b, 2))!;
    b.notifyCheckpointComplete!(2);
    assert.ok(
      h2.checkpointedSize < h1.fullSize * 0.05,
      `incremental ${h2.checkpointedSize} bytes vs full ${h1.fullSize}`,
    );
    assert.ok(
      h2.files.some((f) => f.checkpointId === 1),
      "unchanged key groups reference the first checkpoint's files",
    );
    const expected = await contents(b);
    for (const into of [await rocks({ incremental: false }), new HeapKeyedStateBackend()]) {
      assert.deepEqual(await contents(await restore(h2, 2, into)), expected);
    }
  });

  test("an aborted checkpoint's changes are uploaded by the next one", async () => {
    const b = await rocks();
    fill(b, 0, 300);
    await checkpoint(b, 1);
    b.notifyCheckpointComplete!(1);
    b.setCurrentKey(1);
    b.getState(count).update(1000);
    await checkpoint(b, 2);
    b.notifyCheckpointAborted!(2);
    b.setCurrentKey(2);
    b.getState(count).update(2000);
    const h3 = (await checkpoint(b, 3))!;
    b.notifyCheckpointComplete!(3);
    assert.ok(!h3.files.some((f) => f.checkpointId === 2), 'nothing of the aborted checkpoint is referenced');
    const into = await restore(h3, 3, new HeapKeyedStateBackend());
    into.setCurrentKey(1);
    assert.equal(into.getState(count).value(), 1000);
    into.setCurrentKey(2);
    assert.equal(into.getState(count).value(), 2000);
    assert.deepEqual(await contents(into), await contents(b));
  });

  test("a value state's writes are uploaded as recorded, in the order written, across flushes and an aborted checkpoint", async () => {
    const b = await rocks({ maxBufferedEntries: 4 });
    fill(b, 0, 300);
    await checkpoint(b, 1);
    b.notifyCheckpointComplete!(1);
    const steps: Array<[number, number | undefined]> = [
      [3, 31],
      [4, 41],
      [3, 32],
      [4, undefined],
      [5, undefined],
      [900, 9001],
    ];
    const apply = ([k, v]: [number, number | undefined]): void => {
      b.setCurrentKey(k);
      if (v === undefined) b.getState(count).clear();
      else b.getState(count).update(v);
      // other keys in between, so every step is flushed on its own
      for (let i = 0; i < 4; i++) {
        b.setCurrentKey(1000 + i);
        b.getState(count).update(k);
      }
    };
    steps.slice(0, 3).forEach(apply);
    await checkpoint(b, 2);
    b.notifyCheckpointAborted!(2);
    steps.slice(3).forEach(apply);
    b.setCurrentKey(3);
    b.getState(count).update(33);
    const h3 = (await checkpoint(b, 3))!;
    b.notifyCheckpointComplete!(3);
    const into = await restore(h3, 3, new HeapKeyedStateBackend());
    const want: Array<[number, number | undefined]> = [
      [3, 33],
      [4, undefined],
      [5, undefined],
      [900, 9001],
      [6, 6],
    ];
    for (const [k, v] of want) {
      into.setCurrentKey(k);
      assert.equal(into.getState(count).value(), v, `key ${k}`);
    }
    assert.deepEqual(await contents(into), await contents(b));
    assert.ok(h3.checkpointedSize < h3.fullSize / 4, `${h3.checkpointedSize} of ${h3.fullSize} bytes`);
  });

  test('after a failover restore, recorded writes build on the restored chains and restore exactly', async () => {
    const a = await rocks({ maxBufferedEntries: 16 });
    fill(a, 0, 400);
    await checkpoint(a, 1);
    a.notifyCheckpointComplete!(1);
    for (let k = 0; k < 100; k++) {
      a.setCurrentKey(k);
      a.getState(count).update(k * 10);
    }
    const h2 = (await checkpoint(a, 2))!;
    a.notifyCheckpointComplete!(2);
    // a new attempt restores checkpoint 2 and takes it as its base
    const b = await restore(h2, 2, await rocks({ maxBufferedEntries: 16 }));
    b.adoptRestoredChains!(2, [h2], () => true);
    for (let k = 50; k < 150; k++) {
      b.setCurrentKey(k);
      if (k % 7 === 0) b.getState(count).clear();
      else b.getState(count).update(-k);
    }
    const h3 = (await checkpoint(b, 3))!;
    b.notifyCheckpointComplete!(3);
    assert.ok(h3.checkpointedSize < h3.fullSize, `${h3.checkpointedSize} of ${h3.fullSize} bytes`);
    const into = await restore(h3, 3, new HeapKeyedStateBackend());
    assert.deepEqual(await contents(into), await contents(b));
    into.setCurrentKey(60);
    assert.equal(into.getState(count).value(), -60);
    into.setCurrentKey(63);
    assert.equal(into.getState(count).value(), undefined);
    into.setCurrentKey(20);
    assert.equal(into.getState(count).value(), 200);
  });

  test('past maxRecordedOpBytes of recorded writes, further writes are tracked by key: the checkpoint stays incremental and exact', async () => {
    const b = await rocks({ maxRecordedOpBytes: 200, maxBufferedEntries: 8 });
    fill(b, 0, 300);
    await checkpoint(b, 1);
    b.notifyCheckpointComplete!(1);
    for (let k = 0; k < 50; k++) {
      b.setCurrentKey(k);
      b.getState(count).update(-k);
    }
    // after the bound: a key recorded before it, written again
    b.setCurrentKey(1);
    b.getState(count).update(1111);
    const h2 = (await checkpoint(b, 2))!;
    b.notifyCheckpointComplete!(2);
    assert.ok(h2.checkpointedSize < h2.fullSize, `${h2.checkpointedSize} of ${h2.fullSize} bytes`);
    const into = await restore(h2, 2, new HeapKeyedStateBackend());
    assert.deepEqual(await contents(into), await contents(b));
    into.setCurrentKey(1);
    assert.equal(into.getState(count).value(), 1111);
  });

  test('long chains and large changes rewrite key groups whole; restore by key-group range (rescale)', async () => {
    const b = await rocks({ maxChainLength: 3 });
    fill(b, 0, 500);
    let h: IncrementalKeyedHandle | undefined;
    for (let id = 1; id <= 8; id++) {
      b.setCurrentKey(id);
      b.getState(count).update(id * 100);
      if (id === 5) fill(b, 0, 500, 'all'); // everything changed: full again
      h = (await checkpoint(b, id))!;
      b.notifyCheckpointComplete!(id);
      for (const chain of Object.values(h.groups)) assert.ok(chain.length <= 4, `chain of ${chain.length}`);
    }
    const expected = await contents(b);
    const parts = new Map<string, unknown>();
    for (let i = 0; i < 3; i++) {
      const range = computeKeyGroupRangeForOperatorIndex(MAX_P, 3, i);
      for (const [k, v] of await contents(await restore(h!, 8, await rocks(), (kg) => range.contains(kg))))
        parts.set(k, v);
    }
    assert.deepEqual(parts, expected);
  });

  test('more changed keys than fit in memory spill to the change log: checkpoints stay incremental and exact', async () => {
    const b = await rocks({ maxTrackedKeys: 50 });
    fill(b, 0, 4000);
    await checkpoint(b, 1);
    b.notifyCheckpointComplete!(1);
    // 600 changed keys (1,800 RocksDB keys), 36x what is held in memory
    fill(b, 0, 600, 'again');
    const h2 = (await checkpoint(b, 2))!;
    assert.ok(h2.checkpointedSize < h2.fullSize / 3, `${h2.checkpointedSize} of ${h2.fullSize} bytes`);
    assert.deepEqual(await contents(await restore(h2, 2, new HeapKeyedStateBackend())), await contents(b));
    // checkpoint 2 aborted: its spilled changes are uploaded by checkpoint 3, with new ones
    b.notifyCheckpointAborted!(2);
    fill(b, 3000, 3400, 'third');
    const h3 = (await checkpoint(b, 3))!;
    b.notifyCheckpointComplete!(3);
    assert.ok(h3.checkpointedSize < h3.fullSize / 2, `${h3.checkpointedSize} of ${h3.fullSize} bytes`);
    assert.ok(h3.files.every((f) => f.checkpointId !== 2));
    assert.deepEqual(await contents(await restore(h3, 3, new HeapKeyedStateBackend())), await contents(b));
    // checkpoint 3 covered both segments: nothing of them is uploaded again
    b.setCurrentKey(1);
    b.getState(count).update(-1);
    const h4 = (await checkpoint(b, 4))!;
    b.notifyCheckpointComplete!(4);
    assert.ok(h4.checkpointedSize < 1000, `${h4.checkpointedSize} bytes for one changed key`);
    assert.deepEqual(await contents(await restore(h4, 4, await rocks())), await contents(b));
  });

  test("the change log keeps a completed segment's rows while an upload still reads them", async () => {
    const db = await openRocksDB(path.join(root, 'changelog'), {
      blockCacheSize: 1 << 20,
      writeBufferSize: 1 << 20,
    });
    try {
      const rows = (): number => {
        let n = 0;
        forEachInRange(db, {}, () => void n++);
        return n;
      };
      const t = new ChangeTracker(3, new ChangeLog(db));
      t.reset(); // not "everything changed"
      const keys = Array.from({ length: 20 }, (_, i) => stateKeyPrefix(1, i, MAX_P));
      for (const k of keys) t.track(k, 'k');
      assert.ok(rows() >= 16, `${rows()} rows spilled`);
      const c = t.freeze(1);
      t.completed(1); // checkpoint 1 completes before the upload that read its changes is done
      await new Promise((r) => setImmediate(r));
      const seen = new Set<string>();
      for (const set of c.changed.values()) for (const k of set) seen.add(k);
      assert.equal(seen.size, 20, 'every tracked key, from memory and the log');
      c.release();
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(rows(), 0, 'dropped once released');
    } finally {
      await db.close();
    }
  });

  test('a corrupt shared file fails the restore naming the file', async () => {
    const b = await rocks();
    fill(b, 0, 10);
    const h = (await checkpoint(b, 1))!;
    const bad = { ...h, files: h.files.map((f) => ({ ...f, sha256: '0'.repeat(64) })) };
    await assert.rejects(
      restore(bad, 1, new HeapKeyedStateBackend()),
      /Checksum mismatch in checkpoint file .*shared\/1-op-0-0/,
    );
  });
});

describe('SharedStateRegistry', () => {
  test('a shared file is deleted exactly when no retained checkpoint references it', async () => {
    const dir = tempDir('weir-registry-');
    const st = new FileCheckpointStorage(fileStorageUri(dir));
    for (const f of ['a', 'b', 'c', 'd']) await st.write(`job/shared/${f}`, Buffer.from(f));
    const r = new SharedStateRegistry(st, createLogger('test'));
    const op = (files: Array<[string, number]>) => ({
      op: {
        subtasks: {
          0: {
            keyed: referencing(files),
          },
        },
      },
    });
    const c1 = sharedFilesOf(
      op([
        ['a', 1],
        ['b', 1],
      ]),
      'job/chk-1',
    );
    assert.deepEqual(
      c1.map((f) => f.path),
      ['job/shared/a', 'job/shared/b'],
    );
    r.register(1, c1);
    const c2 = sharedFilesOf(
      op([
        ['a', 1],
        ['c', 2],
      ]),
      'job/chk-2',
    );
    assert.equal(r.missing(2, c2), undefined);
    r.register(2, c2);
    assert.deepEqual(await r.unregister(1), ['job/shared/b']);
    assert.deepEqual(readdirSync(path.join(dir, 'job/shared')).sort(), ['a', 'c', 'd']);
    // a checkpoint that takes over a file no retained checkpoint has any more is refused
    assert.equal(r.missing(3, sharedFilesOf(op([['b', 1]]), 'job/chk-3'))?.path, 'job/shared/b');
    // an aborted checkpoint's own files go, the ones a retained checkpoint uses stay
    await r.discardUnreferenced(
      sharedFilesOf(
        op([
          ['a', 1],
          ['d', 3],
        ]),
        'job/chk-3',
      ),
    );
    assert.deepEqual(readdirSync(path.join(dir, 'job/shared')).sort(), ['a', 'c']);
    await r.unregister(2);
    assert.deepEqual(readdirSync(path.join(dir, 'job/shared')), []);
    rmSync(dir, { recursive: true, force: true });
  });
});

describe('a restarted JobManager', () => {
  test("rebuilds the registry from the retained checkpoints' _metadata: referenced files stay, orphans of earlier checkpoints go", async () => {
    const dir = tempDir('weir-recover-');
    const st = new FileCheckpointStorage(fileStorageUri(dir));
    const jobId = 'j1';
    const md = (id: number, files: Array<[string, number]>) =>
      Buffer.from(
        JSON.stringify({
          version: 1,
          jobId,
          checkpointId: id,
          maxParallelism: MAX_P,
          operators: {
            op: {
              parallelism: 1,
              subtasks: {
                0: {
                  keyed: referencing(files),
                },
              },
            },
          },
        }),
      );
    await st.write(
      `${jobId}/chk-4/_metadata`,
      md(4, [
        ['3-op-0-a-0', 3],
        ['4-op-0-b-0', 4],
      ]),
    );
    await st.write(
      `${jobId}/chk-5/_metadata`,
      md(5, [
        ['3-op-0-a-0', 3],
        ['5-op-0-c-0', 5],
      ]),
    );
    for (const f of [
      '3-op-0-a-0',
      '4-op-0-b-0',
      '5-op-0-c-0',
      '4-op-1-orphan-0',
      '6-op-0-in-flight-0',
      '9-op-0-newer-0',
    ])
      await st.write(`${jobId}/shared/${f}`, Buffer.from(f));
    const job = {
      jobId,
      maxParallelism: MAX_P,
      runningTasks: () => undefined,
      trigger: async () => {},
      notify: () => {},
      failover: () => {},
    } satisfies CheckpointedJob;
    const c = new CheckpointCoordinator(
      job,
      { ...DEFAULT_CHECKPOINT_SETTINGS, retainedCheckpoints: 2 },
      st,
      createLogger('test'),
    );
    c.recover(
      [
        { id: 4, path: `${st.root}/${jobId}/chk-4` },
        { id: 5, path: `${st.root}/${jobId}/chk-5` },
      ],
      6,
    );
    await c.sharedStateRecovered();
    // 6 was in flight when the old JobManager died; 9 is being written by the new one
    assert.deepEqual(readdirSync(path.join(dir, jobId, 'shared')).sort(), [
      '3-op-0-a-0',
      '4-op-0-b-0',
      '5-op-0-c-0',
      '9-op-0-newer-0',
    ]);
    assert.deepEqual([...c.sharedState.referenced()].sort(), [
      `${jobId}/shared/3-op-0-a-0`,
      `${jobId}/shared/4-op-0-b-0`,
      `${jobId}/shared/5-op-0-c-0`,
    ]);
    // discarding checkpoint 4 deletes only what 5 does not use
    assert.deepEqual(await c.sharedState.unregister(4), [`${jobId}/shared/4-op-0-b-0`]);
    rmSync(dir, { recursive: true, force: true });
  });
});

describe('choosing incremental checkpoints', () => {
  test('state.backend.incremental in the cluster file, setStateBackend(.., { incremental }) in the job', () => {
    assert.equal(
      parseClusterConfig('state.backend.type: rocksdb\nstate.backend.incremental: true', 'f.yaml')
        .incrementalCheckpoints,
      true,
    );
    assert.throws(
      () => parseClusterConfig('state.backend.incremental: sometimes', 'f.yaml'),
      /'state.backend.incremental'.*true or false/,
    );
    const graph = (options?: { incremental?: boolean }) => {
      const env = StreamExecutionEnvironment.getExecutionEnvironment();
      env.setStateBackend('rocksdb', options);
      env
        .fromElements(1, 2)
        .keyBy((n) => n)
        .sinkTo({ createWriter: () => ({ write: () => {} }) });
      return buildJobGraph(env.getStreamGraph('j'));
    };
    assert.equal(graph({ incremental: true }).incrementalCheckpoints, true);
    assert.equal(graph({ incremental: false }).incrementalCheckpoints, false);
    assert.equal(graph().incrementalCheckpoints, undefined);
  });
});
