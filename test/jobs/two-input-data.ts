/**
 * The deterministic inputs of the two-input job (two-input.ts) and the reference its output
 * is checked against. Left record i: key i % KEYS, timestamp BASE + 10 i; from the middle of
 * the input on, every 397th left record is planted late at BASE + 1 (far behind every
 * watermark by then). Right record j: key j % KEYS, timestamp BASE + 10 j + 3. Rules: a small
 * bounded broadcast input, slow enough to
 * run as long as the others. Watermarks are punctuated per input (the highest timestamp minus
 * 500 ms, rounded down to a second, minus 1), so they fall among the records the same way in
 * every run; a two-input operator's watermark is the minimum of its inputs'.
 */
export const KEYS = 50;
export const BASE = 1_700_000_000_000;
export const WINDOW = 1000;
export const PERIOD = 2000;
/** right.ts - left.ts in [LOWER, UPPER] joins */
export const LOWER = -600;
export const UPPER = 400;
/** The broadcast input: rule r sets 'r<r % 7>' to r, so later rules overwrite earlier ones. */
export const RULE_COUNT = 40;
export function rule(r: number): [string, number] {
  return [`r${r % 7}`, r];
}
export const RULES: Array<[string, number]> = Array.from({ length: RULE_COUNT }, (_, r) => rule(r));

export interface Left {
  i: number;
  key: number;
  ts: number;
  late: boolean;
}
export interface Right {
  j: number;
  key: number;
  ts: number;
}

export function left(n: number): (i: number) => Left {
  return (i) => {
    const late = i >= n / 2 && i % 397 === 396;
    return { i, key: i % KEYS, ts: late ? BASE + 1 : BASE + 10 * i, late };
  };
}

export function right(j: number): Right {
  return { j, key: j % KEYS, ts: BASE + 10 * j + 3 };
}

export function watermarkFor(maxTs: number): number {
  return Math.floor((maxTs - 500) / 1000) * 1000 - 1;
}

/** The event-time timer of a record's period in the keyed co-process function. */
export function periodEnd(ts: number): number {
  return (Math.floor(ts / PERIOD) + 1) * PERIOD - 1;
}

/** Fires after every record: the keyed broadcast function reports then. */
export function endOf(n: number): number {
  return BASE + 10 * n + 10_000;
}

export function rulesFingerprint(entries: Iterable<[string, number]>): string {
  return [...entries]
    .map(([k, v]) => `${k}=${v}`)
    .sort()
    .join(',');
}

/** Every output line of the job, as JSON strings, per output directory. */
export function reference(n: number, parallelism: number): Record<string, string[]> {
  const L = Array.from({ length: n }, (_, i) => left(n)(i));
  const R = Array.from({ length: n }, (_, j) => right(j));
  const onTime = L.filter((l) => !l.late);
  const out: Record<string, string[]> = {
    comap: [],
    co: [],
    ij: [],
    late: [],
    join: [],
    cogroup: [],
    bc: [],
  };
  for (const l of L) out.comap!.push(JSON.stringify(['L', l.i]));
  for (const r of R) out.comap!.push(JSON.stringify(['R', r.j]));
  // keyed co-process: per key and period, counts of both sides, reported by the period's timer
  const periods = new Map<string, [number, number, number, number]>();
  const add = (key: number, ts: number, side: 2 | 3): void => {
    const k = `${key}:${periodEnd(ts)}`;
    const e = periods.get(k) ?? periods.set(k, [key, periodEnd(ts), 0, 0]).get(k)!;
    e[side]++;
  };
  for (const l of onTime) add(l.key, l.ts, 2);
  for (const r of R) add(r.key, r.ts, 3);
  for (const e of periods.values()) out.co!.push(JSON.stringify(['co', ...e]));
  // interval join
  const rightsByKey = new Map<number, Right[]>();
  for (const r of R) (rightsByKey.get(r.key) ?? rightsByKey.set(r.key, []).get(r.key)!).push(r);
  for (const l of L) {
    if (l.late) {
      out.late!.push(JSON.stringify(['late-left', l.i]));
      continue;
    }
    for (const r of rightsByKey.get(l.key) ?? [])
      if (r.ts - l.ts >= LOWER && r.ts - l.ts <= UPPER)
        out.ij!.push(JSON.stringify(['ij', l.i, r.j, Math.max(l.ts, r.ts)]));
  }
  // window join and coGroup (tumbling windows, on-time left records)
  const groups = new Map<string, [number[], number[]]>();
  const group = (key: number, ts: number): [number[], number[]] => {
    const k = `${key}:${Math.floor(ts / WINDOW)}`;
    return groups.get(k) ?? groups.set(k, [[], []]).get(k)!;
  };
  for (const l of onTime) group(l.key, l.ts)[0].push(l.i);
  for (const r of R) group(r.key, r.ts)[1].push(r.j);
  for (const [ls, rs] of groups.values()) {
    for (const i of ls) for (const j of rs) out.join!.push(JSON.stringify(['join', i, j]));
    out.cogroup!.push(
      JSON.stringify([
        'cg',
        ls.length ? Math.min(...ls) : -1,
        rs.length ? Math.min(...rs) : -1,
        ls.length,
        rs.length,
      ]),
    );
  }
  // broadcast: every subtask sees every rule; the keyed side reports its sum with the final rules
  const final = new Map<string, number>();
  for (const [k, v] of RULES) final.set(k, v);
  for (let s = 0; s < parallelism; s++)
    for (const [k, v] of RULES) out.bc!.push(JSON.stringify(['rule', k, v]));
  const sums = new Map<number, number>();
  for (const l of onTime) sums.set(l.key, (sums.get(l.key) ?? 0) + l.i);
  for (const [key, sum] of sums) out.bc!.push(JSON.stringify(['kb', key, sum, rulesFingerprint(final)]));
  return out;
}
