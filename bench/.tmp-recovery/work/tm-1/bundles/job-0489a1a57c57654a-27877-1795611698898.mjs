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
if (getJobArgs()[3]) env.setRestartStrategy(RestartStrategies.fixedDelayRestart(10, Number(getJobArgs()[3])));
env.fromSource(new DataGeneratorSource((i) => i % keys, void 0, 5e5), "Keys").keyBy((n) => n).process(new Count()).sinkTo({ createWriter: () => ({ write: () => {
} }) });
await env.execute("bench-large-state");
//# sourceMappingURL=data:application/json;base64,ewogICJ2ZXJzaW9uIjogMywKICAic291cmNlcyI6IFsiYmVuY2gvam9icy9sYXJnZS1zdGF0ZS50cyJdLAogICJtYXBwaW5ncyI6ICI7OztBQUVBLFNBQVMsNEJBQTRCLHFCQUFxQixzQkFBc0IsbUJBQW1CLHNCQUFzQixrQkFBa0I7QUFHM0ksSUFBTSxRQUFOLGNBQW9CLHFCQUE2QztBQUFBLEVBQ3ZEO0FBQUEsRUFDQyxPQUFhO0FBQ3BCLFNBQUssUUFBUSxLQUFLLGtCQUFrQixFQUFFLFNBQVMsSUFBSSxxQkFBNkIsT0FBTyxDQUFDO0FBQUEsRUFDMUY7QUFBQSxFQUNTLGVBQWUsSUFBWSxNQUE0QyxNQUErQjtBQUM3RyxTQUFLLE1BQU0sUUFBUSxLQUFLLE1BQU0sTUFBTSxLQUFLLEtBQUssQ0FBQztBQUFBLEVBQ2pEO0FBQ0Y7QUFFQSxJQUFNLE9BQU8sT0FBTyxXQUFXLEVBQUUsQ0FBQyxLQUFLLEdBQVM7QUFDaEQsSUFBTSxNQUFNLDJCQUEyQix3QkFBd0I7QUFDL0QsSUFBSSxlQUFlLENBQUM7QUFDcEIsSUFBSSxvQkFBb0IsT0FBTyxXQUFXLEVBQUUsQ0FBQyxLQUFLLEdBQUksQ0FBQztBQUN2RCxJQUFJLFdBQVcsRUFBRSxDQUFDLEVBQUcsS0FBSSxvQkFBb0IsRUFBRSxxQkFBcUIsV0FBVyxFQUFFLENBQUMsQ0FBRTtBQUNwRixJQUFJLFdBQVcsRUFBRSxDQUFDLEVBQUcsS0FBSSxtQkFBbUIsa0JBQWtCLGtCQUFrQixJQUFJLE9BQU8sV0FBVyxFQUFFLENBQUMsQ0FBQyxDQUFDLENBQUM7QUFDNUcsSUFBSSxXQUFXLElBQUksb0JBQTRCLENBQUMsTUFBTSxJQUFJLE1BQU0sUUFBVyxHQUFPLEdBQUcsTUFBTSxFQUN4RixNQUFNLENBQUMsTUFBTSxDQUFDLEVBQ2QsUUFBUSxJQUFJLE1BQU0sQ0FBQyxFQUNuQixPQUFPLEVBQUUsY0FBYyxPQUFPLEVBQUUsT0FBTyxNQUFNO0FBQUMsRUFBRSxHQUFHLENBQUM7QUFDdkQsTUFBTSxJQUFJLFFBQVEsbUJBQW1COyIsCiAgIm5hbWVzIjogW10KfQo=
