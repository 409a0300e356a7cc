/**
 * The Nexmark queries as single-process incremental loops over the generated events: the
 * reference every weir Nexmark job's output is compared with, and the single-process
 * baseline the benchmark prints beside the cluster's figure. Each query consumes events one
 * by one and yields its final result as lines (`result()`); sorted, they are compared exactly
 * with a job's sink output in the same line format.
 *
 * Window semantics are weir's (Flink's DataStream ones): a tumbling or sliding window is
 * [start, end) and a record belongs to it when `start <= ts < end`; a session window ends
 * `gap` after its last record. Where the Nexmark SQL differs (q7 joins on an inclusive
 * BETWEEN), the comment says how the DataStream form reads it.
 */
import type { Auction, Bid, NexmarkEvent, Person } from '../../packages/api/src/sources/nexmark/index.js';

export interface NexmarkQuery {
  readonly name: string;
  onEvent(event: NexmarkEvent): void;
  /** the final result in any order; call once after the last event */
  result(): string[];
}

/** Tumbling window start of a timestamp (non-negative timestamps, size in ms). */
export const windowStart = (ts: number, size: number): number => ts - (ts % size);

/** q0: pass-through of bids. */
export const bidLine = (b: Bid): string => `${b.auction},${b.bidder},${b.price},${b.dateTime},${b.extra}`;

/** q1: dollars to euros. */
export const q1Line = (b: Bid): string =>
  `${b.auction},${b.bidder},${Math.round(b.price * 0.908 * 1000) / 1000},${b.dateTime}`;

/** q14: hour of day in UTC, day/night/other, and the number of 'c' in extra. */
export function q14Line(b: Bid): string | undefined {
  const price = b.price * 0.908;
  if (!(price > 1_000_000 && price < 50_000_000)) return undefined;
  const hour = new Date(b.dateTime).getUTCHours();
  const kind = hour >= 8 && hour <= 18 ? 'dayTime' : hour <= 6 || hour >= 20 ? 'nightTime' : 'otherTime';
  let c = 0;
  for (let i = 0; i < b.extra.length; i++) if (b.extra.charCodeAt(i) === 99) c++;
  return `${b.auction},${b.bidder},${Math.round(price * 1000) / 1000},${kind},${b.dateTime},${c}`;
}

/** Bids mapped to lines (q0, q1, q2, q14): stateless selections and projections. */
class BidMapQuery implements NexmarkQuery {
  private readonly out: string[] = [];
  constructor(
    readonly name: string,
    private readonly f: (b: Bid) => string | undefined,
  ) {}
  onEvent(e: NexmarkEvent): void {
    if (e.type !== 'bid') return;
    const line = this.f(e.bid);
    if (line !== undefined) this.out.push(line);
  }
  result(): string[] {
    return this.out;
  }
}

/** q3: sellers in OR/ID/CA of auctions in category 10 (an unbounded inner join on seller). */
class Q3 implements NexmarkQuery {
  readonly name = 'q3';
  private readonly people = new Map<number, Person>();
  private readonly auctionsBySeller = new Map<number, number[]>();
  private readonly out: string[] = [];
  onEvent(e: NexmarkEvent): void {
    if (e.type === 'person') {
      const p = e.person;
      if (p.state !== 'OR' && p.state !== 'ID' && p.state !== 'CA') return;
      this.people.set(p.id, p);
      for (const a of this.auctionsBySeller.get(p.id) ?? []) this.out.push(q3Line(p, a));
    } else if (e.type === 'auction' && e.auction.category === 10) {
      const a = e.auction;
      const list = this.auctionsBySeller.get(a.seller) ?? [];
      list.push(a.id);
      this.auctionsBySeller.set(a.seller, list);
      const p = this.people.get(a.seller);
      if (p) this.out.push(q3Line(p, a.id));
    }
  }
  result(): string[] {
    return this.out;
  }
}
export const q3Line = (p: Person, auctionId: number): string => `${p.name},${p.city},${p.state},${auctionId}`;

