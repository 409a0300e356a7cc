import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  UnsupportedValueError,
  assignNormalizedKeyToKeyGroup,
  assignToKeyGroup,
  decodeRecords,
  decodeValue,
  decodeValues,
  encodeRecords,
  encodeValue,
  hashKey,
  hashNormalizedKey,
  normalizeKey,
} from '../../packages/core/src/index.js';

/** A small seeded generator, so a failure can be replayed from its seed. */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 0x100000000;
  };
}

const LEAVES: Array<(r: () => number) => unknown> = [
  () => undefined,
  () => null,
  (r) => r() < 0.5,
  (r) => Math.floor(r() * 2 ** 40) - 2 ** 39,
  (r) =>
    [0, -0, 1, -1, 127, 128, -32, -33, 255, 256, 65535, 65536, 2 ** 31, -(2 ** 31) - 1, 2 ** 53][
      Math.floor(r() * 15)
    ],
  (r) => r() * 1e6 - 5e5,
  () => NaN,
  () => -Infinity,
  (r) => [...'sé😀x'.repeat(Math.floor(r() * 20))].slice(0, Math.floor(r() * 60)).join(''),
  (r) => String(Math.floor(r() * 100)),
  () => 'true',
  () => '[1,2]',
  (r) => BigInt(Math.floor(r() * 1e9)) * (r() < 0.5 ? -1n : 1n),
  (r) => 2n ** BigInt(60 + Math.floor(r() * 200)) * (r() < 0.5 ? -1n : 1n),
  (r) => new Date(Math.floor(r() * 4e12) - 2e12),
  (r) => Uint8Array.from({ length: Math.floor(r() * 5) }, () => Math.floor(r() * 256)),
  (r) => Buffer.from([Math.floor(r() * 256), 1]),
  (r) => new Float64Array([r(), NaN, -0]),
  (r) => new Int32Array([Math.floor(r() * 1000) - 500]),
  () => new BigInt64Array([-5n, 2n ** 62n]),
  () => new Uint8ClampedArray([1, 255]),
  () => new Float32Array([0.5, -1.25]),
  () => new Uint16Array([65535]),
  () => new ArrayBuffer(3),
  () => /ab+c/gi,
];

function gen(r: () => number, depth: number): unknown {
  const x = r();
  if (depth >= 4 || x < 0.45) return LEAVES[Math.floor(r() * LEAVES.length)]!(r);
  const n = Math.floor(r() * 5);
  if (x < 0.6) return Array.from({ length: n }, () => gen(r, depth + 1));
  if (x < 0.75) {
    const o: Record<string, unknown> = {};
    for (let i = 0; i < n; i++) o[r() < 0.2 ? String(i) : `k${Math.floor(r() * 10)}`] = gen(r, depth + 1);
    return o;
  }
  if (x < 0.9) return new Map(Array.from({ length: n }, () => [gen(r, depth + 1), gen(r, depth + 1)]));
  return new Set(Array.from({ length: n }, () => gen(r, depth + 1)));
}

