// Records, keys and keyed state of every type the codec keeps (Map with object keys, Set, Date,
// bigint, typed arrays, undefined vs null) across a keyBy; keys that differ only in type.
// Every record and every state value read is compared with what it must be, exactly; a
// mismatch fails the job. Args: <records> <output dir> [heap|rocksdb] [records per second].
import { isDeepStrictEqual } from 'node:util';
import {
  DataGeneratorSource,
  FileSink,
  KeyedProcessFunction,
  StreamExecutionEnvironment,
  ValueStateDescriptor,
  getJobArgs,
} from '@weir/api';
import type { Collector, StateBackendType, ValueState } from '@weir/api';
import { KEYS, keyName, makeRecord, type Rec } from './typed-values-data.js';

interface Acc {
  count: number;
  sum: bigint;
  ids: Set<number>;
  last: Rec;
}

class CheckAndCount extends KeyedProcessFunction<unknown, Rec, [string, number, string]> {
  private acc!: ValueState<Acc>;
  override open(): void {
    this.acc = this.getRuntimeContext().getState(new ValueStateDescriptor<Acc>('acc'));
  }
  override processElement(
    r: Rec,
    ctx: KeyedProcessFunction.Context<unknown>,
    out: Collector<[string, number, string]>,
  ): void {
    if (!isDeepStrictEqual(r, makeRecord(r.id)))
      throw new Error(
        `record ${r.id} arrived changed: ${JSON.stringify(r, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v))}`,
      );
    if (!isDeepStrictEqual(ctx.getCurrentKey(), KEYS[r.id % KEYS.length]))
      throw new Error(`record ${r.id} is under key ${keyName(ctx.getCurrentKey())}`);
    const a = this.acc.value();
    if (a !== undefined) {
      if (
        !(a.ids instanceof Set) ||
        typeof a.sum !== 'bigint' ||
        !isDeepStrictEqual(a.last, makeRecord(a.last.id))
      )
        throw new Error(`state of key ${keyName(ctx.getCurrentKey())} changed type`);
      if (a.ids.size !== Math.min(a.count, 3)) throw new Error('state set lost elements');
    }
    const ids = new Set([...(a?.ids ?? []), r.id].slice(-3));
    const next: Acc = { count: (a?.count ?? 0) + 1, sum: (a?.sum ?? 0n) + r.big, ids, last: r };
    this.acc.update(next);
    out.collect([keyName(ctx.getCurrentKey()), next.count, next.sum.toString()]);
  }
}

const [records, output, backend, rate] = getJobArgs();
const env = StreamExecutionEnvironment.getExecutionEnvironment();
if (backend) env.setStateBackend(backend as StateBackendType);
env
  .fromSource(
    new DataGeneratorSource<Rec>(makeRecord, Number(records), Number(rate ?? 3000)),
    'Typed records',
  )
  .uid('typed-source')
  .keyBy((r) => r.key)
  .process(new CheckAndCount())
  .uid('check-and-count')
  .sinkTo(new FileSink<[string, number, string]>({ path: output!, format: 'json' }))
  .uid('sink');
await env.execute('typed-values');
