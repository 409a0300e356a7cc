// Operator list state and union list state in a rich map function; args: <records> [records/s, default 15,000].
import {
  StreamExecutionEnvironment,
  DataGeneratorSource,
  RichMapFunction,
  ListStateDescriptor,
  getJobArgs,
} from '@weir/api';
import type { ListState } from '@weir/api';

type Row = [string, number, number[], Array<[number, number]>];

class Tally extends RichMapFunction<number, Row | null> {
  private seen!: ListState<number>;
  private everyone!: ListState<[number, number]>;
  private restoredSplit: number[] = [];
  private restoredUnion: Array<[number, number]> = [];
  private count = 0;
  private reported = false;

  override open(): void {
    const store = this.getRuntimeContext().getOperatorStateStore();
    this.seen = store.getListState(new ListStateDescriptor<number>('seen'));
    this.everyone = store.getUnionListState(new ListStateDescriptor<[number, number]>('everyone'));
    this.restoredSplit = [...this.seen.get()];
    this.restoredUnion = [...this.everyone.get()];
    this.count = this.restoredSplit.reduce((a, b) => a + b, 0);
  }

  map(): Row | null {
    this.count++;
    const me = this.getRuntimeContext().getIndexOfThisSubtask();
    this.seen.update([this.count]);
    this.everyone.update([[me, this.count]]);
    if (this.reported) return null;
    this.reported = true;
    return ['restored', me, this.restoredSplit, this.restoredUnion];
  }
}

const env = StreamExecutionEnvironment.getExecutionEnvironment();
env
  .fromSource(
    new DataGeneratorSource<number>(
      (i) => i,
      Number(getJobArgs()[0] ?? 40_000),
      Number(getJobArgs()[1] || 15_000),
    ),
    'Generator',
  )
  .uid('gen')
  .rebalance()
  .map(new Tally())
  .uid('tally')
  .filter((r) => r !== null)
  .collect();
await env.execute('operator-state');
