import { createRequire as __weirCreateRequire } from 'node:module'; const require = __weirCreateRequire(import.meta.url);

// bench/jobs/large-state.ts
import { StreamExecutionEnvironment, DataGeneratorSource, KeyedProcessFunction, RestartStrategies, ValueStateDescriptor, getJobArgs } from "file:///work/main/packages/api/dist/index.js";
var Count = class extends KeyedProcessFunction {
  count;
  open() {
    this.count = this.getRuntimeContext().getState(new ValueStateDescriptor("count"));
  }
  processElement(_n, _ctx, _out) {
    this.count.update((this.count.value() ?? 0) + 1);
  }
};
var keys = Number(getJobArgs()[0] ?? 1e6);
var env = StreamExecutionEnvironment.getExecutionEnvironment();
env.setParallelism(2);
env.enableCheckpointing(Number(getJobArgs()[1] ?? 3e3));
if (getJobArgs()[2]) env.getCheckpointConfig().setCheckpointStorage(getJobArgs()[2]);
if (getJobArgs()[3]) env.setStateBackend(getJobArgs()[3]);
if (getJobArgs()[4]) env.setRestartStrategy(RestartStrategies.fixedDelayRestart(10, Number(getJobArgs()[4])));
env.fromSource(new DataGeneratorSource((i) => i % keys, void 0, 5e5), "Keys").keyBy((n) => n).process(new Count()).sinkTo({ createWriter: () => ({ write: () => {
} }) });
await env.execute("bench-large-state");
//# sourceMappingURL=data:application/json;base64,ewogICJ2ZXJzaW9uIjogMywKICAic291cmNlcyI6IFsiYmVuY2gvam9icy9sYXJnZS1zdGF0ZS50cyJdLAogICJtYXBwaW5ncyI6ICI7OztBQUVBLFNBQVMsNEJBQTRCLHFCQUFxQixzQkFBc0IsbUJBQW1CLHNCQUFzQixrQkFBa0I7QUFHM0ksSUFBTSxRQUFOLGNBQW9CLHFCQUE2QztBQUFBLEVBQ3ZEO0FBQUEsRUFDQyxPQUFhO0FBQ3BCLFNBQUssUUFBUSxLQUFLLGtCQUFrQixFQUFFLFNBQVMsSUFBSSxxQkFBNkIsT0FBTyxDQUFDO0FBQUEsRUFDMUY7QUFBQSxFQUNTLGVBQWUsSUFBWSxNQUE0QyxNQUErQjtBQUM3RyxTQUFLLE1BQU0sUUFBUSxLQUFLLE1BQU0sTUFBTSxLQUFLLEtBQUssQ0FBQztBQUFBLEVBQ2pEO0FBQ0Y7QUFFQSxJQUFNLE9BQU8sT0FBTyxXQUFXLEVBQUUsQ0FBQyxLQUFLLEdBQVM7QUFDaEQsSUFBTSxNQUFNLDJCQUEyQix3QkFBd0I7QUFDL0QsSUFBSSxlQUFlLENBQUM7QUFDcEIsSUFBSSxvQkFBb0IsT0FBTyxXQUFXLEVBQUUsQ0FBQyxLQUFLLEdBQUksQ0FBQztBQUN2RCxJQUFJLFdBQVcsRUFBRSxDQUFDLEVBQUcsS0FBSSxvQkFBb0IsRUFBRSxxQkFBcUIsV0FBVyxFQUFFLENBQUMsQ0FBRTtBQUNwRixJQUFJLFdBQVcsRUFBRSxDQUFDLEVBQUcsS0FBSSxnQkFBZ0IsV0FBVyxFQUFFLENBQUMsQ0FBcUI7QUFDNUUsSUFBSSxXQUFXLEVBQUUsQ0FBQyxFQUFHLEtBQUksbUJBQW1CLGtCQUFrQixrQkFBa0IsSUFBSSxPQUFPLFdBQVcsRUFBRSxDQUFDLENBQUMsQ0FBQyxDQUFDO0FBQzVHLElBQUksV0FBVyxJQUFJLG9CQUE0QixDQUFDLE1BQU0sSUFBSSxNQUFNLFFBQVcsR0FBTyxHQUFHLE1BQU0sRUFDeEYsTUFBTSxDQUFDLE1BQU0sQ0FBQyxFQUNkLFFBQVEsSUFBSSxNQUFNLENBQUMsRUFDbkIsT0FBTyxFQUFFLGNBQWMsT0FBTyxFQUFFLE9BQU8sTUFBTTtBQUFDLEVBQUUsR0FBRyxDQUFDO0FBQ3ZELE1BQU0sSUFBSSxRQUFRLG1CQUFtQjsiLAogICJuYW1lcyI6IFtdCn0K
