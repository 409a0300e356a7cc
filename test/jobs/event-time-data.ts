/**
 * The deterministic input of the event-time jobs and the reference their output is checked
 * against: event i has key i % KEYS and timestamp BASE + i * 10, with a pause of 2 s after
 * every 3000 events (so sessions end) and, every 397th event, a record 5 s behind (late).
 * Watermarks are punctuated: after every 500th event, the highest timestamp seen minus 500 ms,
 * rounded down to a whole second, minus 1, so where they fall among the records is the same
 * in every run and after any failure. Between two of them a restored job judges lateness by
 * the watermark it restored, so the late outputs show whether it was restored.
 */
export const WATERMARK_EVERY = 500;
export const KEYS = 50;
export const BASE = 1_700_000_000_000;
export const OUT_OF_ORDERNESS = 500;
export const TUMBLING = 1000;
export const SLIDING_SIZE = 2000;
export const SLIDING_SLIDE = 1000;
export const SESSION_GAP = 600;
export const TIMER_PERIOD = 2000;
/** event-time-windows.ts: allowed lateness of its tumbling windows, count window size and slide, records an evictor keeps */
export const ALLOWED_LATENESS = 2500;
export const COUNT_SIZE = 7;
export const COUNT_SLIDE = 3;
export const EVICTOR_KEEP = 3;

export interface Event {
  i: number;
  key: number;
  ts: number;
  /** planted late (5 s behind) */
  late: boolean;
}

export function event(i: number): Event {
  const late = i % 397 === 396;
  const onTime = BASE + i * 10 + Math.floor(i / 3000) * 2000;
  return { i, key: i % KEYS, ts: late ? onTime - 5000 : onTime, late };
}

/** The watermark after an event whose timestamp made the maximum `maxTs`. */
export function watermarkFor(maxTs: number): number {
  return Math.floor((maxTs - OUT_OF_ORDERNESS) / 1000) * 1000 - 1;
}

/** The end of the event-time timer a record of timestamp ts registers. */
export function timerFor(ts: number): number {
  return (Math.floor(ts / TIMER_PERIOD) + 1) * TIMER_PERIOD - 1;
}

/** Every output line the event-time job writes, as JSON strings, computed from the same rules. */
export function reference(n: number): {
  tumbling: string[];
  sliding: string[];
  session: string[];
  timers: string[];
  late: string[];
} {
  const tumbling = new Map<string, number>();
  const sliding = new Map<string, number>();
  const timers: string[] = [];
  const late: string[] = [];
  const counts = new Map<number, number>();
  const pending = new Map<number, Set<number>>();
  const sessions = new Map<number, number[]>();
  let wm = -Infinity;
  let maxTs = -Infinity;
  const fire = (upTo: number): void => {
    const due: Array<[number, number]> = [];
    for (const [key, set] of pending) for (const t of set) if (t <= upTo) due.push([key, t]);
    for (const [key, t] of due) {
      pending.get(key)!.delete(t);
      timers.push(JSON.stringify(['timer', key, t, counts.get(key) ?? 0]));
    }
  };
  for (let i = 0; i < n; i++) {
    const e = event(i);
    // tumbling: late when its window's last millisecond is at or behind the watermark
    const tStart = Math.floor(e.ts / TUMBLING) * TUMBLING;
    if (tStart + TUMBLING - 1 <= wm) late.push(JSON.stringify(['late', e.key, e.ts]));
    else {
      const k = `${e.key}:${tStart}`;
      tumbling.set(k, (tumbling.get(k) ?? 0) + 1);
    }
    for (
      let s = Math.floor(e.ts / SLIDING_SLIDE) * SLIDING_SLIDE;
      s > e.ts - SLIDING_SIZE;
      s -= SLIDING_SLIDE
    ) {
      if (s + SLIDING_SIZE - 1 <= wm) continue;
      const k = `${e.key}:${s}`;
      sliding.set(k, (sliding.get(k) ?? 0) + 1);
    }
    if (!e.late) {
      let l = sessions.get(e.key);
      if (!l) sessions.set(e.key, (l = []));
      l.push(e.ts);
    }
    // the keyed process function: late records to the side output, else counted with a timer
    if (e.ts <= wm) late.push(JSON.stringify(['late-process', e.key, e.ts]));
    else {
      counts.set(e.key, (counts.get(e.key) ?? 0) + 1);
      let set = pending.get(e.key);
      if (!set) pending.set(e.key, (set = new Set()));
      set.add(timerFor(e.ts));
    }
    maxTs = Math.max(maxTs, e.ts);
    if (i % WATERMARK_EVERY !== WATERMARK_EVERY - 1) continue;
    if (e.late)
      throw new Error(`event ${i} both carries a watermark and is late: the replayed maximum would differ`);
    const next = watermarkFor(maxTs);
    if (next > wm) {
      wm = next;
      fire(wm);
    }
  }
  fire(Infinity);
  const session: string[] = [];
  for (const [key, tss] of sessions) {
    tss.sort((a, b) => a - b);
    let start = tss[0]!;
    let last = start;
    let count = 1;
    for (const ts of tss.slice(1)) {
      if (ts < last + SESSION_GAP) {
        last = ts;
        count++;
        continue;
      }
      session.push(JSON.stringify(['session', key, start, last + SESSION_GAP, count]));
      start = last = ts;
      count = 1;
    }
    session.push(JSON.stringify(['session', key, start, last + SESSION_GAP, count]));
  }
  const windows = (kind: string, m: Map<string, number>, size: number): string[] =>
    [...m].map(([k, c]) => {
      const [key, start] = k.split(':').map(Number) as [number, number];
      return JSON.stringify([kind, key, start, start + size, c]);
    });
  return {
    tumbling: windows('tumbling', tumbling, TUMBLING),
    sliding: windows('sliding', sliding, SLIDING_SIZE),
    session,
    timers,
    late,
  };
}

