import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { defaultSettings } from '../../packages/core/src/index.js';
import { TaskExecutor } from '../../packages/taskmanager/src/task-executor.js';
import {
  FRAMEWORK_BYTES,
  MIN_TASK_HEAP_PER_SLOT,
  resolveProcessMemory,
} from '../../packages/taskmanager/src/process-memory.js';
import { tempDir } from '../helpers/cli.js';

const MiB = 1 << 20;

describe('taskmanager.memory.process.size', () => {
  test('splits the process into framework, overhead, managed memory and per-slot task heaps', () => {
    const pm = resolveProcessMemory(1024 * MiB, undefined, 0.4, 1);
    assert.equal(pm.overhead, 192 * MiB, 'overhead: 10% of 1 GiB is under its 192 MiB minimum');
    const available = 1024 * MiB - FRAMEWORK_BYTES - 192 * MiB;
    assert.equal(pm.managed, Math.floor(available * 0.4));
    assert.equal(pm.taskHeapPerSlot, available - pm.managed);
    // the worker's heap holds its task heap and its read cache (half the slot's managed memory)
    assert.equal(pm.workerHeapMb, Math.floor((pm.taskHeapPerSlot + pm.managed / 2) / MiB));
    for (const slots of [1, 2, 3, 8]) {
      const p = resolveProcessMemory(4096 * MiB, undefined, 0.4, slots);
      assert.ok(p.framework + p.overhead + p.managed + slots * p.taskHeapPerSlot <= 4096 * MiB);
      assert.equal(p.overhead, Math.floor(409.6 * MiB));
    }
    assert.equal(resolveProcessMemory(64 * 1024 * MiB, undefined, 0.4, 1).overhead, 1024 * MiB);
    assert.equal(
      resolveProcessMemory(2048 * MiB, 300 * MiB, 0.4, 2).managed,
      300 * MiB,
      'an explicit managed size wins',
    );
  });

  test('too small for the slots: an error naming the setting and the smallest size that works', () => {
    for (const [slots, managed] of [
      [1, undefined],
      [4, undefined],
      [2, 512 * MiB],
    ] as const) {
      let least = 0;
      assert.throws(
        () => resolveProcessMemory(300 * MiB, managed, 0.4, slots),
        (e: Error) => {
          const m = /set taskmanager\.memory\.process\.size to at least (\d+) bytes/.exec(e.message);
          assert.ok(m, e.message);
          least = Number(m[1]);
          return e.message.includes(`${slots} slot`);
        },
      );
      const ok = resolveProcessMemory(least, managed, 0.4, slots);
      assert.ok(ok.taskHeapPerSlot >= MIN_TASK_HEAP_PER_SLOT);
      assert.throws(() => resolveProcessMemory(least - MiB, managed, 0.4, slots), /too small/);
    }
  });

  test('a TaskManager given too little fails at start; one given enough limits its slot workers', () => {
    const work = tempDir('weir-procmem-');
    const opts = {
      jobManagerAddress: '127.0.0.1:1',
      slots: 2,
      host: '127.0.0.1',
      port: 0,
      workDir: path.join(work, 'work'),
      stateDir: path.join(work, 'state'),
    };
    assert.throws(
      () =>
        new TaskExecutor({
          ...opts,
          settings: { ...defaultSettings(), 'taskmanager.memory.process.size': 256 * MiB },
        }),
      /taskmanager\.memory\.process\.size is 268435456 bytes \(256 MiB\), too small for 2 slots/,
    );
    const tm = new TaskExecutor({
      ...opts,
      settings: { ...defaultSettings(), 'taskmanager.memory.process.size': 1024 * MiB },
    });
    const pm = tm.processMemory!;
    assert.equal(
      tm.rocksdb.memory.perSlot,
      Math.floor(pm.managed / 2),
      'managed memory comes from the process size',
    );
  });
});
