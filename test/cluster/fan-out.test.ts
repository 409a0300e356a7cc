import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT, TestCluster, tempDir } from '../helpers/cli.js';

function count(dir: string): number {
  let n = 0;
  for (const f of readdirSync(dir).filter((x) => x.startsWith('part-')))
    n += readFileSync(path.join(dir, f), 'utf8').split('\n').filter(Boolean).length;
  return n;
}

describe('an operator with two outputs over forward edges', () => {
  let cluster: TestCluster;
  const work = tempDir();

  before(async () => {
    cluster = await new TestCluster({ taskManagers: 2, slots: 2 }).start();
  });
  after(async () => {
    await cluster?.stop();
  });

  // forward subpartitions no consumer reads must not hold events (barriers, end of partition),
  // and a final barrier right behind EndOfData must not overtake it
  test('finishes with checkpointing on and both outputs complete', async () => {
    const out = path.join(work, 'out');
    const r = await cluster.run(['run', path.join(ROOT, 'test/jobs/fan-out.ts'), '--', '6000', out], {
      timeoutMs: 60_000,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(count(path.join(out, 'a')), 6000);
    assert.equal(count(path.join(out, 'b')), 6000);
  });
});