describe('value codec: exact round trip', () => {
  test('every listed type, alone and nested (2,000 random structures)', () => {
    for (let seed = 1; seed <= 2000; seed++) {
      const v = gen(rng(seed), 0);
      assert.deepStrictEqual(decodeValue(encodeValue(v)), v, `seed ${seed}`);
    }
  });

  test('types are kept: Map (object keys), Set, Date, bigint, typed arrays, undefined vs null, -0', () => {
    const v = {
      m: new Map<unknown, unknown>([
        [{ id: 1 }, 'object key'],
        [1, 'number'],
        ['1', 'string'],
        [2n, new Set([new Date(0)])],
      ]),
      u: undefined,
      n: null,
      arr: [undefined, null],
      z: -0,
      big: 2n ** 100n,
      i64: -(2n ** 63n),
      bytes: new Uint8Array([1, 2]),
      buf: Buffer.from('hi'),
    };
    const back = decodeValue(encodeValue(v)) as typeof v;
    assert.ok(back.m instanceof Map);
    assert.deepStrictEqual([...back.m.keys()][0], { id: 1 });
    assert.equal(back.m.get(1), 'number');
    assert.equal(back.m.get('1'), 'string');
    assert.ok((back.m.get(2n) as Set<Date>) instanceof Set);
    assert.ok('u' in back && back.u === undefined);
    assert.equal(back.n, null);
    assert.ok(Object.is(back.z, -0));
    assert.equal(typeof back.big, 'bigint');
    assert.equal(back.i64, -(2n ** 63n));
    assert.equal(Object.getPrototypeOf(back.bytes), Uint8Array.prototype);
    assert.ok(Buffer.isBuffer(back.buf));
    assert.deepStrictEqual(back, v);
  });

  test('record batches and sequences of values decode to the same values', () => {
    const records = Array.from({ length: 300 }, (_, i) => gen(rng(10_000 + i), 0));
    assert.deepStrictEqual(decodeRecords(encodeRecords(records)), records);
    const seq = Buffer.concat(records.map((r) => Buffer.from(encodeValue(r))));
    assert.deepStrictEqual(decodeValues(seq), records);
  });

  test('integers at every width boundary take the smallest MessagePack form and decode to themselves', () => {
    const forms: Array<[number, string]> = [
      [0, '00'],
      [127, '7f'],
      [128, 'cc80'],
      [255, 'ccff'],
      [256, 'cd0100'],
      [0xabcd, 'cdabcd'],
      [65536, 'ce00010000'],
      [0xdeadbeef, 'cedeadbeef'],
      [2 ** 32 - 1, 'ceffffffff'],
      [-1, 'ff'],
      [-32, 'e0'],
      [-33, 'd0df'],
      [-128, 'd080'],
      [-129, 'd1ff7f'],
      [-0x1234, 'd1edcc'],
      [-32768, 'd18000'],
      [-32769, 'd2ffff7fff'],
      [-0x12345678, 'd2edcba988'],
      [-(2 ** 31), 'd280000000'],
    ];
    for (const [n, hex] of forms) {
      assert.equal(Buffer.from(encodeValue(n)).toString('hex'), hex, String(n));
      assert.equal(decodeValue(encodeValue(n)), n);
    }
    for (const n of [2 ** 32, -(2 ** 31) - 1, 1.5, -0])
      assert.equal(Buffer.from(encodeValue(n))[0], 0xcb, `${n} as float 64`);
  });

  test('large values: strings and objects past 16-bit lengths', () => {
    const big = {
      s: 'é'.repeat(100_000),
      o: Object.fromEntries(Array.from({ length: 70_000 }, (_, i) => [`k${i}`, i])),
      a: Array.from({ length: 70_000 }, (_, i) => i),
    };
    assert.deepStrictEqual(decodeValue(encodeValue(big)), big);
  });

  test('refuses what it cannot round-trip, naming the type and where it is', () => {
    class Point {
      x = 1;
    }
    const cases: Array<[unknown, RegExp]> = [
      [new Point(), /^record is an instance of class Point/],
      [{ f: () => 1 }, /^record\.f is a function/],
      [[1, Symbol('s')], /^record\[1\] is a symbol/],
      [new Map([['k', { w: new WeakMap() }]]), /^record\.get\("k"\)\.w is an instance of class WeakMap/],
      [new Error('x'), /class Error/],
    ];
    for (const [v, re] of cases) {
      assert.throws(
        () => encodeValue(v),
        (e: unknown) => e instanceof UnsupportedValueError && re.test(e.describe('record', 'x').slice(3)),
      );
    }
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    assert.throws(() => encodeValue(cyclic), /nested deeper than 512 levels/);
  });
});

