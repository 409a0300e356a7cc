/**
 * Key groups are the unit of keyed state: a key's group is a stable hash of the key modulo
 * the max parallelism, and subtask i owns a contiguous range of groups. The hash must be the
 * same in every process, so it is computed here from the key's value, never from identity.
 */

function mix(h: number): number {
  // murmur3 finalizer: spreads the bits so nearby keys land in different groups
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  }
  return h;
}

export function hashKey(key: unknown): number {
  switch (typeof key) {
    case 'string':
      return mix(hashString(key));
    case 'number':
      return mix(
        Number.isInteger(key) && key >= -0x80000000 && key <= 0x7fffffff ? key : hashString(String(key)),
      );
    case 'bigint':
    case 'boolean':
      return mix(hashString(String(key)));
    default:
      if (key === null || key === undefined) {
        throw new Error('A key selector returned null or undefined; every record needs a key');
      }
      return mix(hashString(JSON.stringify(key)));
  }
}

export function assignToKeyGroup(key: unknown, maxParallelism: number): number {
  return hashKey(key) % maxParallelism;
}

/** Flink's formula, so a key group maps to the same subtask as it would there. */
export function computeOperatorIndexForKeyGroup(
  maxParallelism: number,
  parallelism: number,
  keyGroup: number,
): number {
  return Math.floor((keyGroup * parallelism) / maxParallelism);
}

export class KeyGroupRange {
  constructor(
    readonly start: number,
    readonly end: number,
  ) {}

  contains(keyGroup: number): boolean {
    return keyGroup >= this.start && keyGroup <= this.end;
  }

  get size(): number {
    return this.end - this.start + 1;
  }

  toString(): string {
    return `KeyGroupRange{${this.start}..${this.end}}`;
  }
}

export function computeKeyGroupRangeForOperatorIndex(
  maxParallelism: number,
  parallelism: number,
  operatorIndex: number,
): KeyGroupRange {
  if (parallelism > maxParallelism)
    throw new Error(`Parallelism ${parallelism} exceeds max parallelism ${maxParallelism}`);
  const start = Math.floor((operatorIndex * maxParallelism + parallelism - 1) / parallelism);
  const end = Math.floor(((operatorIndex + 1) * maxParallelism - 1) / parallelism);
  return new KeyGroupRange(start, end);
}

/**
 * Keys as used inside state maps: strings and numbers as they are, anything else in its
 * JSON form, so two equal tuple keys find the same state.
 */
export function normalizeKey(key: unknown): string | number {
  return typeof key === 'string' || typeof key === 'number' ? key : JSON.stringify(key);
}
