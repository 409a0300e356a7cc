import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT, TestCluster, tempDir } from '../helpers/cli.js';

/** Resident and peak resident memory of a process (Linux), bytes. */
function memory(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string): number => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)![1]) * 1024;
  return { rss: kb('VmRSS'), peak: kb('VmHWM') };
}

describe('network memory is bounded in bytes', () => {
  let cluster: TestCluster;
  const work = tempDir('weir-network-memory-');
  before(async () => {
    // a cluster of its own: peak memory counts from the start of the processes
    cluster = await new TestCluster({ taskManagers: 2, slots: 1 }).start();
  });
  after(async () => {
    await cluster?.stop();
  });

  test('a flatMap emitting 1M records (220 MB) per input: the TaskManagers stay within 150 MB of their start', async () => {
    const INPUTS = 2;
    const PER_INPUT = 1_000_000;
    const out = path.join(work, 'burst');
    // warm up: the TaskManagers' workers and bundles loaded, so the baseline includes them
    const w = await cluster.run([
      'run',
      path.join(ROOT, 'test/jobs/flatmap-burst.ts'),
      '--',
      '1',
      '1000',
      path.join(work, 'warm'),
    ]);
    assert.equal(w.code, 0, w.stdout + w.stderr);
    const pids = ['tm-1', 'tm-2'].map((id) => cluster.taskManagerPid(id));
    const before = pids.map((p) => memory(p).rss);
    const r = await cluster.run(
      ['run', path.join(ROOT, 'test/jobs/flatmap-burst.ts'), '--', String(INPUTS), String(PER_INPUT), out],
      { timeoutMs: 300_000 },
    );
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const growth = pids.map((p, i) => memory(p).peak - before[i]!);
    // every record arrived: per key, INPUTS * PER_INPUT / 2 records, the sum of their j
    const finals = new Map<number, [number, number]>();
    for (const f of readdirSync(out).filter((n) => n.startsWith('part-')))
      for (const l of readFileSync(path.join(out, f), 'utf8').split('\n').filter(Boolean)) {
        const [k, c, s] = JSON.parse(l) as [number, number, number];
        if (c > (finals.get(k)?.[0] ?? 0)) finals.set(k, [c, s]);
      }
    const half = PER_INPUT / 2;
    assert.deepStrictEqual(
      finals,
      new Map([
        [0, [INPUTS * half, INPUTS * half * (half - 1)]],
        [1, [INPUTS * half, INPUTS * half * half]],
      ]),
    );
    console.log(
      `peak memory growth per TaskManager: ${growth.map((g) => `${Math.round(g / 2 ** 20)} MB`).join(', ')}`,
    );
    for (const g of growth)
      assert.ok(g < 150 * 2 ** 20, `a TaskManager grew by ${Math.round(g / 2 ** 20)} MB`);
  });
});
