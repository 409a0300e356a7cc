import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Packr } from 'msgpackr';
import { KEYS_OF_EVERY_FORMAT } from '../helpers/msgpack-values.js';
import { msgpackArrayHeader, msgpackValueEnd, valueEncoder } from '../../packages/core/src/index.js';

const packr = new Packr({ useRecords: false, moreTypes: true });

/** Values covering every MessagePack format the encoders write. */
const VALUES: unknown[] = [
  ...KEYS_OF_EVERY_FORMAT,
  -0,
  NaN,
  Infinity,
  2n ** 40n,
  -(2n ** 40n),
  'x'.repeat(70_000),
  true,
  false,
  null,
  undefined,
  [],
  [1, [2, [3, [4]]]],
  Array.from({ length: 20 }, (_, i) => i),
  Array.from({ length: 70_000 }, (_, i) => i & 7),
  { a: 1, b: { c: [1, 2] } },
  Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, i])),
  new Map<unknown, unknown>([
    [1, 'a'],
    ['b', [2]],
  ]),
  new Set([1, 2]),
  new Uint8Array([1, 2, 3]),
  Buffer.alloc(300, 7),
  Buffer.alloc(70_000, 1),
  new Float64Array([1.5, 2.5]),
  new Date(5),
];

describe('msgpackValueEnd', () => {
  test("finds the end of every value weir's encoder and msgpackr write, alone and followed by more bytes", () => {
    for (const v of VALUES) {
      for (const bytes of [Buffer.from(valueEncoder.encodeCopy(v)), packr.pack(v)]) {
        assert.equal(msgpackValueEnd(bytes, 0), bytes.length, `${String(v).slice(0, 40)}`);
        const padded = Buffer.concat([Buffer.from([0xc0]), bytes, Buffer.from([0x01, 0x02])]);
        assert.equal(msgpackValueEnd(padded, 1), 1 + bytes.length);
      }
    }
  });

  test('a value cut short or a byte that starts no value fails with the position, never reads past the limit', () => {
    for (const v of VALUES) {
      const bytes = Buffer.from(valueEncoder.encodeCopy(v));
      if (bytes.length < 2) continue;
      assert.throws(() => msgpackValueEnd(bytes, 0, bytes.length - 1), /Corrupt MessagePack/);
    }
    assert.throws(() => msgpackValueEnd(Buffer.from([0xc1]), 0), /0xc1 starts no value/);
    assert.throws(() => msgpackValueEnd(Buffer.from([0x92, 0x01]), 0), /runs past its end/);
  });

  test('msgpackArrayHeader reads every array header and refuses anything else', () => {
    for (const n of [0, 15, 16, 65535, 65536]) {
      const bytes = Buffer.from(valueEncoder.encodeCopy(Array.from({ length: n }, () => 0)));
      const [count, at] = msgpackArrayHeader(bytes, 0)!;
      assert.equal(count, n);
      assert.equal(bytes.length - at, n);
    }
    assert.equal(msgpackArrayHeader(Buffer.from(valueEncoder.encodeCopy({ a: 1 })), 0), undefined);
    assert.equal(msgpackArrayHeader(Buffer.alloc(0), 0), undefined);
  });
});
