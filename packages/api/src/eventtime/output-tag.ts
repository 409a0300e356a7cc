/**
 * Names a side output (Flink's OutputTag): `ctx.output(tag, value)` in a process function
 * or `sideOutputLateData(tag)` on a window, read with `getSideOutput(tag)`. Two tags are the
 * same output when their ids are equal.
 */
export class OutputTag<T> {
  declare readonly __type?: T;

  constructor(readonly id: string) {
    if (typeof id !== 'string' || id.length === 0) {
      throw new Error('An OutputTag needs a non-empty id, e.g. new OutputTag<string>("late-data")');
    }
  }

  getId(): string {
    return this.id;
  }

  toString(): string {
    return `OutputTag(${this.id})`;
  }
}
