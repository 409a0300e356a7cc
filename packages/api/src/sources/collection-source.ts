import type { Source, SourceReader } from '../source.js';
import type { TaskInfo } from '../runtime-context.js';
import { progressionReader, type ProgressionSplit } from './progression-reader.js';

/** Elements given in the job; subtask i of p emits the elements at indices i, i+p, ... */
export class CollectionSource<T> implements Source<T> {
  readonly boundedness = 'BOUNDED' as const;
  constructor(private readonly elements: T[]) {}

  createReader(ctx: TaskInfo, restored?: unknown[]): SourceReader<T> {
    const splits = (restored as ProgressionSplit[] | undefined) ?? [
      { next: ctx.subtaskIndex, step: ctx.parallelism, end: this.elements.length },
    ];
    return progressionReader(splits, (i) => this.elements[i]!);
  }
}
