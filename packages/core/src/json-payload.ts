/**
 * Checks JSON payloads that cross a process boundary or come back from storage (checkpoint
 * metadata, acknowledgements, restore state, statistics, job context), so a malformed one fails
 * where it is read, with the payload and the field named ("checkpoint 7 _metadata:
 * operators["map-1"].subtasks["0"].keyed.path must be a string"), instead of deep inside a restore.
 * Validators check in place and return the value they were given: nothing is copied or dropped,
 * so what is written back (an acknowledgement into `_metadata`) keeps its exact shape.
 */
export class PayloadError extends Error {
  override name = 'PayloadError';
}

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** `path.key`, or `path["key"]` for a key that is not an identifier (operator ids, key groups). */
export function fieldPath(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  const field = IDENTIFIER.test(key) ? key : `[${JSON.stringify(key)}]`;
  if (!path) return field.startsWith('[') ? field : key;
  return field.startsWith('[') ? `${path}${field}` : `${path}.${field}`;
}

/** The validating reader of one payload; `what` names the payload in every error. */
export class PayloadReader {
  constructor(readonly what: string) {}

  fail(path: string, expected: string): never {
    throw new PayloadError(`${this.what}: ${path || 'the payload'} must be ${expected}`);
  }

  parse(text: string): unknown {
    try {
      return JSON.parse(text) as unknown;
    } catch (err) {
      throw new PayloadError(`${this.what}: not valid JSON (${(err as Error).message})`);
    }
  }

  object(v: unknown, path: string): Record<string, unknown> {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) this.fail(path, 'an object');
    return v as Record<string, unknown>;
  }

  array(v: unknown, path: string): unknown[] {
    if (!Array.isArray(v)) this.fail(path, 'an array');
    return v;
  }

  string(v: unknown, path: string): string {
    if (typeof v !== 'string') this.fail(path, 'a string');
    return v;
  }

  number(v: unknown, path: string): number {
    if (typeof v !== 'number' || !Number.isFinite(v)) this.fail(path, 'a number');
    return v;
  }

  integer(v: unknown, path: string, min = 0): number {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min)
      this.fail(path, min === 0 ? 'a non-negative integer' : `an integer of at least ${min}`);
    return v;
  }

  boolean(v: unknown, path: string): boolean {
    if (typeof v !== 'boolean') this.fail(path, 'true or false');
    return v;
  }

  oneOf<T extends string | number>(v: unknown, path: string, allowed: readonly T[]): T {
    if (!allowed.includes(v as T))
      this.fail(path, `one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}`);
    return v as T;
  }

  /** `o[key]` checked with `check` when present (not undefined). */
  optional(
    o: Record<string, unknown>,
    path: string,
    key: string,
    check: (v: unknown, path: string) => unknown,
  ): void {
    if (o[key] !== undefined) check(o[key], fieldPath(path, key));
  }

  /** Every value of an object checked with `check`. */
  eachValue(v: unknown, path: string, check: (v: unknown, path: string) => unknown): Record<string, unknown> {
    const o = this.object(v, path);
    for (const [k, x] of Object.entries(o)) check(x, fieldPath(path, k));
    return o;
  }

  /** Every element of an array checked with `check`. */
  eachElement(v: unknown, path: string, check: (v: unknown, path: string) => unknown): unknown[] {
    const a = this.array(v, path);
    a.forEach((x, i) => check(x, fieldPath(path, i)));
    return a;
  }
}
