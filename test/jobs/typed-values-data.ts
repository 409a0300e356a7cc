// The records and keys of typed-values.ts, shared with its test.

/** Keys that collide when compared by their JSON or String() form. */
export const KEYS: unknown[] = [
  'true',
  true,
  '[1,2]',
  [1, 2],
  1,
  '1',
  5n,
  '5',
  new Date(7),
  7,
  [1, '2'],
  [1, 2n],
];

export function keyName(k: unknown): string {
  if (k instanceof Date) return `Date(${k.getTime()})`;
  if (Array.isArray(k)) return `[${k.map(keyName).join(',')}]`;
  return `${typeof k}:${String(k)}`;
}

export interface Rec {
  id: number;
  key: unknown;
  m: Map<unknown, unknown>;
  s: Set<unknown>;
  at: Date;
  big: bigint;
  f: Float64Array;
  b: Uint8Array;
  u: undefined;
  n: null;
  nested: { deep: Array<Map<string, Set<bigint>>> };
}

export function makeRecord(id: number): Rec {
  return {
    id,
    key: KEYS[id % KEYS.length],
    m: new Map<unknown, unknown>([
      [{ obj: id }, `object key ${id}`],
      [id, 'number key'],
      [String(id), 'string key'],
    ]),
    s: new Set([id, String(id), BigInt(id)]),
    at: new Date(1_700_000_000_000 + id),
    big: 2n ** 70n + BigInt(id),
    f: new Float64Array([id / 3, -0, NaN]),
    b: new Uint8Array([id & 0xff, 1, 2]),
    u: undefined,
    n: null,
    nested: { deep: [new Map([['x', new Set([BigInt(-id)])]])] },
  };
}
