// `npm run chaos`: every scenario of test/chaos/scenarios.ts several times with seeded random
// fault timing, then a Markdown table of faults injected and survived. Options:
//   --seed N        the seed (default: from the clock; printed either way, to repeat a run)
//   --runs N        runs per scenario (default 4)
//   --only a,b      only these scenarios
// Exit code 1 when any run was not exact, left orphaned files or did not complete.
import { parseArgs } from 'node:util';
import { netnsUnavailable } from '../helpers/netns.js';
import { markdownTable, runOnce, tally, type RunResult } from './runner.js';
import { SCENARIOS } from './scenarios.js';

const { values } = parseArgs({
  options: {
    seed: { type: 'string', default: process.env.CHAOS_SEED },
    runs: { type: 'string', default: process.env.CHAOS_RUNS ?? '4' },
    only: { type: 'string', default: process.env.CHAOS_ONLY },
  },
});
const why = netnsUnavailable(['iptables', 'tc']);
if (why) {
  console.log(`chaos suite skipped: ${why}`);
  process.exit(0);
}
// Ctrl-C or a kill: exit normally, so the namespaces, processes and mounts are removed on the way
for (const sig of ['SIGINT', 'SIGTERM'] as const)
  process.once(sig, () => {
    console.log(`${sig}: removing what this run made`);
    process.exit(130);
  });
const seed = values.seed ? Number(values.seed) : Date.now() % 1_000_000_007;
const runs = Number(values.runs);
const only = values.only?.split(',').filter(Boolean);
const scenarios = SCENARIOS.filter((s) => !only || only.includes(s.name));
if (only && scenarios.length !== only.length)
  throw new Error(
    `unknown scenario in --only ${values.only}; known: ${SCENARIOS.map((s) => s.name).join(', ')}`,
  );

console.log(`chaos seed ${seed} (repeat with: npm run chaos -- --seed ${seed}); ${runs} runs per scenario`);
const started = Date.now();
const results: RunResult[] = [];
for (const s of scenarios) {
  for (let run = 1; run <= runs; run++) {
    const r = await runOnce(s, seed, run, (l) => console.log(l));
    results.push(r);
    const verdict = r.error ? `NOT COMPLETED: ${r.error}` : r.exact ? 'exact' : 'WRONG';
    console.log(
      `${s.name} run ${run} (seed ${r.seed}): ${r.faults} faults, ${verdict}${r.orphans.length ? `, ${r.orphans.length} orphaned files` : ''}, ${r.seconds} s`,
    );
    for (const p of r.problems) console.log(`    output: ${p}`);
    for (const o of r.orphans.slice(0, 10)) console.log(`    orphan: ${o}`);
    if (r.workDir) console.log(`    kept for inspection: ${r.workDir}`);
  }
}
const rows = tally(
  results,
  scenarios.map((s) => s.name),
);
console.log(`\nchaos seed ${seed}, ${Math.round((Date.now() - started) / 1000)} s\n`);
console.log(markdownTable(rows));
console.log('\nScenarios:');
for (const s of scenarios) console.log(`- ${s.name}: ${s.title}`);
const bad = results.filter((r) => !r.exact || r.orphans.length || r.error).length;
console.log(`\n${results.length - bad} passed, ${bad} failed`);
process.exitCode = bad ? 1 : 0;
