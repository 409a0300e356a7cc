import type { StreamGraph } from './stream-graph.js';

/**
 * The bridge between a job module and whoever loads it. A job module is evaluated in
 * planning mode: `execute()` hands its stream graph to the planner and never resolves, so
 * nothing after it runs. The client plans to submit; every TaskManager plans again from the
 * same bundle to find its operators' functions by id.
 */
export interface JobPlanner {
  /** the directory relative paths in the job resolve against */
  workingDirectory: string;
  args: string[];
  /** default parallelism from the command line; `setParallelism` in the job wins */
  defaultParallelism?: number;
  onExecute(graph: StreamGraph): void;
}

const KEY = Symbol.for('weir.planner');

type PlannerHolder = { [KEY]?: JobPlanner };

export function installPlanner(planner: JobPlanner | undefined): void {
  (globalThis as PlannerHolder)[KEY] = planner;
}

export function currentPlanner(): JobPlanner | undefined {
  return (globalThis as PlannerHolder)[KEY];
}

/** The arguments given after `--` on `weir run`. */
export function getJobArgs(): string[] {
  return currentPlanner()?.args ?? [];
}
