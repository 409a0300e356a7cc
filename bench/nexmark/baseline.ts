/**
 * Single-process baseline of a Nexmark query: the generator and the reference query in one
 * plain loop on one core, the figure a cluster run of the same query is set beside.
 * `node --import tsx bench/nexmark/baseline.ts [events]` prints every query's rate.
 */
import { NexmarkGenerator, type NexmarkConfig } from '../../packages/api/src/sources/nexmark/index.js';
import { NEXMARK_REFERENCE } from './reference.js';

export interface BaselineResult {
  query: string;
  events: number;
  eventsPerSecond: number;
  resultLines: number;
}

/** Generates `events` events and runs `query` over them; the rate counts generation too, as a source would. */
export function nexmarkBaseline(
  query: string,
  events: number,
  config: Partial<NexmarkConfig> = {},
): BaselineResult {
  const make = NEXMARK_REFERENCE[query];
  if (!make)
    throw new Error(`Unknown Nexmark query '${query}'; known: ${Object.keys(NEXMARK_REFERENCE).join(', ')}`);
  const gen = new NexmarkGenerator(config);
  const q = make();
  const t0 = performance.now();
  for (let i = 0; i < events; i++) q.onEvent(gen.nextEvent(i));
  const lines = q.result();
  const secs = (performance.now() - t0) / 1000;
  return { query, events, eventsPerSecond: events / secs, resultLines: lines.length };
}

/** The reference result of `query` over the first `events` events of `config`, sorted. */
export function nexmarkReference(
  query: string,
  events: number,
  config: Partial<NexmarkConfig> = {},
): string[] {
  const make = NEXMARK_REFERENCE[query];
  if (!make) throw new Error(`Unknown Nexmark query '${query}'`);
  const gen = new NexmarkGenerator(config);
  const q = make();
  for (let i = 0; i < events; i++) q.onEvent(gen.nextEvent(i));
  return q.result().sort();
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const events = Number(process.argv[2] ?? 1_000_000);
  for (const name of Object.keys(NEXMARK_REFERENCE)) {
    const r = nexmarkBaseline(name, events);
    console.log(
      `${name.padEnd(4)} ${Math.round(r.eventsPerSecond).toLocaleString('en-US').padStart(12)} events/s  ${r.resultLines} result lines`,
    );
  }
}
