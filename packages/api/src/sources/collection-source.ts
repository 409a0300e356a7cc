import { AVAILABLE, InputStatus, type ReaderOutput, type Source, type SourceReader } from '../source.js';
import type { TaskInfo } from '../runtime-context.js';

/** Elements given in the job; subtask i of p emits the elements at indices i, i+p, ... */
export class CollectionSource<T> implements Source<T> {
  readonly boundedness = 'BOUNDED' as const;
  constructor(private readonly elements: T[]) {}

  createReader(ctx: TaskInfo): SourceReader<T> & { position: number } {
    const elements = this.elements;
    const step = ctx.parallelism;
    return {
      position: ctx.subtaskIndex,
      pollNext(out: ReaderOutput<T>): InputStatus {
        for (let n = 0; n < 256 && this.position < elements.length; n++) {
          out.collect(elements[this.position]!);
          this.position += step;
        }
        return this.position < elements.length ? InputStatus.MORE_AVAILABLE : InputStatus.END_OF_INPUT;
      },
      isAvailable: () => AVAILABLE,
      snapshotState() {
        return { position: this.position };
      },
    };
  }
}
