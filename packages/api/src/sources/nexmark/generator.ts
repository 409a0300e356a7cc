import type { Auction, Bid, NexmarkEvent, Person } from './model.js';

/**
 * How the Nexmark generator synthesizes events. Defaults are the Nexmark benchmark's
 * (proportions 1:3:46, 1000 active people, 100 auctions in flight, hot ratios 2/4/4).
 */
export interface NexmarkConfig {
  /** mixes into every event's random stream: the same seed gives the same events */
  seed: number;
  /** events per second of event time: event i has timestamp baseTime + i * 1000 / eventRate */
  eventRate: number;
  /** event time of the first event (ms since the epoch) */
  baseTime: number;
  personProportion: number;
  auctionProportion: number;
  bidProportion: number;
  /** people chosen as sellers and bidders are among the last this many */
  numActivePeople: number;
  /** auctions bid on are among the last this many */
  numInFlightAuctions: number;
  /** 1 - 1/ratio of bids go to a hot auction */
  hotAuctionRatio: number;
  /** 1 - 1/ratio of auctions are opened by a hot seller */
  hotSellersRatio: number;
  /** 1 - 1/ratio of bids come from a hot bidder */
  hotBiddersRatio: number;
  /** events are shuffled within groups of this size (1: in order); keep it coprime with 953 */
  outOfOrderGroupSize: number;
  /** probability that an event's time is moved back by up to occasionalDelayMs */
  probDelayedEvent: number;
  occasionalDelayMs: number;
  /** average sizes in bytes; `extra` pads events to them */
  avgPersonByteSize: number;
  avgAuctionByteSize: number;
  avgBidByteSize: number;
}

export const DEFAULT_NEXMARK_CONFIG: Readonly<NexmarkConfig> = Object.freeze({
  seed: 0,
  eventRate: 10_000,
  baseTime: Date.UTC(2024, 0, 1),
  personProportion: 1,
  auctionProportion: 3,
  bidProportion: 46,
  numActivePeople: 1000,
  numInFlightAuctions: 100,
  hotAuctionRatio: 2,
  hotSellersRatio: 4,
  hotBiddersRatio: 4,
  outOfOrderGroupSize: 1,
  probDelayedEvent: 0,
  occasionalDelayMs: 3000,
  avgPersonByteSize: 200,
  avgAuctionByteSize: 500,
  avgBidByteSize: 100,
});

export const FIRST_PERSON_ID = 1000;
export const FIRST_AUCTION_ID = 1000;
export const FIRST_CATEGORY_ID = 10;
const NUM_CATEGORIES = 5;
const PERSON_ID_LEAD = 10;
const AUCTION_ID_LEAD = 10;
const HOT_AUCTION_BATCH = 100;
const HOT_SELLER_BATCH = 100;
const HOT_BIDDER_BATCH = 100;
const HOT_CHANNEL_RATIO = 2;
const NUM_CHANNELS = 10_000;
const HOT_CHANNELS = ['Google', 'Facebook', 'Baidu', 'Apple'];
const US_STATES = ['AZ', 'CA', 'ID', 'OR', 'WA', 'WY'];
const US_CITIES = [
  'Phoenix',
  'Los Angeles',
  'San Francisco',
  'Boise',
  'Portland',
  'Bend',
  'Redmond',
  'Seattle',
  'Kent',
  'Cheyenne',
];
const FIRST_NAMES = [
  'Peter',
  'Paul',
  'Luke',
  'John',
  'Saul',
  'Vicky',
  'Kate',
  'Julie',
  'Sarah',
  'Deiter',
  'Walter',
];
const LAST_NAMES = ['Shultz', 'Abrams', 'Spencer', 'White', 'Bartels', 'Walton', 'Smith', 'Jones', 'Noris'];

/**
 * Random text is cut from two fixed pools at a random offset (one draw per string instead
 * of one per character): lower-case letters with a space about every 13th character for
 * names and descriptions, letters only for `extra`. Generation is the source's whole cost,
 * so this keeps a Nexmark source far faster than the queries it feeds.
 */
