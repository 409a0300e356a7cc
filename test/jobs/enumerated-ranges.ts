// A bounded split source whose splits come from a split enumerator on the JobManager, handed
// out one at a time as readers ask (the example of docs/connectors.md), into a FileSink.
import {
  FileSink,
  InputStatus,
  SplitSource,
  StreamExecutionEnvironment,
  getJobArgs,
  type SplitEnumerator,
  type SplitEnumeratorContext,
  type SplitReader,
  type SplitReaderOutput,
} from '@weir/api';

interface RangeSplit {
  splitId: string;
  next: number;
  end: number;
}

const [splits, perSplit, output] = getJobArgs();

class PulledRanges extends SplitSource<number, RangeSplit> {
  readonly boundedness = 'BOUNDED' as const;
  createSplits(): RangeSplit[] {
    const n = Number(perSplit);
    return Array.from({ length: Number(splits) }, (_, k) => ({
      splitId: `r${k}`,
      next: k * n,
      end: k * n + n,
    }));
  }
  createSplitReader(split: RangeSplit): SplitReader<number, RangeSplit> {
    const s = { ...split };
    return {
      fetch(out: SplitReaderOutput<number>, budget: number): InputStatus {
        while (budget-- > 0 && s.next < s.end) out.collect(s.next++);
        return s.next < s.end ? InputStatus.MORE_AVAILABLE : InputStatus.END_OF_INPUT;
      },
      isAvailable: () => Promise.resolve(),
      snapshot: () => ({ ...s }),
    };
  }
  override createEnumerator(ctx: SplitEnumeratorContext<RangeSplit>, restored?: unknown) {
    const remaining = (restored as RangeSplit[] | undefined) ?? this.createSplits();
    const enumerator: SplitEnumerator<RangeSplit, RangeSplit[]> = {
      start: () => {},
      addReader: () => {},
      handleSplitRequest: (subtask) => {
        const s = remaining.shift();
        if (s) ctx.assignSplit(s, subtask);
        else ctx.signalNoMoreSplits(subtask);
      },
      addSplitsBack: (back) => remaining.unshift(...back),
      snapshotState: () => remaining,
    };
    return enumerator;
  }
}

const env = StreamExecutionEnvironment.getExecutionEnvironment();
env.setParallelism(2);
env.enableCheckpointing(200);
env.fromSource(new PulledRanges(), 'Ranges').sinkTo(new FileSink<number>({ path: output! }));
await env.execute('enumerated-ranges');