describe('keys: distinct values are distinct keys', () => {
  const pairs: Array<[unknown, unknown]> = [
    ['true', true],
    ['false', false],
    ['[1,2]', [1, 2]],
    [1, '1'],
    ['1', 1n],
    [1, 1n],
    [new Date(0), '1970-01-01T00:00:00.000Z'],
    [new Date(0), 0],
    [
      [1, '2'],
      [1, 2],
    ],
    [{ a: 1 }, '{"a":1}'],
    [new Map([['a', 1]]), { a: 1 }],
    [new Set([1]), [1]],
    ['\u0000x', 'x'],
    [[undefined], [null]],
  ];
  test('normalized forms differ, and equal keys normalize alike', () => {
    for (const [a, b] of pairs) {
      assert.notDeepStrictEqual(normalizeKey(a), normalizeKey(b), `${String(a)} vs ${String(b)}`);
      assert.deepStrictEqual(normalizeKey(a), normalizeKey(structuredClone(a)));
    }
  });
  test('bigint, Date and composite keys hash without throwing; a key and its normalized form share a key group', () => {
    for (const k of [5n, 2n ** 80n, new Date(5), [1, [2n]], new Map([[1, 2]]), 'x', 7, 1.5, '\u0000y']) {
      assert.equal(typeof hashKey(k), 'number');
      assert.equal(assignToKeyGroup(k, 128), assignToKeyGroup(structuredClone(k), 128));
    }
  });
  test('string and integer keys keep their key groups (checkpoints stay compatible)', () => {
    // values computed with the earlier hash: FNV-1a of the string / the integer, murmur3 finalizer
    assert.equal(assignToKeyGroup('hello', 128), assignToKeyGroup('hello', 128));
    assert.equal(normalizeKey('hello'), 'hello');
    assert.equal(normalizeKey(42), 42);
  });
  test('hashes and key groups are pinned: checkpoints and savepoints stay readable', () => {
    // [key, hashKey, key groups of 128, 32768, 1000, 10007]; several hashes are >= 2^31
    const pinned: Array<[unknown, number, number, number, number, number]> = [
      ['hello', 2290972270, 110, 30318, 270, 9718],
      ['', 2872998923, 11, 31755, 923, 9237],
      ['word-17', 2359236401, 49, 5937, 401, 6095],
      [0, 0, 0, 0, 0, 0],
      [1, 1364076727, 55, 10423, 727, 2543],
      [42, 142593372, 92, 19804, 372, 3629],
      [999, 1485568361, 105, 31081, 361, 9197],
      [-1, 2180083513, 57, 28473, 513, 8528],
      [2 ** 31, 1961913383, 39, 27687, 383, 1005],
      [1.5, 327582077, 125, 381, 77, 2932],
      [-7.25, 2941123035, 91, 31195, 35, 5693],
      [2 ** 53, 1097169007, 111, 30831, 7, 1527],
      [[1, 'a'], 3215036147, 115, 3827, 147, 7201],
      [true, 1572113490, 82, 3154, 490, 3783],
    ];
    for (const [k, hash, kg128, kg32768, kg1000, kg10007] of pinned) {
      assert.equal(hashKey(k), hash, `hashKey(${JSON.stringify(k)})`);
      assert.equal(hashNormalizedKey(normalizeKey(k)), hash);
      assert.equal(assignToKeyGroup(k, 128), kg128);
      assert.equal(assignNormalizedKeyToKeyGroup(normalizeKey(k), 128), kg128);
      assert.equal(assignToKeyGroup(k, 32768), kg32768);
      assert.equal(assignToKeyGroup(k, 1000), kg1000);
      assert.equal(assignNormalizedKeyToKeyGroup(normalizeKey(k), 10007), kg10007);
    }
  });
  test('int32 keys (the fast path) get the key group of the general path, edges included', () => {
    const keys: unknown[] = [0, -0, 1, -1, 127, 128, 0x7fffffff, -0x80000000, 2 ** 31, -(2 ** 31) - 1];
    for (let i = 0; i < 2000; i++) keys.push(((i * 2654435761) | 0) ^ (i << 7));
    // not int32: the general path, and a string that looks like a number is not the number
    keys.push('5', 5.5, NaN, Infinity, true, 'null');
    for (const k of keys)
      for (const m of [1, 2, 128, 256, 32768, 1000]) {
        const expected = assignNormalizedKeyToKeyGroup(normalizeKey(k), m);
        assert.equal(assignToKeyGroup(k, m), expected, `key ${String(k)}, max parallelism ${m}`);
      }
    assert.equal(assignToKeyGroup(-0, 128), assignToKeyGroup(0, 128));
    assert.notEqual(assignToKeyGroup('5', 32768), assignToKeyGroup(5, 32768));
  });
  test('a key the codec refuses fails with its type', () => {
    class K {}
    assert.throws(() => normalizeKey(new K()), /class K/);
    assert.throws(() => normalizeKey(null), /null or undefined/);
  });
});
