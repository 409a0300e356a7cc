/** A value the record codec cannot write exactly, with where it sits (see codec.ts). */
export class UnsupportedValueError extends Error {
  /** where the value sits, outermost first: rendered steps such as `.name`, `[3]`, `.get(1)` */
  readonly path: string[] = [];
  constructor(readonly typeName: string) {
    super(typeName);
    this.name = 'UnsupportedValueError';
  }

  /** 'record.items[2].f' style location under `root`. */
  location(root: string): string {
    return root + this.path.join('');
  }

  /** A message for the user: what, where, and what to do instead. */
  describe(root: string, context: string): string {
    return (
      `${context}: ${this.location(root)} is ${this.typeName}, which cannot be serialized exactly. ` +
      'Records, keys and state values may hold strings, numbers, booleans, bigint, null, undefined, ' +
      'arrays, plain objects, Map, Set, Date, RegExp, typed arrays, ArrayBuffer and Buffer; ' +
      'convert the value to one of those (for a class instance: a plain object of its fields).'
    );
  }
}

export function typeNameOf(value: unknown): string {
  switch (typeof value) {
    case 'function':
      return `a function${(value as { name?: string }).name ? ` (${(value as { name: string }).name})` : ''}`;
    case 'symbol':
      return `a symbol (${String(value)})`;
    default: {
      const ctor = (value as { constructor?: { name?: string } }).constructor;
      const name = typeof ctor === 'function' && ctor.name ? ctor.name : 'an object with a custom prototype';
      return ctor?.name ? `an instance of class ${name}` : name;
    }
  }
}

export function describeKey(k: unknown): string {
  if (typeof k === 'string') return JSON.stringify(k);
  if (typeof k === 'number' || typeof k === 'boolean') return String(k);
  if (typeof k === 'bigint') return `${k}n`;
  return typeof k === 'object' && k !== null ? '<object>' : typeof k;
}
