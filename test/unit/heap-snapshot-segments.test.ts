import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ListStateDescriptor,
  MapStateDescriptor,
  ValueStateDescriptor,
} from '../../packages/api/src/index.js';
import {
  FileCheckpointStorage,
  assignToKeyGroup,
  parseCheckpointMetadata,
  type FullKeyedHandle,
  type TaskDeploymentDescriptor__Output,
} from '../../packages/core/src/index.js';
import { HeapKeyedStateBackend } from '../../packages/taskmanager/src/state/heap-keyed-state-backend.js';
import type { KeyedStateBackend } from '../../packages/taskmanager/src/state/keyed-state-backend.js';
import { writeKeyedSnapshot } from '../../packages/taskmanager/src/state/keyed-snapshot-writer.js';
import { restoreKeyedState } from '../../packages/taskmanager/src/task/task-state-restore.js';
import { tempDir } from '../helpers/cli.js';
import { MAX_P, TestBackends } from '../helpers/state-backends.js';

const KEYS = 60_000;
const backends = new TestBackends();
after(() => backends.dispose());

/** Value, list and map state of KEYS keys: about 4 MB, so key groups pass the smallest segment. */
function fill(b: HeapKeyedStateBackend): void {
  const v = b.getState(new ValueStateDescriptor<string>('v'));
  const l = b.getListState(new ListStateDescriptor<number>('l'));
  const m = b.getMapState(new MapStateDescriptor<string, number>('m'));
  for (let k = 0; k < KEYS; k++) {
    b.setCurrentKey(k);
    v.update(`value-${k}-${'x'.repeat(k % 40)}`);
    if (k % 3 === 0) l.addAll([k, k + 1, k + 2]);
    if (k % 5 === 0) m.put(`u${k}`, k);
  }
}

function check(b: KeyedStateBackend, keys: number[]): void {
  const v = b.getState(new ValueStateDescriptor<string>('v'));
  const l = b.getListState(new ListStateDescriptor<number>('l'));
  const m = b.getMapState(new MapStateDescriptor<string, number>('m'));
  for (const k of keys) {
    b.setCurrentKey(k);
    assert.equal(v.value(), `value-${k}-${'x'.repeat(k % 40)}`, `key ${k}`);
    assert.deepEqual([...l.get()], k % 3 === 0 ? [k, k + 1, k + 2] : [], `list of key ${k}`);
    assert.equal(m.get(`u${k}`), k % 5 === 0 ? k : undefined, `map of key ${k}`);
  }
}

test('a heap snapshot stored while it is encoded (key groups in segments) restores into heap and RocksDB at another parallelism', async () => {
  const source = new HeapKeyedStateBackend();
  // a slice ends at every clock check: segments are handed on there
  source.snapshotSlicing = { ms: 0, checkEvery: 512 };
  fill(source);
  const dir = tempDir('weir-segments-');
  const storage = new FileCheckpointStorage(`file://${dir}`);
  const m = source.snapshot(MAX_P);
  const out = await writeKeyedSnapshot(storage, 'job/chk-1/op/0-a', m.batches!());
  assert.ok(out);
  const segmented = Object.values(out.index).filter((r) => r.length > 2).length;
  assert.ok(segmented > MAX_P / 2, `most key groups came in several segments (${segmented})`);
  const handle: FullKeyedHandle = {
    ...out.handle,
    path: 'chk-1/op/0-a',
    index: out.index,
    kinds: { v: 'value', l: 'list', m: 'map' },
  };
  // the handle passes _metadata's validation
  parseCheckpointMetadata(
    JSON.stringify({
      version: 1,
      jobId: 'job',
      checkpointId: 1,
      maxParallelism: MAX_P,
      operators: { op: { parallelism: 1, subtasks: { '0': { keyed: handle } } } },
    }),
    'checkpoint 1 _metadata',
  );
  for (const kind of ['heap', 'rocksdb'] as const) {
    for (let subtask = 0; subtask < 2; subtask++) {
      const b = await backends.open(kind);
      await restoreKeyedState(
        { storage: `file://${dir}/job`, checkpointId: 1, operators: { op: { keyed: [handle] } } },
        {
          maxParallelism: MAX_P,
          parallelism: 2,
          subtaskIndex: subtask,
          checkpointStorage: `file://${dir}`,
          jobId: 'job',
          vertexName: 'op',
        } as TaskDeploymentDescriptor__Output,
        [{ operatorId: 'op', backend: b }],
      );
      // every key of this subtask's key groups, each with its three states
      const mine: number[] = [];
      for (let k = 0; k < KEYS; k++) {
        const kg = assignToKeyGroup(k, MAX_P);
        if (subtask === 0 ? kg < MAX_P / 2 : kg >= MAX_P / 2) mine.push(k);
      }
      check(b, mine);
      assert.equal(b.numKeys(), mine.length, `${kind} subtask ${subtask}: only its key groups`);
    }
  }
});

test('batches({ segments: false }) (what S3 checkpoints ask for): every key group in one batch at the end, the same bytes as segments', async () => {
  const source = new HeapKeyedStateBackend();
  source.snapshotSlicing = { ms: 0, checkEvery: 512 };
  fill(source);
  const whole = new Map<number, Buffer>();
  for await (const b of source.snapshot(MAX_P).batches!({ segments: false }).batches) {
    assert.ok(!whole.has(b.keyGroup), `key group ${b.keyGroup} came once`);
    whole.set(b.keyGroup, Buffer.concat(b.parts));
  }
  assert.equal(whole.size, MAX_P);
  const segmented = new Map<number, Uint8Array[]>();
  let batches = 0;
  for await (const b of source.snapshot(MAX_P).batches!().batches) {
    batches++;
    segmented.set(b.keyGroup, [...(segmented.get(b.keyGroup) ?? []), ...b.parts]);
  }
  assert.ok(batches > MAX_P * 1.5, `segments otherwise (${batches} batches)`);
  for (const [kg, bytes] of whole)
    assert.ok(Buffer.concat(segmented.get(kg)!).equals(bytes), `key group ${kg}`);
  assert.equal(source.openSnapshotViews(), 0);
});
