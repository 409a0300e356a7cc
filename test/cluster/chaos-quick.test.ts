// The quick subset of the fault suite (`npm run chaos` runs all of it, see docs/chaos.md): two
// scenarios once each, shortened, on a cluster of real processes in network namespaces. Each
// must inject its faults into the running job, end with exactly-once output and leave no
// orphaned files. Needs root, iproute2 and iptables; elsewhere it skips and says why.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { netnsUnavailable } from '../helpers/netns.js';
import { runOnce } from '../chaos/runner.js';
import { SCENARIOS } from '../chaos/scenarios.js';

const skip = netnsUnavailable(['iptables', 'tc']);
const SEED = Number(process.env.CHAOS_SEED ?? 20_261_129);
const QUICK = ['tm-peer-partition', 'jm-kill'];

for (const name of QUICK) {
  test(`chaos (quick): ${name}`, { skip: skip ?? false, timeout: 120_000 }, async (t) => {
    const s = SCENARIOS.find((x) => x.name === name)!;
    const r = await runOnce({ ...s, records: 30_000, faultsPerRun: 2 }, SEED, 1, (l) => t.diagnostic(l));
    t.diagnostic(`seed ${r.seed}: ${r.faults} faults in ${r.seconds} s`);
    assert.equal(r.error, undefined, `the run completed (files kept in ${r.workDir})`);
    assert.ok(r.faults >= 1, 'faults hit the running job');
    assert.deepEqual(r.problems, [], 'exactly-once output');
    assert.deepEqual(r.orphans, [], 'no orphaned files');
  });
}
