// What the chaos suite checks once a job has ended: the committed output against the reference
// computed from the same input, and the files nothing should have left behind.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

/** keys of test/chaos/job.ts */
export const KEYS = 1000;

export interface OutputCheck {
  exact: boolean;
  /** at most a dozen lines naming keys, counts and files */
  problems: string[];
}

/**
 * The job emits [key, count, sum] for every record i (key i % KEYS). Records of a key arrive in
 * an order that depends on the sources' interleaving, so exactly-once output is, per key: counts
 * 1..n, each once, and the steps between consecutive sums (sum at count c minus sum at c - 1)
 * are exactly that key's records, each once, which also makes the last sum exact.
 */
export function checkOutput(dir: string, records: number): OutputCheck {
  const problems: string[] = [];
  const per = new Map<number, Array<{ c: number; s: number; file: string }>>();
  const files = existsSync(dir) ? readdirSync(dir) : [];
  for (const f of files.filter((n) => n.startsWith('part-'))) {
    const text = readFileSync(path.join(dir, f), 'utf8');
    for (const line of text.split('\n')) {
      if (!line) continue;
      let rec: [number, number, number];
      try {
        rec = JSON.parse(line) as [number, number, number];
      } catch {
        problems.push(`${f}: a line that is not JSON: ${line.slice(0, 80)}`);
        continue;
      }
      let l = per.get(rec[0]);
      if (!l) per.set(rec[0], (l = []));
      l.push({ c: rec[1], s: rec[2], file: f });
    }
  }
  let missingKeys = 0;
  let wrongKeys = 0;
  for (let k = 0; k < KEYS; k++) {
    const ups = (per.get(k) ?? []).sort((a, b) => a.c - b.c);
    const own = new Set<number>();
    for (let i = k; i < records; i += KEYS) own.add(i);
    const n = own.size;
    if (ups.length === 0 && n > 0) {
      missingKeys++;
      continue;
    }
    const seen = new Map<number, string[]>();
    for (const u of ups) seen.set(u.c, [...(seen.get(u.c) ?? []), u.file]);
    const repeats = [...seen].filter(([, fs]) => fs.length > 1);
    const gaps: number[] = [];
    for (let c = 1; c <= n; c++) if (!seen.has(c)) gaps.push(c);
    const extra = [...seen.keys()].filter((c) => c < 1 || c > n);
    const badSums: typeof ups = [];
    if (!repeats.length && !gaps.length && !extra.length)
      ups.forEach((u, i) => {
        const step = u.s - (i === 0 ? 0 : ups[i - 1]!.s);
        if (!own.delete(step)) badSums.push(u);
      });
    if (repeats.length || gaps.length || extra.length || badSums.length) {
      wrongKeys++;
      if (problems.length < 12) {
        const parts: string[] = [];
        if (repeats.length)
          parts.push(
            `${repeats.length} counts repeated (e.g. count ${repeats[0]![0]} in ${repeats[0]![1].join(', ')})`,
          );
        if (gaps.length) parts.push(`${gaps.length} counts missing (e.g. ${gaps.slice(0, 5).join(', ')})`);
        if (extra.length) parts.push(`counts beyond 1..${n}: ${extra.slice(0, 5).join(', ')}`);
        if (badSums.length)
          parts.push(`${badSums.length} wrong sums (e.g. count ${badSums[0]!.c} in ${badSums[0]!.file})`);
        problems.push(`key ${k}: ${parts.join('; ')}`);
      }
    }
  }
  if (missingKeys) problems.push(`${missingKeys} keys have no output at all`);
  if (wrongKeys) problems.push(`${wrongKeys} of ${KEYS} keys wrong`);
  return { exact: problems.length === 0, problems };
}

function walk(dir: string, base = dir): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const e of readdirSync(dir)) {
    const p = path.join(dir, e);
    if (statSync(p).isDirectory()) out.push(...walk(p, base));
    else out.push(path.relative(base, p));
  }
  return out;
}

/**
 * Files an ended job must not leave: in-progress (hidden) sink files, anything under the job's
 * checkpoint directory (a finished or canceled job keeps no chk-* directory and no shared/ file;
 * its savepoints live elsewhere), and its entry in the job store. `checkpointRoot` is the local
 * checkpoint directory, or s3rver's directory for the bucket's checkpoint prefix (its object files
 * carry a `._S3rver_` suffix).
 */
export function findOrphans(opts: {
  sinkDir: string;
  checkpointRoot: string;
  jobStore: string;
  jobIds: string[];
}): string[] {
  const orphans: string[] = [];
  if (existsSync(opts.sinkDir))
    for (const f of readdirSync(opts.sinkDir)) if (!f.startsWith('part-')) orphans.push(`sink: ${f}`);
  for (const id of opts.jobIds) {
    const files = walk(path.join(opts.checkpointRoot, id))
      .map((f) => f.replace(/\._S3rver_[\w.]+$/, ''))
      .filter((f, i, a) => a.indexOf(f) === i);
    for (const f of files) orphans.push(`checkpoints: ${id}/${f}`);
    const stored = path.join(opts.jobStore, 'jobs', id);
    if (existsSync(stored)) orphans.push(`job store: jobs/${id} (${readdirSync(stored).join(', ')})`);
  }
  return orphans;
}