/**
 * Every output line of event-time-windows.ts, as JSON strings, from the same rules as Flink's
 * WindowOperator and EvictingWindowOperator: a tumbling window fires when the watermark passes
 * its end and again for each record that arrives within the allowed lateness (with the count so
 * far); a record whose window ended ALLOWED_LATENESS or more before the watermark goes to the
 * side output. Count windows fire every COUNT_SLIDE records of a key with its last COUNT_SIZE;
 * the evicting tumbling window fires once with its last EVICTOR_KEEP records.
 */
export function windowsReference(n: number): {
  lateness: string[];
  late: string[];
  count: string[];
  evictor: string[];
} {
  const lateness: string[] = [];
  const late: string[] = [];
  const count: string[] = [];
  const counts = new Map<string, number>();
  const fired = new Set<string>();
  const perKey = new Map<number, number[]>();
  const perWindow = new Map<string, number[]>();
  let wm = -Infinity;
  let maxTs = -Infinity;
  const line = (key: number, start: number, c: number): string => JSON.stringify(['lateness', key, start, c]);
  const advance = (to: number): void => {
    wm = to;
    for (const [k, c] of counts) {
      const [key, start] = k.split(':').map(Number) as [number, number];
      if (start + TUMBLING - 1 <= wm && !fired.has(k)) {
        fired.add(k);
        lateness.push(line(key, start, c));
      }
      // the cleanup timer fires after the on-time one
      if (start + TUMBLING - 1 + ALLOWED_LATENESS <= wm) counts.delete(k);
    }
  };
  for (let i = 0; i < n; i++) {
    const e = event(i);
    const start = Math.floor(e.ts / TUMBLING) * TUMBLING;
    const k = `${e.key}:${start}`;
    if (start + TUMBLING - 1 + ALLOWED_LATENESS <= wm) late.push(JSON.stringify(['late', e.key, e.ts]));
    else {
      const c = (counts.get(k) ?? 0) + 1;
      counts.set(k, c);
      // past the watermark already: the trigger fires at once, with everything so far
      if (start + TUMBLING - 1 <= wm) {
        fired.add(k);
        lateness.push(line(e.key, start, c));
      }
    }
    if (!e.late) {
      let l = perKey.get(e.key);
      if (!l) perKey.set(e.key, (l = []));
      l.push(i);
      if (l.length % COUNT_SLIDE === 0)
        count.push(JSON.stringify(['count', e.key, null, l.slice(-COUNT_SIZE)]));
      let w = perWindow.get(k);
      if (!w) perWindow.set(k, (w = []));
      w.push(i);
    }
    maxTs = Math.max(maxTs, e.ts);
    if (i % WATERMARK_EVERY !== WATERMARK_EVERY - 1) continue;
    const next = watermarkFor(maxTs);
    if (next > wm) advance(next);
  }
  advance(Infinity);
  const evictor = [...perWindow].map(([k, is]) => {
    const [key, start] = k.split(':').map(Number) as [number, number];
    return JSON.stringify(['evictor', key, start, is.slice(-EVICTOR_KEEP)]);
  });
  return { lateness, late, count, evictor };
}
