/**
 * Why heap snapshots reuse their memory (SlabArena, bench/README.md, tenth session): touching
 * every page of 17 fresh 1 MiB SharedArrayBuffer slabs (what a 1M-key snapshot wrote into)
 * against the same slabs a second time, and slabs taken from a released SlabArena. Milliseconds
 * per round, 8 rounds each.
 *
 *   node --import tsx bench/fresh-memory-micro.ts
 */
import { SlabArena } from '../packages/core/src/index.js';

const SLABS = 17;
const SLAB = 1 << 20;
const ROUNDS = 8;

/** writes one byte per 4 KiB page of each buffer (what the encoder's first stores do) */
function touch(bufs: Uint8Array[]): void {
  for (const u of bufs) for (let j = 0; j < u.length; j += 4096) u[j] = 1;
}

function timed(f: () => void): number {
  const t0 = performance.now();
  f();
  return performance.now() - t0;
}

const fresh: number[] = [];
const again: number[] = [];
for (let r = 0; r < ROUNDS; r++) {
  const bufs = Array.from({ length: SLABS }, () => new Uint8Array(new SharedArrayBuffer(SLAB)));
  fresh.push(timed(() => touch(bufs)));
  again.push(timed(() => touch(bufs)));
}
const arena: number[] = [];
for (let r = 0; r < ROUNDS; r++) {
  const a = new SlabArena();
  arena.push(timed(() => touch(Array.from({ length: SLABS * 4 }, () => a.chunk(SLAB / 4)))));
  a.release();
}
const fmt = (xs: number[]): string => xs.map((x) => x.toFixed(1)).join(', ');
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
console.log(
  `fresh slabs, first touch of every page (${SLABS} MiB): median ${median(fresh).toFixed(1)} ms (${fmt(fresh)})`,
);
console.log(`the same slabs touched again: median ${median(again).toFixed(1)} ms (${fmt(again)})`);
console.log(
  `a SlabArena's chunks, the arena released after each round (the first round allocates): median ${median(arena).toFixed(1)} ms (${fmt(arena)})`,
);
