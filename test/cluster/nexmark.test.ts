import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT, TestCluster, tempDir } from '../helpers/cli.js';
import { nexmarkReference } from '../../bench/nexmark/baseline.js';
import { NEXMARK_QUERIES, finalResult } from '../../examples/nexmark/queries.js';

const job = path.join(ROOT, 'examples/nexmark/job.ts');
/** 10 s of event time at the generator's default 10k events/s: tumbling, sliding and session windows close */
const EVENTS = 100_000;

function lines(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const f of readdirSync(dir).filter((n) => n.startsWith('part-')))
    for (const line of readFileSync(path.join(dir, f), 'utf8').split('\n')) if (line) out.push(line);
  return out;
}

describe('Nexmark: every query on one source, p=2 on 2 TaskManagers, against the single-process reference', () => {
  let cluster: TestCluster;
  const out = tempDir('nexmark');
  before(async () => {
    cluster = await new TestCluster({ taskManagers: 2, slots: 2 }).start();
    const r = await cluster.run(['run', job, '--', 'all', String(EVENTS), out, '2']);
    assert.equal(r.code, 0, r.stderr);
  });
  after(async () => {
    await cluster?.stop();
  });

  for (const query of NEXMARK_QUERIES.filter((q) => q !== 'q12')) {
    test(`${query} equals the reference exactly`, () => {
      const got = finalResult(query, lines(path.join(out, query))).sort();
      const want = nexmarkReference(query, EVENTS);
      assert.ok(want.length > 0, `the reference of ${query} is not empty`);
      assert.equal(got.length, want.length, `${query}: ${got.length} result lines, reference ${want.length}`);
      assert.deepEqual(got, want);
    });
  }

  // Processing-time windows still open when a bounded input ends are not fired (as in Flink),
  // and their bounds depend on the clock: every count is at most the reference's, and most bids are counted.
  test('q12 (processing-time windows) never counts a bid twice', () => {
    const got = new Map(
      finalResult('q12', lines(path.join(out, 'q12'))).map((l) => l.split(',') as [string, string]),
    );
    const want = nexmarkReference('q12', EVENTS).map((l) => l.split(','));
    let counted = 0;
    let total = 0;
    for (const [bidder, n] of want) {
      const g = Number(got.get(bidder!) ?? 0);
      assert.ok(g <= Number(n), `bidder ${bidder}: counted ${g}, has ${n} bids`);
      counted += g;
      total += Number(n);
      got.delete(bidder!);
    }
    assert.deepEqual([...got.keys()], [], 'no bidder that made no bid');
    assert.ok(counted > 0.5 * total, `counted ${counted} of ${total} bids`);
  });
});
