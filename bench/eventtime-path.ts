/**
 * In-process micro-benchmark of what event time adds per record on the path of the keyed
 * count in bench/jobs/eventtime.ts, without processes or threads: a DataGeneratorSource
 * reader, the source head a task builds (with a WatermarkStrategy: assigner, generator,
 * watermark hold), the hash record writer, a result partition of 2 subpartitions, input
 * gates decoding the buffers, and a per-key count reading each record's timestamp slot.
 * `node --import tsx bench/eventtime-path.ts`; RECORDS (default 10,000,000), RUNS (default 5),
 * SOURCE_PARALLELISM (default 1: this reader is subtask 0 of that many, so with 2 it reads every
 * other record and a channel gets the ~25 records per millisecond it gets in the cluster job),
 * PER_MS (default 100: records per millisecond of event time, as in the job; larger values give
 * longer runs of equal timestamps per channel).
 * Prints records per CPU-second without and with event time (alternating runs, each in its own process;
 * medians), the cost, and the bytes per record the partition sent (records and timestamps).
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { DataGeneratorSource, WatermarkStrategy, type Collector, InputStatus } from '@weir/api';
import { InputGate } from '../packages/taskmanager/src/network/input-gate.js';
import type { TimestampRuns } from '../packages/taskmanager/src/network/buffer-format.js';
import {
  createRecordWriter,
  type RecordTimestamp,
} from '../packages/taskmanager/src/network/record-writer.js';
import { ResultPartition } from '../packages/taskmanager/src/network/result-partition.js';
import { TimestampsAndWatermarks } from '../packages/taskmanager/src/eventtime/watermark-generation.js';
import {
  AfterRecordWatermarks,
  timestampingSourceOutput,
} from '../packages/taskmanager/src/operators/event-time-operators.js';

const RECORDS = Number(process.env.RECORDS ?? 10_000_000);
const RUNS = Number(process.env.RUNS ?? 5);
const MAX_P = 128;
const SOURCE_PARALLELISM = Number(process.env.SOURCE_PARALLELISM ?? 1);
/** records per millisecond of event time (the job's 100) */
const PER_MS = Number(process.env.PER_MS ?? 100);
/** the records this reader emits */
const READ = Math.ceil(RECORDS / SOURCE_PARALLELISM);
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');

function run(eventTime: boolean): { rate: number; bytesPerRecord: number } {
  const info = { subtaskIndex: 0, parallelism: SOURCE_PARALLELISM } as never;
  const reader = new DataGeneratorSource<number>((i) => i, RECORDS).createReader(info);
  const slot: RecordTimestamp = { value: undefined };
  const gates = [new InputGate(1, () => {}), new InputGate(1, () => {})];
  const partition = new ResultPartition({
    partitionId: 'p',
    numberOfSubpartitions: 2,
    maxBacklog: 1 << 30,
    onAvailable: () => {},
    send: (_id, sub, kind, bytes) => gates[sub]!.onFrame(0, kind, bytes),
  });
  partition.onRequest(0, 1 << 30);
  partition.onRequest(1, 1 << 30);
  const counters = { recordsOut: 0, recordsIn: 0 };
  const writer = createRecordWriter(
    partition,
    'hash',
    0,
    MAX_P,
    (i) => (i as number) % 1000,
    counters,
    'bench',
    slot,
  );
  let watermarks = 0;
  let head: Collector<unknown>;
  let tw: TimestampsAndWatermarks<unknown> | undefined;
  if (eventTime) {
    const strategy = WatermarkStrategy.forMonotonousTimestamps<number>().withTimestampAssigner((i) =>
      Math.floor(i / PER_MS),
    );
    const sink = new AfterRecordWatermarks({
      emitWatermark: () => watermarks++,
      emitWatermarkStatus: () => {},
    });
    tw = new TimestampsAndWatermarks<unknown>(strategy as never, 'Numbers', () => Date.now(), sink, 200);
    head = timestampingSourceOutput(tw, sink, slot, writer, counters);
  } else {
    head = {
      collect: (r) => {
        counters.recordsIn++;
        writer.collect(r);
      },
    };
  }
  const counts = new Map<number, number>();
  let tsSum = 0;
  const count = (record: unknown): void => {
    const k = (record as number) % 1000;
    counts.set(k, (counts.get(k) ?? 0) + 1);
  };
  const handler = {
    onRecords: (records: unknown[], _c: number, timestamps?: TimestampRuns): void => {
      // as StreamTask.drainPending: the timestamp into the slot, run by run
      if (timestamps === undefined) {
        slot.value = undefined;
        for (let i = 0; i < records.length; i++) count(records[i]);
        return;
      }
      const { runs, starts, values } = timestamps;
      for (let r = 0, i = 0; r < runs; r++) {
        const end = r + 1 < runs ? starts[r + 1]! : records.length;
        const t = values[r]!;
        const ts = t === t ? t : undefined;
        for (; i < end; i++) {
          slot.value = ts;
          count(records[i]);
        }
      }
      tsSum += slot.value ?? 0;
    },
    onEvent: () => {},
  };
  const cpu0 = process.cpuUsage();
  let status: InputStatus;
  do {
    status = reader.pollNext(head);
    tw?.onProcessingTime(Date.now());
    for (const g of gates) while (g.pollNext(handler));
  } while (status !== InputStatus.END_OF_INPUT);
  partition.flushAll();
  for (const g of gates) while (g.pollNext(handler));
  // CPU time of this process, not wall time: on a loaded machine it varies far less
  const cpu = process.cpuUsage(cpu0);
  const s = (cpu.user + cpu.system) / 1e6;
  let total = 0;
  for (const c of counts.values()) total += c;
  if (total !== READ) throw new Error(`counted ${total} records, expected ${READ}`);
  if (eventTime && tsSum === 0) throw new Error('no timestamps arrived');
  return { rate: READ / s, bytesPerRecord: partition.bytesOut / READ };
}

// each run in a process of its own, so one variant's code does not make the other's polymorphic
const variant = process.env.EVENTTIME_PATH_VARIANT;
if (variant !== undefined) {
  const r = run(variant === 'with');
  console.log(`${r.rate} ${r.bytesPerRecord}`);
  process.exit(0);
}
const bytes = { without: 0, with: 0 };
const runChild = (v: 'without' | 'with'): number => {
  const [rate, perRecord] = execFileSync(
    process.execPath,
    [...process.execArgv, fileURLToPath(import.meta.url)],
    { env: { ...process.env, EVENTTIME_PATH_VARIANT: v }, encoding: 'utf8' },
  )
    .trim()
    .split(' ')
    .map(Number);
  bytes[v] = perRecord!;
  return rate!;
};
const without: number[] = [];
const withTs: number[] = [];
for (let r = 0; r < RUNS; r++) {
  without.push(runChild('without'));
  withTs.push(runChild('with'));
}
const a = median(without);
const b = median(withTs);
console.log(`without event time ${fmt(a)} records/s (${without.map(fmt).join(', ')})`);
console.log(`with timestamps and watermarks ${fmt(b)} records/s (${withTs.map(fmt).join(', ')})`);
console.log(`event-time cost on the path: ${((1 - b / a) * 100).toFixed(1)}%`);
console.log(
  `bytes sent per record: ${bytes.without.toFixed(3)} without, ${bytes.with.toFixed(3)} with event time (+${((bytes.with / bytes.without - 1) * 100).toFixed(1)}%)`,
);