const POOL_SIZE = 1 << 16;
function makePool(withSpaces: boolean, seed: number): string {
  let s = seed | 0;
  const chars = new Array<string>(POOL_SIZE);
  for (let i = 0; i < POOL_SIZE; i++) {
    // mulberry32 step
    let t = (s = (s + 0x6d2b79f5) | 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const r = (t ^ (t >>> 14)) >>> 0;
    chars[i] = withSpaces && r % 13 === 0 ? ' ' : String.fromCharCode(97 + ((r >>> 4) % 26));
  }
  return chars.join('');
}
/** made on the first generator's construction: every process that imports the API loads this module */
let pools: { text: string; letters: string } | undefined;

/**
 * A small fast PRNG (mulberry32) reseeded per event, so event i depends only on (seed, i)
 * and any subtask can generate any index without generating the ones before it.
 */
class EventRandom {
  private s = 0;

  reseed(seed: number, eventId: number): void {
    let h = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul((eventId % 0x100000000) | 0, 0xc2b2ae35);
    h ^= Math.imul(Math.floor(eventId / 0x100000000) | 0, 0x27d4eb2f);
    h ^= h >>> 15;
    this.s = h | 0;
  }

  private next32(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) | 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** uniform in [0, 1) with 53 bits */
  nextDouble(): number {
    return ((this.next32() >>> 5) * 67108864 + (this.next32() >>> 6)) / 9007199254740992;
  }

  /** uniform integer in [0, n) */
  nextInt(n: number): number {
    return Math.floor((this.next32() / 4294967296) * n);
  }

  /** uniform integer in [0, n) for n beyond 2^32 */
  nextLong(n: number): number {
    return Math.floor(this.nextDouble() * n);
  }
}

/**
 * The Nexmark event generator as a pure function of the event index (after the Nexmark
 * benchmark's NexmarkGenerator): `nextEvent(i)` is the same for the same config wherever and
 * whenever it runs, so a source can split the index space over subtasks and resume from an
 * index after a failure. Person, auction and bid ids are derived from the index so bids
 * refer to auctions and people that exist (or are about to).
 */
export class NexmarkGenerator {
  readonly config: Readonly<NexmarkConfig>;
  private readonly totalProportion: number;
  private readonly interEventDelayMs: number;
  private readonly random = new EventRandom();
  private readonly textPool: string;
  private readonly letterPool: string;

  constructor(config: Partial<NexmarkConfig> = {}) {
    pools ??= { text: makePool(true, 0x5eed), letters: makePool(false, 0xe8a) };
    this.textPool = pools.text;
    this.letterPool = pools.letters;
    const c = { ...DEFAULT_NEXMARK_CONFIG, ...config };
    const positive = (name: keyof NexmarkConfig, integer: boolean): void => {
      const v = c[name];
      if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || (integer && !Number.isInteger(v))) {
        throw new Error(
          `Nexmark config '${name}' must be a positive ${integer ? 'integer' : 'number'}, got ${String(v)}`,
        );
      }
    };
    positive('eventRate', false);
    for (const k of [
      'personProportion',
      'auctionProportion',
      'bidProportion',
      'numActivePeople',
      'numInFlightAuctions',
      'hotAuctionRatio',
      'hotSellersRatio',
      'hotBiddersRatio',
      'outOfOrderGroupSize',
    ] as const) {
      positive(k, true);
    }
    if (!(c.probDelayedEvent >= 0 && c.probDelayedEvent <= 1)) {
      throw new Error(`Nexmark config 'probDelayedEvent' must be in [0, 1], got ${c.probDelayedEvent}`);
    }
    if (!(c.occasionalDelayMs >= 0) || !Number.isFinite(c.occasionalDelayMs)) {
      throw new Error(
        `Nexmark config 'occasionalDelayMs' must be a finite number >= 0, got ${c.occasionalDelayMs}`,
      );
    }
    if (!Number.isFinite(c.baseTime))
      throw new Error(`Nexmark config 'baseTime' must be finite, got ${c.baseTime}`);
    this.config = Object.freeze(c);
    this.totalProportion = c.personProportion + c.auctionProportion + c.bidProportion;
    this.interEventDelayMs = 1000 / c.eventRate;
  }

  /** Event time of the event with the given (adjusted) event number. */
  timestampForEvent(eventNumber: number): number {
    return this.config.baseTime + Math.floor(eventNumber * this.interEventDelayMs);
  }

  /** The event number event i takes after the out-of-order shuffle within its group. */
  adjustedEventNumber(index: number): number {
    const n = this.config.outOfOrderGroupSize;
    if (n === 1) return index;
    const base = Math.floor(index / n) * n;
    return base + (((index % n) * 953) % n);
  }

  /**
   * How far an event's timestamp can lie behind the newest timestamp generated before it:
   * a BoundedOutOfOrderness strategy with this bound sees no late events.
   */
  maxOutOfOrdernessMs(): number {
    const c = this.config;
    const shuffle = c.outOfOrderGroupSize > 1 ? Math.ceil(c.outOfOrderGroupSize * this.interEventDelayMs) : 0;
    return shuffle + (c.probDelayedEvent > 0 ? c.occasionalDelayMs : 0);
  }

  /** The event at `index` (0-based), a pure function of the config and the index. */
  nextEvent(index: number): NexmarkEvent {
    if (!Number.isSafeInteger(index) || index < 0)
      throw new Error(`Nexmark event index must be an integer >= 0, got ${index}`);
    const c = this.config;
    const eventId = this.adjustedEventNumber(index);
    let timestamp = this.timestampForEvent(eventId);
    const r = this.random;
    r.reseed(c.seed, eventId);
    // drawn first so an event's contents do not depend on whether delays are on
    const delayDraw = r.nextDouble();
    const delayAmount = r.nextDouble();
    if (c.probDelayedEvent > 0 && delayDraw < c.probDelayedEvent) {
      timestamp -= 1 + Math.floor(delayAmount * c.occasionalDelayMs);
    }
    const rem = eventId % this.totalProportion;
    if (rem < c.personProportion) return { type: 'person', person: this.person(eventId, timestamp) };
    if (rem < c.personProportion + c.auctionProportion) {
      return { type: 'auction', auction: this.auction(index, eventId, timestamp) };
    }
    return { type: 'bid', bid: this.bid(eventId, timestamp) };
  }

  // ---- ids ----

  /** the last person id (base 0) created at or before eventId */
  lastBase0PersonId(eventId: number): number {
    const c = this.config;
    const epoch = Math.floor(eventId / this.totalProportion);
    let offset = eventId % this.totalProportion;
    if (offset >= c.personProportion) offset = c.personProportion - 1;
    return epoch * c.personProportion + offset;
  }

  /** the last auction id (base 0) created at or before eventId */
  lastBase0AuctionId(eventId: number): number {
    const c = this.config;
    let epoch = Math.floor(eventId / this.totalProportion);
    let offset = eventId % this.totalProportion;
    if (offset < c.personProportion) {
      epoch--;
      offset = c.auctionProportion - 1;
    } else if (offset >= c.personProportion + c.auctionProportion) {
      offset = c.auctionProportion - 1;
    } else {
      offset -= c.personProportion;
    }
    return epoch * c.auctionProportion + offset;
  }

  private nextBase0PersonId(eventId: number): number {
    const numPeople = this.lastBase0PersonId(eventId) + 1;
    const active = Math.min(numPeople, this.config.numActivePeople);
    return numPeople - active + this.random.nextLong(active + PERSON_ID_LEAD);
  }

  private nextBase0AuctionId(eventId: number): number {
    const last = this.lastBase0AuctionId(eventId);
    const min = Math.max(last - this.config.numInFlightAuctions, 0);
    return min + this.random.nextLong(last - min + 1 + AUCTION_ID_LEAD);
  }

  // ---- events ----

  private person(eventId: number, timestamp: number): Person {
    const r = this.random;
    const id = this.lastBase0PersonId(eventId) + FIRST_PERSON_ID;
    const name = `${FIRST_NAMES[r.nextInt(FIRST_NAMES.length)]} ${LAST_NAMES[r.nextInt(LAST_NAMES.length)]}`;
    const emailAddress = `${this.nextString(7)}@${this.nextString(5)}.com`;
    const creditCard = [0, 1, 2, 3].map(() => String(r.nextInt(10000)).padStart(4, '0')).join(' ');
    const city = US_CITIES[r.nextInt(US_CITIES.length)]!;
    const state = US_STATES[r.nextInt(US_STATES.length)]!;
    const size = 8 + name.length + emailAddress.length + creditCard.length + city.length + state.length;
    const extra = this.nextExtra(size, this.config.avgPersonByteSize);
    return { id, name, emailAddress, creditCard, city, state, dateTime: timestamp, extra };
  }

  private auction(index: number, eventId: number, timestamp: number): Auction {
    const c = this.config;
    const r = this.random;
    const id = this.lastBase0AuctionId(eventId) + FIRST_AUCTION_ID;
    let seller: number;
    // P(hot seller) = 1 - 1/hotSellersRatio: the first person of the latest batch of people
    if (r.nextInt(c.hotSellersRatio) > 0) {
      seller = Math.floor(this.lastBase0PersonId(eventId) / HOT_SELLER_BATCH) * HOT_SELLER_BATCH;
    } else {
      seller = this.nextBase0PersonId(eventId);
    }
    seller += FIRST_PERSON_ID;
    const category = FIRST_CATEGORY_ID + r.nextInt(NUM_CATEGORIES);
    const initialBid = this.nextPrice();
    // auctions last so that about numInFlightAuctions are open at any time
    const eventsForAuctions = Math.floor(
      (c.numInFlightAuctions * this.totalProportion) / c.auctionProportion,
    );
    const horizon = this.timestampForEvent(this.adjustedEventNumber(index) + eventsForAuctions) - timestamp;
    const expires = timestamp + 1 + r.nextLong(Math.max(horizon * 2, 1));
    const itemName = this.nextString(20);
    const description = this.nextString(100);
    const reserve = initialBid + this.nextPrice();
    const size = 8 + itemName.length + description.length + 8 + 8 + 8 + 8 + 8;
    const extra = this.nextExtra(size, c.avgAuctionByteSize);
    return {
      id,
      itemName,
      description,
      initialBid,
      reserve,
      dateTime: timestamp,
      expires,
      seller,
      category,
      extra,
    };
  }

  private bid(eventId: number, timestamp: number): Bid {
    const c = this.config;
    const r = this.random;
    let auction: number;
    // P(hot auction) = 1 - 1/hotAuctionRatio: the first auction of the latest batch
    if (r.nextInt(c.hotAuctionRatio) > 0) {
      auction = Math.floor(this.lastBase0AuctionId(eventId) / HOT_AUCTION_BATCH) * HOT_AUCTION_BATCH;
    } else {
      auction = this.nextBase0AuctionId(eventId);
    }
    auction += FIRST_AUCTION_ID;
    let bidder: number;
    // P(hot bidder) = 1 - 1/hotBiddersRatio: the second person of the latest batch (hot sellers are the first)
    if (r.nextInt(c.hotBiddersRatio) > 0) {
      bidder = Math.floor(this.lastBase0PersonId(eventId) / HOT_BIDDER_BATCH) * HOT_BIDDER_BATCH + 1;
    } else {
      bidder = this.nextBase0PersonId(eventId);
    }
    bidder += FIRST_PERSON_ID;
    const price = this.nextPrice();
    let channel: string;
    let url: string;
    if (r.nextInt(HOT_CHANNEL_RATIO) > 0) {
      const i = r.nextInt(HOT_CHANNELS.length);
      channel = HOT_CHANNELS[i]!;
      url = `https://www.nexmark.com/${channel.toLowerCase()}/item.htm?query=1`;
    } else {
      const n = r.nextInt(NUM_CHANNELS);
      channel = `channel-${n}`;
      url = `https://www.nexmark.com/${this.nextString(5)}/${this.nextString(5)}/item.htm?query=1&channel_id=${n}`;
    }
    const extra = this.nextExtra(32, c.avgBidByteSize);
    return { auction, bidder, price, channel, url, dateTime: timestamp, extra };
  }

  // ---- values ----

  /** prices in cents, log-uniform between 1 and 10^6 dollars */
  private nextPrice(): number {
    return Math.round(Math.pow(10, this.random.nextDouble() * 6) * 100);
  }

  private nextString(maxLength: number): string {
    const len = 3 + this.random.nextInt(maxLength - 3);
    const at = this.random.nextInt(POOL_SIZE - len);
    return this.textPool.substring(at, at + len).trim() || 'x';
  }

  private nextExtra(currentSize: number, desiredAverageSize: number): string {
    if (currentSize > desiredAverageSize) return '';
    const avg = desiredAverageSize - currentSize;
    const delta = Math.round(avg * 0.2);
    const size = avg - delta + (delta === 0 ? 0 : this.random.nextInt(2 * delta));
    const at = this.random.nextInt(POOL_SIZE - size);
    return this.letterPool.substring(at, at + size);
  }
}
