// Two source subtasks, periodic checkpoints off; subtask 0 declines the first savepoint (its
// snapshotState throws once). Both feed one sink task (two input channels, so it aligns), which
// writes how many records of each source subtask reached it to <progress file> every 100 ms.
// args: <progress file>.
import { renameSync, writeFileSync } from 'node:fs';
import { StreamExecutionEnvironment, InputStatus, getJobArgs } from '@weir/api';
import type { ReaderOutput, Source, SourceReader, TaskInfo } from '@weir/api';

const [progressFile] = getJobArgs();
const RATE = 500; // records per second per subtask

class DecliningSource implements Source<number> {
  readonly boundedness = 'CONTINUOUS_UNBOUNDED' as const;
  createReader(ctx: TaskInfo): SourceReader<number> {
    const start = Date.now();
    let emitted = 0;
    let declined = false;
    return {
      pollNext(out: ReaderOutput<number>): InputStatus {
        const due = Math.floor(((Date.now() - start) * RATE) / 1000);
        while (emitted < due) {
          out.collect(ctx.subtaskIndex);
          emitted++;
        }
        return InputStatus.NOTHING_AVAILABLE;
      },
      isAvailable: () => new Promise<void>((r) => setTimeout(r, 10)),
      snapshotState(): unknown[] {
        if (ctx.subtaskIndex === 0 && !declined) {
          declined = true;
          throw new Error('declining this checkpoint on purpose');
        }
        return [];
      },
    };
  }
}

const env = StreamExecutionEnvironment.getExecutionEnvironment();
env.setParallelism(2);
env
  .fromSource(new DecliningSource(), 'Declining')
  .rebalance()
  .sinkTo({
    createWriter: () => {
      const seen = [0, 0];
      // written aside and renamed, so the test never reads a truncated file
      const timer = setInterval(() => {
        writeFileSync(`${progressFile!}.tmp`, JSON.stringify(seen));
        renameSync(`${progressFile!}.tmp`, progressFile!);
      }, 100);
      return {
        write: (from: number) => void seen[from]!++,
        close: () => clearInterval(timer),
      };
    },
  })
  .setParallelism(1);
await env.execute('declining-source');
