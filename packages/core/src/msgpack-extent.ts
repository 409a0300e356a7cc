import { MAP_EXT } from './value-encoder.js';

/*
 * Where a MessagePack value ends, without decoding it: restores copy stored bytes (values of
 * keyed state) from checkpoint batches into RocksDB as they are, and need only their extent.
 */

/**
 * Extension types written as a tag: a fixext 1 of the type, then the value it wraps as the next
 * MessagePack value (how weir's encoder writes Map and Set, and msgpackr Error and RegExp).
 */
const TAG_TYPES = new Set([MAP_EXT, 0x73, 0x65, 0x78]);

/** Thrown for bytes that are no MessagePack value within their bounds (a corrupt batch). */
function corrupt(pos: number, what: string): Error {
  return new Error(`Corrupt MessagePack at byte ${pos}: ${what}`);
}

/**
 * The offset just past the MessagePack value that starts at `pos`, reading no further than
 * `limit`. Containers are walked with a count of the values still owed, so deep nesting costs
 * no recursion.
 */
export function msgpackValueEnd(b: Uint8Array, pos: number, limit: number = b.length): number {
  let owed = 1;
  while (owed > 0) {
    owed--;
    if (pos >= limit) throw corrupt(pos, 'the value runs past its end');
    const h = b[pos]!;
    if (h < 0x80 || h >= 0xe0) {
      pos += 1; // fixint
      continue;
    }
    if (h < 0x90) {
      owed += 2 * (h & 0x0f); // fixmap
      pos += 1;
      continue;
    }
    if (h < 0xa0) {
      owed += h & 0x0f; // fixarray
      pos += 1;
      continue;
    }
    if (h < 0xc0) {
      pos += 1 + (h & 0x1f); // fixstr
      continue;
    }
    switch (h) {
      case 0xc0: // nil
      case 0xc2: // false
      case 0xc3: // true
        pos += 1;
        break;
      case 0xc4: // bin 8
      case 0xd9: // str 8
        pos += 2 + u8(b, pos + 1, limit);
        break;
      case 0xc5: // bin 16
      case 0xda: // str 16
        pos += 3 + u16(b, pos + 1, limit);
        break;
      case 0xc6: // bin 32
      case 0xdb: // str 32
        pos += 5 + u32(b, pos + 1, limit);
        break;
      case 0xc7: // ext 8
        pos += 3 + u8(b, pos + 1, limit);
        break;
      case 0xc8: // ext 16
        pos += 4 + u16(b, pos + 1, limit);
        break;
      case 0xc9: // ext 32
        pos += 6 + u32(b, pos + 1, limit);
        break;
      case 0xcc: // uint 8
      case 0xd0: // int 8
        pos += 2;
        break;
      case 0xcd:
      case 0xd1:
        pos += 3;
        break;
      case 0xca: // float 32
      case 0xce:
      case 0xd2:
        pos += 5;
        break;
      case 0xcb: // float 64
      case 0xcf:
      case 0xd3:
        pos += 9;
        break;
      case 0xd4: // fixext 1; a tag of the value after it for some types
        if (TAG_TYPES.has(u8(b, pos + 1, limit))) owed++;
        pos += 3;
        break;
      case 0xd5:
        pos += 4;
        break;
      case 0xd6:
        pos += 6;
        break;
      case 0xd7:
        pos += 10;
        break;
      case 0xd8:
        pos += 18;
        break;
      case 0xdc: // array 16
        owed += u16(b, pos + 1, limit);
        pos += 3;
        break;
      case 0xdd: // array 32
        owed += u32(b, pos + 1, limit);
        pos += 5;
        break;
      case 0xde: // map 16
        owed += 2 * u16(b, pos + 1, limit);
        pos += 3;
        break;
      case 0xdf: // map 32
        owed += 2 * u32(b, pos + 1, limit);
        pos += 5;
        break;
      default:
        throw corrupt(pos, `0x${h.toString(16)} starts no value`);
    }
  }
  if (pos > limit) throw corrupt(limit, 'the value runs past its end');
  return pos;
}

/**
 * The element count of the MessagePack array that starts at `pos` and where its elements
 * begin, or undefined when no array starts there.
 */
export function msgpackArrayHeader(
  b: Uint8Array,
  pos: number,
  limit: number = b.length,
): [number, number] | undefined {
  const h = b[pos];
  if (h === undefined || pos >= limit) return undefined;
  if (h >= 0x90 && h < 0xa0) return [h & 0x0f, pos + 1];
  if (h === 0xdc) return [u16(b, pos + 1, limit), pos + 3];
  if (h === 0xdd) return [u32(b, pos + 1, limit), pos + 5];
  return undefined;
}

function u8(b: Uint8Array, at: number, limit: number): number {
  if (at + 1 > limit) throw corrupt(at, 'a length runs past the end');
  return b[at]!;
}

function u16(b: Uint8Array, at: number, limit: number): number {
  if (at + 2 > limit) throw corrupt(at, 'a length runs past the end');
  return (b[at]! << 8) | b[at + 1]!;
}

function u32(b: Uint8Array, at: number, limit: number): number {
  if (at + 4 > limit) throw corrupt(at, 'a length runs past the end');
  return b[at]! * 0x1000000 + ((b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!);
}
