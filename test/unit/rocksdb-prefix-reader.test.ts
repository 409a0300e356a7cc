import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import {
  openRocksDB,
  writeBatch,
  type RocksDB,
} from '../../packages/taskmanager/src/state/rocksdb/binding.js';
import { PrefixReader } from '../../packages/taskmanager/src/state/rocksdb/prefix-reader.js';
import { tempDir } from '../helpers/cli.js';

const b = (...bytes: number[]): Buffer => Buffer.from(bytes);
const hex = (rows: Iterable<[Buffer, Buffer]>): string[] =>
  [...rows].map(([k, v]) => `${k.toString('hex')}=${v.toString('hex')}`);

describe('PrefixReader (map reads through one kept RocksDB iterator)', () => {
  let db: RocksDB;
  let opened = 0;
  let closed = 0;
  const put = (rows: Array<[Buffer, Buffer]>): void =>
    writeBatch(db, (batch) => {
      for (const [k, v] of rows) batch._put(k, v, {});
    });

  before(async () => {
    db = await openRocksDB(path.join(tempDir('weir-prefix-reader-'), 'db'), {
      blockCacheSize: 1 << 20,
      writeBufferSize: 1 << 20,
    });
    const iterator = db.iterator.bind(db);
    db.iterator = (o) => {
      opened++;
      const it = iterator(o);
      const close = it.close.bind(it) as (...a: unknown[]) => Promise<void>;
      // the database's close() passes a callback
      it.close = (...a: unknown[]) => {
        closed++;
        return close(...a);
      };
      return it;
    };
    // neighbours of the prefixes read below: shorter, equal up to the last byte, longer
    put([
      [b(1), b(0)],
      [b(1, 2), b(1)],
      [b(1, 2, 0), b(2)],
      [b(1, 2, 0xff), b(3)],
      [b(1, 3), b(4)],
      [b(0xff, 0xff), b(5)],
      [b(0xff, 0xff, 1), b(6)],
    ]);
  });
  after(async () => {
    await db.close();
  });

  test('reads exactly the rows under each prefix, in key order, including at the end of the key space', () => {
    const r = new PrefixReader(db);
    assert.deepEqual(hex(r.rows(b(1, 2))), ['0102=01', '010200=02', '0102ff=03']);
    assert.deepEqual(hex(r.rows(b(1, 2, 0))), ['010200=02']);
    assert.deepEqual(hex(r.rows(b(1, 1))), []);
    assert.deepEqual(hex(r.rows(b(1))), ['01=00', '0102=01', '010200=02', '0102ff=03', '0103=04']);
    assert.deepEqual(hex(r.rows(b(0xff, 0xff))), ['ffff=05', 'ffff01=06']);
    assert.deepEqual(hex(r.rows(b(0xff, 0xff, 2))), []);
    r.release();
  });

  test('one iterator serves reads while nothing is written; a write makes the next read open a fresh one and close the stale one', () => {
    const r = new PrefixReader(db);
    const before = opened;
    const open = (): number => opened - closed;
    for (let i = 0; i < 50; i++) assert.equal([...r.rows(b(1, 3))].length, 1);
    assert.equal(opened - before, 1);
    assert.equal(open(), 1);
    put([[b(1, 3, 7), b(9)]]);
    assert.deepEqual(hex(r.rows(b(1, 3))), ['0103=04', '010307=09']);
    assert.equal(opened - before, 2);
    assert.equal(open(), 1, 'the stale iterator is closed');
    r.release();
    assert.equal(open(), 0);
  });

  test('a read in progress keeps its view; a read started after a write sees it; an early stop loses nothing', () => {
    const r = new PrefixReader(db);
    const prefix = b(7);
    put(Array.from({ length: 600 }, (_, i): [Buffer, Buffer] => [b(7, i >> 8, i & 0xff), b(i & 0xff)]));
    const first = r.rows(prefix);
    assert.equal(first.next().value![0].toString('hex'), '070000');
    // a write after the read began, and rows of it the first chunk did not hold
    put([[b(7, 9, 9), b(1)]]);
    const second = [...r.rows(prefix)];
    assert.equal(second.length, 601);
    let rest = 0;
    for (const _ of { [Symbol.iterator]: () => first }) rest++;
    assert.equal(rest, 599, 'the read begun before the write does not see it');
    // stopped early, then read again from its kept iterator
    for (const [k] of r.rows(prefix)) if (k[2] === 3) break;
    assert.equal([...r.rows(prefix)].length, 601);
    // two reads interleaved: each its own iterator, both complete
    const a = r.rows(prefix);
    const c = r.rows(b(1, 2));
    assert.equal(a.next().done, false);
    assert.equal([...{ [Symbol.iterator]: () => c }].length, 3);
    assert.equal([...{ [Symbol.iterator]: () => a }].length, 600);
    r.release();
    assert.equal(opened - closed, 0, 'no iterator left open');
  });
});
