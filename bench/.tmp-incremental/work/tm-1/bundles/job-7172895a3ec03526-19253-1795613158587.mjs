import { createRequire as __weirCreateRequire } from 'node:module'; const require = __weirCreateRequire(import.meta.url);

// bench/jobs/incremental-state.ts
import { StreamExecutionEnvironment, KeyedProcessFunction, ValueStateDescriptor, InputStatus, getJobArgs } from "file:///work/wt-incr/packages/api/dist/index.js";
var Count = class extends KeyedProcessFunction {
  count;
  open() {
    this.count = this.getRuntimeContext().getState(new ValueStateDescriptor("count"));
  }
  processElement(_n, _ctx, _out) {
    this.count.update((this.count.value() ?? 0) + 1);
  }
};
var [keysArg, changedArg, mode, storage, interval] = getJobArgs();
var KEYS = Number(keysArg ?? 1e6);
var CHANGED = Number(changedArg ?? 1e4);
var LoadThenChange = class {
  boundedness = "CONTINUOUS_UNBOUNDED";
  createReader(ctx) {
    const { subtaskIndex: me, parallelism: p } = ctx;
    let next = Math.floor(KEYS * me / p);
    const end = Math.floor(KEYS * (me + 1) / p);
    let budget = 0;
    let seed = 12345 + me;
    let wake;
    return {
      pollNext(out) {
        if (next < end) {
          for (let i = 0; i < 500 && next < end; i++) out.collect(next++);
          return InputStatus.MORE_AVAILABLE;
        }
        if (budget === 0) return InputStatus.NOTHING_AVAILABLE;
        for (let i = 0; i < 500 && budget > 0; i++, budget--) {
          seed = (seed * 1103515245 + 12345) % 2147483648;
          out.collect(seed % KEYS);
        }
        return InputStatus.MORE_AVAILABLE;
      },
      isAvailable: () => new Promise((resolve) => wake = resolve),
      snapshotState() {
        if (next >= end) budget = Math.floor(CHANGED / p);
        const w = wake;
        wake = void 0;
        setImmediate(() => w?.());
        return [];
      }
    };
  }
};
var env = StreamExecutionEnvironment.getExecutionEnvironment();
env.setParallelism(2);
env.setStateBackend("rocksdb", { incremental: mode === "incremental" });
env.enableCheckpointing(Number(interval ?? 1e3));
env.getCheckpointConfig().setCheckpointStorage(storage).setExternalizedCheckpointRetention("RETAIN_ON_CANCELLATION");
env.fromSource(new LoadThenChange(), "LoadThenChange").keyBy((n) => n).process(new Count()).sinkTo({ createWriter: () => ({ write: () => {
} }) });
await env.execute("bench-incremental-state");
//# sourceMappingURL=data:application/json;base64,ewogICJ2ZXJzaW9uIjogMywKICAic291cmNlcyI6IFsiYmVuY2gvam9icy9pbmNyZW1lbnRhbC1zdGF0ZS50cyJdLAogICJtYXBwaW5ncyI6ICI7OztBQUlBLFNBQVMsNEJBQTRCLHNCQUFzQixzQkFBc0IsYUFBYSxrQkFBa0I7QUFHaEgsSUFBTSxRQUFOLGNBQW9CLHFCQUE2QztBQUFBLEVBQ3ZEO0FBQUEsRUFDQyxPQUFhO0FBQ3BCLFNBQUssUUFBUSxLQUFLLGtCQUFrQixFQUFFLFNBQVMsSUFBSSxxQkFBNkIsT0FBTyxDQUFDO0FBQUEsRUFDMUY7QUFBQSxFQUNTLGVBQWUsSUFBWSxNQUE0QyxNQUErQjtBQUM3RyxTQUFLLE1BQU0sUUFBUSxLQUFLLE1BQU0sTUFBTSxLQUFLLEtBQUssQ0FBQztBQUFBLEVBQ2pEO0FBQ0Y7QUFFQSxJQUFNLENBQUMsU0FBUyxZQUFZLE1BQU0sU0FBUyxRQUFRLElBQUksV0FBVztBQUNsRSxJQUFNLE9BQU8sT0FBTyxXQUFXLEdBQVM7QUFDeEMsSUFBTSxVQUFVLE9BQU8sY0FBYyxHQUFNO0FBRTNDLElBQU0saUJBQU4sTUFBK0M7QUFBQSxFQUNwQyxjQUFjO0FBQUEsRUFDdkIsYUFBYSxLQUEwRTtBQUNyRixVQUFNLEVBQUUsY0FBYyxJQUFJLGFBQWEsRUFBRSxJQUFJO0FBQzdDLFFBQUksT0FBTyxLQUFLLE1BQU8sT0FBTyxLQUFNLENBQUM7QUFDckMsVUFBTSxNQUFNLEtBQUssTUFBTyxRQUFRLEtBQUssS0FBTSxDQUFDO0FBQzVDLFFBQUksU0FBUztBQUNiLFFBQUksT0FBTyxRQUFRO0FBQ25CLFFBQUk7QUFDSixXQUFPO0FBQUEsTUFDTCxTQUFTLEtBQXdDO0FBQy9DLFlBQUksT0FBTyxLQUFLO0FBQ2QsbUJBQVMsSUFBSSxHQUFHLElBQUksT0FBTyxPQUFPLEtBQUssSUFBSyxLQUFJLFFBQVEsTUFBTTtBQUM5RCxpQkFBTyxZQUFZO0FBQUEsUUFDckI7QUFDQSxZQUFJLFdBQVcsRUFBRyxRQUFPLFlBQVk7QUFDckMsaUJBQVMsSUFBSSxHQUFHLElBQUksT0FBTyxTQUFTLEdBQUcsS0FBSyxVQUFVO0FBQ3BELGtCQUFRLE9BQU8sYUFBYSxTQUFTO0FBQ3JDLGNBQUksUUFBUSxPQUFPLElBQUk7QUFBQSxRQUN6QjtBQUNBLGVBQU8sWUFBWTtBQUFBLE1BQ3JCO0FBQUEsTUFDQSxhQUFhLE1BQU0sSUFBSSxRQUFjLENBQUMsWUFBYSxPQUFPLE9BQVE7QUFBQSxNQUNsRSxnQkFBMkI7QUFFekIsWUFBSSxRQUFRLElBQUssVUFBUyxLQUFLLE1BQU0sVUFBVSxDQUFDO0FBQ2hELGNBQU0sSUFBSTtBQUNWLGVBQU87QUFDUCxxQkFBYSxNQUFNLElBQUksQ0FBQztBQUN4QixlQUFPLENBQUM7QUFBQSxNQUNWO0FBQUEsSUFDRjtBQUFBLEVBQ0Y7QUFDRjtBQUVBLElBQU0sTUFBTSwyQkFBMkIsd0JBQXdCO0FBQy9ELElBQUksZUFBZSxDQUFDO0FBQ3BCLElBQUksZ0JBQWdCLFdBQVcsRUFBRSxhQUFhLFNBQVMsY0FBYyxDQUFDO0FBQ3RFLElBQUksb0JBQW9CLE9BQU8sWUFBWSxHQUFJLENBQUM7QUFDaEQsSUFBSSxvQkFBb0IsRUFBRSxxQkFBcUIsT0FBUSxFQUFFLG1DQUFtQyx3QkFBd0I7QUFDcEgsSUFBSSxXQUFXLElBQUksZUFBZSxHQUFHLGdCQUFnQixFQUNsRCxNQUFNLENBQUMsTUFBTSxDQUFDLEVBQ2QsUUFBUSxJQUFJLE1BQU0sQ0FBQyxFQUNuQixPQUFPLEVBQUUsY0FBYyxPQUFPLEVBQUUsT0FBTyxNQUFNO0FBQUMsRUFBRSxHQUFHLENBQUM7QUFDdkQsTUFBTSxJQUFJLFFBQVEseUJBQXlCOyIsCiAgIm5hbWVzIjogW10KfQo=
