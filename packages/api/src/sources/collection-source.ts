import { ProgressionSource, type ProgressionSplit } from './progression-reader.js';

/** Elements given in the job; subtask i of p emits the elements at indices i, i+p, ... */
export class CollectionSource<T> extends ProgressionSource<T> {
  readonly boundedness = 'BOUNDED' as const;
  constructor(private readonly elements: T[]) {
    super();
  }

  createSplits(parallelism: number): ProgressionSplit[] {
    return Array.from({ length: parallelism }, (_, i) => ({
      splitId: `elements-${i}`,
      next: i,
      step: parallelism,
      end: this.elements.length,
    }));
  }

  protected element(index: number): T {
    return this.elements[index]!;
  }
}
