// One chaos run: a fresh cluster, the scenario's faults, then the checks (exact output, no orphaned
// files). Used by `npm run chaos` (test/chaos/run.ts) and by the quick subset in `npm test`.
import path from 'node:path';
import { checkOutput, findOrphans } from './check.js';
import { ChaosCluster, sleep } from './harness.js';
import { Rng, type Scenario } from './scenarios.js';

export interface RunResult {
  scenario: string;
  run: number;
  seed: number;
  faults: number;
  exact: boolean;
  problems: string[];
  orphans: string[];
  /** the run could not complete (a timeout, a failed job): counted as not exact */
  error?: string;
  notes: string[];
  seconds: number;
  /** kept for inspection when something was wrong */
  workDir?: string;
}

/** The seed of one run, from the suite's seed, the scenario and the run's number. */
export function runSeed(seed: number, scenario: string, run: number): number {
  let h = seed ^ (run * 0x9e3779b1);
  for (const ch of scenario) h = Math.imul(h ^ ch.charCodeAt(0), 16777619);
  return h >>> 0;
}

export async function runOnce(
  s: Scenario,
  seed: number,
  run: number,
  log: (line: string) => void = () => {},
): Promise<RunResult> {
  const started = Date.now();
  const rs = runSeed(seed, s.name, run);
  const notes: string[] = [];
  const c = new ChaosCluster(s.cluster);
  const result: RunResult = {
    scenario: s.name,
    run,
    seed: rs,
    faults: 0,
    exact: false,
    problems: [],
    orphans: [],
    notes,
    seconds: 0,
  };
  let jobIds: string[] = [];
  let injected = 0;
  const out = path.join(c.work, 'out', 'results');
  try {
    await c.start();
    const o = await s.run({
      c,
      rng: new Rng(rs),
      out,
      records: s.records,
      injected: (n = 1) => {
        injected += n;
        result.faults = injected;
      },
      note: (m) => {
        notes.push(m);
        log(`  ${s.name}#${run}: ${m}`);
      },
    });
    result.faults = Math.max(o.faults, injected);
    jobIds = o.jobIds;
    const check = checkOutput(out, s.records);
    result.exact = check.exact;
    result.problems = check.problems;
    // an ended job's files go away shortly after it reports its end
    const deadline = Date.now() + 10_000;
    for (;;) {
      result.orphans = findOrphans({
        sinkDir: out,
        checkpointRoot: c.checkpointRoot,
        jobStore: c.jobStore,
        jobIds,
      });
      if (result.orphans.length === 0 || Date.now() > deadline) break;
      await sleep(500);
    }
  } catch (e) {
    result.error = (e as Error).message.split('\n')[0]!.slice(0, 300);
    // what was committed so far still tells whether anything was duplicated
    result.problems = checkOutput(out, s.records).problems.filter((p) =>
      /repeated|wrong sums|beyond/.test(p),
    );
  } finally {
    result.seconds = Math.round((Date.now() - started) / 1000);
    const bad = !result.exact || result.orphans.length > 0 || result.error !== undefined;
    if (bad) result.workDir = c.work;
    await c.stop(bad);
  }
  return result;
}

export interface Row {
  scenario: string;
  faults: number;
  runs: number;
  exact: number;
  wrong: number;
  orphaned: number;
  errors: number;
}

export function tally(results: RunResult[], order: string[]): Row[] {
  return order.map((name) => {
    const rs = results.filter((r) => r.scenario === name);
    return {
      scenario: name,
      faults: rs.reduce((a, r) => a + r.faults, 0),
      runs: rs.length,
      exact: rs.filter((r) => r.exact && !r.error).length,
      wrong: rs.filter((r) => r.problems.length > 0).length,
      orphaned: rs.filter((r) => r.orphans.length > 0).length,
      errors: rs.filter((r) => r.error !== undefined).length,
    };
  });
}

/** The table in Markdown, with a total line. */
export function markdownTable(rows: Row[]): string {
  const total = rows.reduce(
    (a, r) => ({
      faults: a.faults + r.faults,
      runs: a.runs + r.runs,
      exact: a.exact + r.exact,
      wrong: a.wrong + r.wrong,
      orphaned: a.orphaned + r.orphaned,
      errors: a.errors + r.errors,
    }),
    { faults: 0, runs: 0, exact: 0, wrong: 0, orphaned: 0, errors: 0 },
  );
  const lines = [
    '| scenario | faults injected | runs | exact outputs | wrong outputs | runs with orphaned files | runs not completed |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows.map(
      (r) =>
        `| ${r.scenario} | ${r.faults} | ${r.runs} | ${r.exact} | ${r.wrong} | ${r.orphaned} | ${r.errors} |`,
    ),
    `| **total** | **${total.faults}** | **${total.runs}** | **${total.exact}** | **${total.wrong}** | **${total.orphaned}** | **${total.errors}** |`,
  ];
  return lines.join('\n');
}
