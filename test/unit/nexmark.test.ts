import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { InputStatus } from '../../packages/api/src/index.js';
import {
  FIRST_AUCTION_ID,
  FIRST_PERSON_ID,
  NexmarkGenerator,
  NexmarkSource,
  nexmarkEventTime,
  type NexmarkEvent,
} from '../../packages/api/src/sources/nexmark/index.js';

function generate(gen: NexmarkGenerator, n: number, from = 0): NexmarkEvent[] {
  const out: NexmarkEvent[] = [];
  for (let i = from; i < from + n; i++) out.push(gen.nextEvent(i));
  return out;
}

describe('Nexmark generator', () => {
  test('deterministic for a seed and index, in any order; another seed gives other events', () => {
    const a = generate(new NexmarkGenerator({ seed: 42 }), 2000);
    const b = generate(new NexmarkGenerator({ seed: 42 }), 2000);
    assert.deepEqual(a, b);
    // random access: event i does not depend on the events generated before it
    const g = new NexmarkGenerator({ seed: 42 });
    for (const i of [1999, 0, 777, 3, 1500]) assert.deepEqual(g.nextEvent(i), a[i]);
    const c = generate(new NexmarkGenerator({ seed: 43 }), 2000);
    assert.notDeepEqual(c, a);
    // ids and kinds come from the index, not the seed
    assert.deepEqual(
      c.map((e) => e.type),
      a.map((e) => e.type),
    );
  });

  test('proportions person:auction:bid = 1:3:46 exactly per 50 events', () => {
    const events = generate(new NexmarkGenerator(), 50 * 200);
    const count = { person: 0, auction: 0, bid: 0 };
    for (const e of events) count[e.type]++;
    assert.deepEqual(count, { person: 200, auction: 600, bid: 9200 });
    const custom = generate(
      new NexmarkGenerator({ personProportion: 2, auctionProportion: 2, bidProportion: 6 }),
      1000,
    );
    assert.equal(custom.filter((e) => e.type === 'person').length, 200);
  });

  test('ids are dense and ascending; bids refer to existing auctions and people (or the next few)', () => {
    const events = generate(new NexmarkGenerator({ seed: 1 }), 50 * 100);
    const people = events.flatMap((e) => (e.type === 'person' ? [e.person.id] : []));
    const auctions = events.flatMap((e) => (e.type === 'auction' ? [e.auction.id] : []));
    assert.deepEqual(
      people,
      people.map((_, i) => FIRST_PERSON_ID + i),
    );
    assert.deepEqual(
      auctions,
      auctions.map((_, i) => FIRST_AUCTION_ID + i),
    );
    let maxPerson = -1;
    let maxAuction = -1;
    for (const e of events) {
      if (e.type === 'person') maxPerson = e.person.id;
      if (e.type === 'auction') {
        maxAuction = e.auction.id;
        assert.ok(e.auction.seller <= maxPerson + 10 && e.auction.seller >= FIRST_PERSON_ID);
        assert.ok(e.auction.expires > e.auction.dateTime);
        assert.ok(e.auction.reserve >= e.auction.initialBid);
        assert.ok(e.auction.category >= 10 && e.auction.category < 15);
      }
      if (e.type === 'bid') {
        assert.ok(
          e.bid.auction <= maxAuction + 10 && e.bid.auction >= FIRST_AUCTION_ID,
          `bid on ${e.bid.auction}, last ${maxAuction}`,
        );
        assert.ok(e.bid.bidder <= maxPerson + 10 && e.bid.bidder >= FIRST_PERSON_ID);
        assert.ok(e.bid.price >= 100);
      }
    }
  });

  test('hot auctions, bidders and sellers get their share (1 - 1/ratio of picks, plus random hits)', () => {
    const n = 50 * 2000;
    const events = generate(new NexmarkGenerator({ seed: 5 }), n);
    const bids = events.flatMap((e) => (e.type === 'bid' ? [e.bid] : []));
    // a hot auction is the first of the latest batch of 100 auctions, so its base-0 id is a multiple of 100
    const hotAuction = bids.filter((b) => (b.auction - FIRST_AUCTION_ID) % 100 === 0).length / bids.length;
    assert.ok(hotAuction > 0.49 && hotAuction < 0.53, `hot auction share ${hotAuction}`);
    const hotBidder = bids.filter((b) => (b.bidder - FIRST_PERSON_ID) % 100 === 1).length / bids.length;
    assert.ok(hotBidder > 0.74 && hotBidder < 0.77, `hot bidder share ${hotBidder}`);
    const auctions = events.flatMap((e) => (e.type === 'auction' ? [e.auction] : []));
    const hotSeller =
      auctions.filter((a) => (a.seller - FIRST_PERSON_ID) % 100 === 0).length / auctions.length;
    assert.ok(hotSeller > 0.72 && hotSeller < 0.78, `hot seller share ${hotSeller}`);
    // skew: the most bid-on auction has far more than an even share
    const perAuction = new Map<number, number>();
    for (const b of bids) perAuction.set(b.auction, (perAuction.get(b.auction) ?? 0) + 1);
    assert.ok(Math.max(...perAuction.values()) > (10 * bids.length) / perAuction.size);
  });

  test('event time follows the event rate; in order by default', () => {
    const gen = new NexmarkGenerator({ eventRate: 1000, baseTime: 1_000_000 });
    const events = generate(gen, 5000);
    const ts = events.map(nexmarkEventTime);
    assert.equal(ts[0], 1_000_000);
    assert.equal(ts[4999], 1_000_000 + 4999);
    for (let i = 1; i < ts.length; i++) assert.ok(ts[i]! >= ts[i - 1]!);
    assert.equal(gen.maxOutOfOrdernessMs(), 0);
  });

  test('out-of-order groups and delayed events stay within maxOutOfOrdernessMs', () => {
    const gen = new NexmarkGenerator({
      eventRate: 10_000,
      outOfOrderGroupSize: 100,
      probDelayedEvent: 0.05,
      occasionalDelayMs: 500,
      seed: 9,
    });
    const ts = generate(gen, 50_000).map(nexmarkEventTime);
    let max = -Infinity;
    let outOfOrder = 0;
    let worst = 0;
    for (const t of ts) {
      if (t < max) {
        outOfOrder++;
        worst = Math.max(worst, max - t);
      }
      max = Math.max(max, t);
    }
    assert.ok(outOfOrder > 1000, `out of order: ${outOfOrder}`);
    assert.ok(worst <= gen.maxOutOfOrdernessMs(), `worst ${worst} > bound ${gen.maxOutOfOrdernessMs()}`);
    assert.ok(worst > 400, `delays reach the configured bound (worst ${worst})`);
    // shuffling is a permutation within each group: every event number once
    const kinds = generate(gen, 5000).map((e) => e.type);
    assert.equal(kinds.filter((k) => k === 'bid').length, 4600);
  });

  test('bad configuration fails with the setting named', () => {
    assert.throws(
      () => new NexmarkGenerator({ eventRate: 0 }),
      /Nexmark config 'eventRate' must be a positive number, got 0/,
    );
    assert.throws(
      () => new NexmarkGenerator({ hotAuctionRatio: 1.5 }),
      /'hotAuctionRatio' must be a positive integer/,
    );
    assert.throws(
      () => new NexmarkGenerator({ probDelayedEvent: 2 }),
      /'probDelayedEvent' must be in \[0, 1\]/,
    );
    assert.throws(() => new NexmarkGenerator().nextEvent(-1), /index must be an integer >= 0/);
  });

  test('events are padded to the configured average sizes', () => {
    const events = generate(new NexmarkGenerator({ seed: 3 }), 5000);
    const size = (e: NexmarkEvent): number => JSON.stringify(e).length;
    const avg = (t: NexmarkEvent['type']): number => {
      const xs = events.filter((e) => e.type === t).map(size);
      return xs.reduce((a, b) => a + b, 0) / xs.length;
    };
    assert.ok(avg('bid') > 100 && avg('bid') < 400, `bid ${avg('bid')}`);
    assert.ok(avg('auction') > 450, `auction ${avg('auction')}`);
    assert.ok(avg('person') > 180, `person ${avg('person')}`);
  });
});

describe('NexmarkSource', () => {
  test('subtasks split the index space: their union is the generator sequence, whatever the parallelism', () => {
    const source = new NexmarkSource({ seed: 7, count: 1000 });
    assert.equal(source.boundedness, 'BOUNDED');
    const expected = generate(new NexmarkGenerator({ seed: 7 }), 1000).map((e) => JSON.stringify(e));
    for (const p of [1, 3]) {
      const got: string[] = [];
      for (let i = 0; i < p; i++) {
        const reader = source.createReader({
          jobId: 'j',
          taskName: 't',
          subtaskIndex: i,
          parallelism: p,
          attemptNumber: 0,
          workingDirectory: '.',
        });
        let status: InputStatus;
        do status = reader.pollNext({ collect: (e) => got.push(JSON.stringify(e)) });
        while (status === InputStatus.MORE_AVAILABLE);
        assert.equal(status, InputStatus.END_OF_INPUT);
      }
      assert.deepEqual(got.sort(), [...expected].sort());
    }
    assert.equal(new NexmarkSource().boundedness, 'CONTINUOUS_UNBOUNDED');
  });
});