/** q4: average winning price per category; a winning bid is the highest bid within the auction's lifetime. */
class Q4 implements NexmarkQuery {
  readonly name = 'q4';
  private readonly auctions = new Map<number, Auction>();
  private readonly bids = new Map<number, Bid[]>();
  onEvent(e: NexmarkEvent): void {
    if (e.type === 'auction') this.auctions.set(e.auction.id, e.auction);
    else if (e.type === 'bid') {
      const list = this.bids.get(e.bid.auction) ?? [];
      list.push(e.bid);
      this.bids.set(e.bid.auction, list);
    }
  }
  result(): string[] {
    const perCategory = new Map<number, { sum: number; count: number }>();
    for (const [id, a] of this.auctions) {
      let max = -Infinity;
      for (const b of this.bids.get(id) ?? []) {
        if (b.dateTime >= a.dateTime && b.dateTime <= a.expires && b.price > max) max = b.price;
      }
      if (max === -Infinity) continue;
      const c = perCategory.get(a.category) ?? { sum: 0, count: 0 };
      c.sum += max;
      c.count++;
      perCategory.set(a.category, c);
    }
    return [...perCategory].map(([cat, c]) => q4Line(cat, c.sum, c.count));
  }
}
export const q4Line = (category: number, sum: number, count: number): string =>
  `${category},${Math.round((sum / count) * 1000) / 1000}`;

/** q5: per sliding window (10 s, slide 2 s) the auctions with the most bids. */
class Q5 implements NexmarkQuery {
  readonly name = 'q5';
  private readonly counts = new Map<number, Map<number, number>>(); // window start -> auction -> count
  constructor(
    private readonly size = 10_000,
    private readonly slide = 2_000,
  ) {}
  onEvent(e: NexmarkEvent): void {
    if (e.type !== 'bid') return;
    const ts = e.bid.dateTime;
    const last = windowStart(ts, this.slide);
    for (let start = last; start > ts - this.size; start -= this.slide) {
      let w = this.counts.get(start);
      if (!w) this.counts.set(start, (w = new Map()));
      w.set(e.bid.auction, (w.get(e.bid.auction) ?? 0) + 1);
    }
  }
  result(): string[] {
    const out: string[] = [];
    for (const [start, w] of this.counts) {
      let max = 0;
      for (const n of w.values()) if (n > max) max = n;
      for (const [auction, n] of w) if (n === max) out.push(`${auction},${n},${start}`);
    }
    return out;
  }
}

/**
 * q7: the bids with the highest price of each 10 s tumbling window. (The SQL's inclusive
 * BETWEEN also matches a bid exactly at the next window's start; the DataStream form
 * keeps each bid in its own window.)
 */
class Q7 implements NexmarkQuery {
  readonly name = 'q7';
  private readonly windows = new Map<number, { max: number; bids: Bid[] }>();
  constructor(private readonly size = 10_000) {}
  onEvent(e: NexmarkEvent): void {
    if (e.type !== 'bid') return;
    const start = windowStart(e.bid.dateTime, this.size);
    const w = this.windows.get(start);
    if (!w) this.windows.set(start, { max: e.bid.price, bids: [e.bid] });
    else if (e.bid.price > w.max) {
      w.max = e.bid.price;
      w.bids = [e.bid];
    } else if (e.bid.price === w.max) w.bids.push(e.bid);
  }
  result(): string[] {
    const out: string[] = [];
    for (const [start, w] of this.windows) for (const b of w.bids) out.push(q7Line(b, start + this.size));
    return out;
  }
}
export const q7Line = (b: Bid, windowEnd: number): string =>
  `${b.auction},${b.price},${b.bidder},${b.dateTime},${windowEnd}`;

