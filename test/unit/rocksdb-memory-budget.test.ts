import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { defaultSettings } from '../../packages/core/src/index.js';
import { TaskExecutor } from '../../packages/taskmanager/src/task-executor.js';
import {
  MIN_SLOT_BYTES,
  databaseMemory,
  managedMemoryPerSlot,
} from '../../packages/taskmanager/src/state/rocksdb/memory-budget.js';
import { tempDir } from '../helpers/cli.js';

describe('managed memory too small to run', () => {
  test('the smallest workable slot gives every share of a database its minimum', () => {
    const m = databaseMemory({ perSlot: MIN_SLOT_BYTES });
    for (const v of [m.readCacheBytes, m.blockCacheSize, m.writeBufferSize]) assert.ok(v >= 1 << 20);
    assert.equal(managedMemoryPerSlot(MIN_SLOT_BYTES * 3, 0.4, 3), MIN_SLOT_BYTES);
  });

  test('a size under the minimum names the setting and the smallest workable value for the slots', () => {
    assert.throws(
      () => managedMemoryPerSlot(MIN_SLOT_BYTES * 4 - 1, 0.4, 4),
      (e: Error) =>
        e.message.includes('taskmanager.memory.managed.size is') &&
        e.message.includes(`at least ${MIN_SLOT_BYTES * 4} bytes`) &&
        e.message.includes('4 slots'),
    );
  });

  test('a TaskManager with too little managed memory fails at start, naming the setting', () => {
    const work = tempDir('weir-membudget-');
    assert.throws(
      () =>
        new TaskExecutor({
          jobManagerAddress: '127.0.0.1:1',
          slots: 2,
          host: '127.0.0.1',
          port: 0,
          workDir: path.join(work, 'work'),
          stateDir: path.join(work, 'state'),
          settings: { ...defaultSettings(), 'taskmanager.memory.managed.size': 1 << 20 },
        }),
      new RegExp(`set taskmanager\\.memory\\.managed\\.size to at least ${MIN_SLOT_BYTES * 2} bytes`),
    );
  });
});
