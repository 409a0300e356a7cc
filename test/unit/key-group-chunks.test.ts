import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeRecords, encodeRecords, encodeValue } from '../../packages/core/src/index.js';
import { DIRECT_ENCODING_VALUES } from '../helpers/codec-values.js';
import { CHUNK_BYTES, KeyGroupChunks } from '../../packages/taskmanager/src/state/key-group-chunks.js';

/** the direct path's values, and some it hands to the codec (large ones: across chunk boundaries) */
const VALUES: unknown[] = DIRECT_ENCODING_VALUES;
const KEYS: Array<string | number> = [7, -3, 1.5, 70000, 'k', 'key-'.repeat(10), 'ключ', ''];

test('entries written in chunks are byte for byte what the record codec writes, across chunk boundaries', () => {
  const head = Buffer.concat([Buffer.from([0x93]), encodeValue('state')]);
  const chunks = new KeyGroupChunks(4);
  const expected: unknown[][] = [[], [], [], []];
  // enough entries that every key group fills several chunks
  for (let round = 0; round < 40; round++) {
    for (let i = 0; i < VALUES.length; i++) {
      const key = KEYS[(i + round) % KEYS.length]!;
      const kg = (i * 7 + round) % 4;
      chunks.add(kg, head, key, VALUES[i]);
      expected[kg]!.push(['state', key, VALUES[i]]);
    }
  }
  for (let kg = 0; kg < 4; kg++) {
    assert.equal(chunks.counts[kg], expected[kg]!.length);
    const parts = chunks.take(kg);
    assert.ok(parts.length > 2, `key group ${kg} spans several chunks`);
    for (const p of parts) assert.ok(p.byteLength <= CHUNK_BYTES || p.byteLength > 60_000);
    const bytes = Buffer.concat(parts);
    const codec = Buffer.from(encodeRecords(expected[kg]!));
    // the codec's array header (32-bit length) then the same entry bytes
    assert.equal(codec[0], 0xdc);
    assert.ok(bytes.equals(codec.subarray(3)), `key group ${kg}: bytes differ from the codec's`);
    const header = Buffer.from([0xdd, 0, 0, 0, 0]);
    header.writeUInt32BE(expected[kg]!.length, 1);
    assert.deepEqual(decodeRecords(Buffer.concat([header, bytes])), expected[kg]);
    assert.deepEqual(chunks.take(kg), [], 'taken once');
  }
});

test('namespaced entries [name, key, value, namespace] likewise', () => {
  const head = Buffer.concat([Buffer.from([0x94]), encodeValue('window-contents')]);
  const chunks = new KeyGroupChunks(1);
  const expected: unknown[] = [];
  for (let round = 0; round < 20; round++) {
    for (let i = 0; i < VALUES.length; i++) {
      const key = KEYS[(i + round) % KEYS.length]!;
      const ns = KEYS[(i * 3 + round) % KEYS.length]!;
      chunks.add(0, head, key, VALUES[i], ns);
      expected.push(['window-contents', key, VALUES[i], ns]);
    }
  }
  const bytes = Buffer.concat(chunks.take(0));
  assert.ok(bytes.equals(Buffer.from(encodeRecords(expected)).subarray(3)));
});

test('a value the codec refuses fails with its error', () => {
  const chunks = new KeyGroupChunks(1);
  const head = Buffer.concat([Buffer.from([0x93]), encodeValue('s')]);
  assert.throws(() => chunks.add(0, head, 1, { f: () => 1 }), /function/);
});