/** q8: people who registered and opened an auction in the same 10 s tumbling window. */
class Q8 implements NexmarkQuery {
  readonly name = 'q8';
  private readonly people = new Map<string, string>(); // `${start},${id}` -> name
  private readonly sellers = new Set<string>();
  constructor(private readonly size = 10_000) {}
  onEvent(e: NexmarkEvent): void {
    if (e.type === 'person') {
      this.people.set(`${windowStart(e.person.dateTime, this.size)},${e.person.id}`, e.person.name);
    } else if (e.type === 'auction') {
      this.sellers.add(`${windowStart(e.auction.dateTime, this.size)},${e.auction.seller}`);
    }
  }
  result(): string[] {
    const out: string[] = [];
    for (const [k, name] of this.people) {
      if (!this.sellers.has(k)) continue;
      const [start, id] = k.split(',');
      out.push(`${id},${name},${start}`);
    }
    return out;
  }
}

/** q11: bids per bidder session (event-time session windows with a 10 s gap). */
class Q11 implements NexmarkQuery {
  readonly name = 'q11';
  private readonly times = new Map<number, number[]>();
  constructor(private readonly gap = 10_000) {}
  onEvent(e: NexmarkEvent): void {
    if (e.type !== 'bid') return;
    const list = this.times.get(e.bid.bidder) ?? [];
    list.push(e.bid.dateTime);
    this.times.set(e.bid.bidder, list);
  }
  result(): string[] {
    const out: string[] = [];
    for (const [bidder, ts] of this.times) {
      ts.sort((a, b) => a - b);
      let start = ts[0]!;
      let end = start + this.gap;
      let count = 0;
      for (const t of ts) {
        if (t >= end) {
          out.push(`${bidder},${count},${start},${end}`);
          start = t;
          count = 0;
        }
        count++;
        end = Math.max(end, t + this.gap);
      }
      out.push(`${bidder},${count},${start},${end}`);
    }
    return out;
  }
}

/**
 * q12: bids per bidder in processing-time tumbling windows. Window boundaries depend on
 * the wall clock, so the reference is the total per bidder over all windows.
 */
class Q12 implements NexmarkQuery {
  readonly name = 'q12';
  private readonly counts = new Map<number, number>();
  onEvent(e: NexmarkEvent): void {
    if (e.type === 'bid') this.counts.set(e.bid.bidder, (this.counts.get(e.bid.bidder) ?? 0) + 1);
  }
  result(): string[] {
    return [...this.counts].map(([b, n]) => `${b},${n}`);
  }
}

/** q17: per auction and UTC day: bid counts by price rank, min, max, average and sum of prices. */
class Q17 implements NexmarkQuery {
  readonly name = 'q17';
  private readonly stats = new Map<string, [number, number, number, number, number, number, number]>();
  onEvent(e: NexmarkEvent): void {
    if (e.type !== 'bid') return;
    const b = e.bid;
    const k = `${b.auction},${new Date(b.dateTime).toISOString().slice(0, 10)}`;
    let s = this.stats.get(k);
    if (!s) this.stats.set(k, (s = [0, 0, 0, 0, Infinity, -Infinity, 0]));
    s[0]++;
    s[b.price < 10_000 ? 1 : b.price < 1_000_000 ? 2 : 3]++;
    if (b.price < s[4]) s[4] = b.price;
    if (b.price > s[5]) s[5] = b.price;
    s[6] += b.price;
  }
  result(): string[] {
    return [...this.stats].map(([k, s]) => q17Line(k, s));
  }
}
export const q17Line = (key: string, s: readonly number[]): string =>
  `${key},${s[0]},${s[1]},${s[2]},${s[3]},${s[4]},${s[5]},${Math.round((s[6]! / s[0]!) * 1000) / 1000},${s[6]}`;

/**
 * Total order of bids for "latest" and "top" selections, so ties do not depend on arrival
 * order across parallel source subtasks: the later event time wins, then the higher price,
 * then the larger line.
 */
export function compareBids(a: Bid, b: Bid): number {
  if (a.dateTime !== b.dateTime) return a.dateTime - b.dateTime;
  if (a.price !== b.price) return a.price - b.price;
  const la = bidLine(a);
  const lb = bidLine(b);
  return la < lb ? -1 : la > lb ? 1 : 0;
}

/** q18: the latest bid of each (bidder, auction). */
class Q18 implements NexmarkQuery {
  readonly name = 'q18';
  private readonly last = new Map<string, Bid>();
  onEvent(e: NexmarkEvent): void {
    if (e.type !== 'bid') return;
    const k = `${e.bid.bidder},${e.bid.auction}`;
    const prev = this.last.get(k);
    if (!prev || compareBids(e.bid, prev) > 0) this.last.set(k, e.bid);
  }
  result(): string[] {
    return [...this.last.values()].map(bidLine);
  }
}

/** Order for q19's top ten: higher price first, then earlier bid, then the line. */
export function compareTopBids(a: Bid, b: Bid): number {
  if (a.price !== b.price) return b.price - a.price;
  return -compareBids(a, b);
}

/** q19: the ten highest bids of each auction. */
class Q19 implements NexmarkQuery {
  readonly name = 'q19';
  private readonly top = new Map<number, Bid[]>();
  onEvent(e: NexmarkEvent): void {
    if (e.type !== 'bid') return;
    let list = this.top.get(e.bid.auction);
    if (!list) this.top.set(e.bid.auction, (list = []));
    insertTopN(list, e.bid, 10);
  }
  result(): string[] {
    const out: string[] = [];
    for (const list of this.top.values()) list.forEach((b, i) => out.push(`${bidLine(b)},${i + 1}`));
    return out;
  }
}

/** Inserts `bid` into `list` (kept in compareTopBids order) and cuts it to n entries. */
export function insertTopN(list: Bid[], bid: Bid, n: number): void {
  if (list.length === n && compareTopBids(bid, list[n - 1]!) >= 0) return;
  let i = list.length;
  while (i > 0 && compareTopBids(bid, list[i - 1]!) < 0) i--;
  list.splice(i, 0, bid);
  if (list.length > n) list.pop();
}

/** q20: bids joined with their auction when the auction is in category 10. */
class Q20 implements NexmarkQuery {
  readonly name = 'q20';
  private readonly auctions = new Map<number, Auction>();
  private readonly pending = new Map<number, Bid[]>();
  private readonly out: string[] = [];
  onEvent(e: NexmarkEvent): void {
    if (e.type === 'auction') {
      if (e.auction.category !== 10) return;
      this.auctions.set(e.auction.id, e.auction);
      for (const b of this.pending.get(e.auction.id) ?? []) this.out.push(q20Line(b, e.auction));
      this.pending.delete(e.auction.id);
    } else if (e.type === 'bid') {
      const a = this.auctions.get(e.bid.auction);
      if (a) this.out.push(q20Line(e.bid, a));
      else {
        const list = this.pending.get(e.bid.auction) ?? [];
        list.push(e.bid);
        this.pending.set(e.bid.auction, list);
      }
    }
  }
  result(): string[] {
    return this.out;
  }
}
export const q20Line = (b: Bid, a: Auction): string =>
  `${b.auction},${b.bidder},${b.price},${b.dateTime},${a.itemName},${a.seller},${a.category},${a.dateTime}`;

/** The reference queries by name; each call makes a fresh instance. */
export const NEXMARK_REFERENCE: Record<string, () => NexmarkQuery> = {
  q0: () => new BidMapQuery('q0', bidLine),
  q1: () => new BidMapQuery('q1', q1Line),
  q2: () => new BidMapQuery('q2', (b) => (b.auction % 123 === 0 ? `${b.auction},${b.price}` : undefined)),
  q3: () => new Q3(),
  q4: () => new Q4(),
  q5: () => new Q5(),
  q7: () => new Q7(),
  q8: () => new Q8(),
  q11: () => new Q11(),
  q12: () => new Q12(),
  q14: () => new BidMapQuery('q14', q14Line),
  q17: () => new Q17(),
  q18: () => new Q18(),
  q19: () => new Q19(),
  q20: () => new Q20(),
};
