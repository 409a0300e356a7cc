import { status } from '@grpc/grpc-js';
import { buildJobGraph, decodeRecords, isStorageUri, planJobBundle } from '@weir/core';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bundleJob } from './bundler.js';
import { ClusterClient } from './cluster-client.js';
import { describeJob, formatBytes, formatCount, formatRate, shortStatus, taskStates } from './format.js';

export interface RunOptions {
  jobmanager: string;
  parallelism?: number;
  detached?: boolean;
  args: string[];
  /** a savepoint or retained checkpoint to start from */
  fromSavepoint?: string;
  allowNonRestoredState?: boolean;
  /**
   * the directory relative paths in the job (FileSink, readTextFile) are resolved against on
   * the TaskManagers; default: the current directory, which suits a local cluster. On a
   * cluster in containers, a directory of theirs (e.g. /var/lib/weir).
   */
  workingDirectory?: string;
  /** prints progress lines; attached runs only */
  progress?: (line: string, final: boolean) => void;
}

/** Bundles, plans and submits a job; attached, follows it to its end and returns the exit code. */
export async function runJob(file: string, opts: RunOptions): Promise<number> {
  const bundle = await bundleJob(file);
  const jobContext = {
    workingDirectory: opts.workingDirectory ?? process.cwd(),
    args: opts.args,
    ...(opts.parallelism !== undefined ? { defaultParallelism: opts.parallelism } : {}),
  };
  const planDir = mkdtempSync(path.join(os.tmpdir(), 'weir-plan-'));
  let streamGraph;
  try {
    streamGraph = await planJobBundle(bundle, jobContext, planDir);
  } catch (err) {
    throw new Error(`The job in ${path.resolve(file)} could not be planned: ${(err as Error).message}`);
  } finally {
    rmSync(planDir, { recursive: true, force: true });
  }
  const jobGraph = buildJobGraph(streamGraph);
  const outputs = streamGraph.nodes
    .map((n) =>
      (n.transformation.sink as { describe?: (cwd: string) => string } | undefined)?.describe?.(
        jobContext.workingDirectory,
      ),
    )
    .filter((d): d is string => typeof d === 'string');
  const collects = streamGraph.nodes.some(
    (n) => (n.transformation.sink as { collects?: boolean } | undefined)?.collects === true,
  );
  const client = await ClusterClient.connect(opts.jobmanager);
  try {
    const restore = opts.fromSavepoint
      ? {
          path: resolveLocation(opts.fromSavepoint),
          allowNonRestoredState: opts.allowNonRestoredState ?? false,
        }
      : undefined;
    const { jobId } = await client.submit(
      jobGraph.jobName,
      JSON.stringify(jobGraph),
      bundle,
      JSON.stringify(jobContext),
      restore,
    );
    console.log(`Job '${jobGraph.jobName}' submitted with id ${jobId}`);
    if (opts.detached) return 0;
    const code = await follow(client, jobId, opts.progress ?? defaultProgress(), outputs);
    if (code === 0 && collects) await printCollected(client, jobId);
    return code;
  } finally {
    client.close();
  }
}

/**
 * Records keep their types (core/codec.ts); JSON has no Map, Set or bigint, so they print as an
 * object (a Map with string or number keys) or a list of [key, value] pairs, a list, and a number
 * (a string past 2^53).
 */
function jsonValue(_key: string, v: unknown): unknown {
  if (typeof v === 'bigint') return v >= -(2n ** 53n) && v <= 2n ** 53n ? Number(v) : v.toString();
  if (v instanceof Map) {
    const plain = [...v.keys()].every((k) => typeof k === 'string' || typeof k === 'number');
    return plain ? Object.fromEntries(v) : [...v.entries()];
  }
  if (v instanceof Set) return [...v];
  return v;
}

/** The records of the job's collecting sinks, one JSON line each, on stdout. */
async function printCollected(client: ClusterClient, jobId: string): Promise<void> {
  const { batches, truncated } = await client.collected(jobId);
  let out = '';
  for (const b of batches) {
    for (const r of decodeRecords(b)) {
      out += `${JSON.stringify(r, jsonValue)}\n`;
      if (out.length > 1 << 20) {
        process.stdout.write(out);
        out = '';
      }
    }
  }
  process.stdout.write(out);
  if (truncated) console.error('weir: the collected result was truncated at 64 MiB');
}

/** A storage URI as it is; a local path made absolute here, where the user typed it. */
export function resolveLocation(p: string): string {
  return isStorageUri(p) ? p : path.resolve(p);
}

export function defaultProgress(): (line: string, final: boolean) => void {
  const tty = process.stderr.isTTY;
  let lastPrint = 0;
  return (line, final) => {
    if (tty) {
      process.stderr.write(`\r\x1b[2K${line}${final ? '\n' : ''}`);
    } else if (final || Date.now() - lastPrint >= 2_000) {
      lastPrint = Date.now();
      process.stderr.write(`${line}\n`);
    }
  };
}

/** how long after submitting the job's status is polled every 100 ms (every 500 ms after) */
const FAST_POLL_MS = 3_000;

async function follow(
  client: ClusterClient,
  jobId: string,
  progress: (line: string, final: boolean) => void,
  outputs: string[],
): Promise<number> {
  let prev = { t: Date.now(), in: 0, out: 0 };
  const started = Date.now();
  let unreachableSince = 0;
  for (;;) {
    // short jobs end within seconds: polling faster at first tells the caller sooner
    await new Promise((r) => setTimeout(r, Date.now() - started < FAST_POLL_MS ? 100 : 500));
    let d;
    try {
      d = await client.status(jobId);
      unreachableSince = 0;
    } catch (err) {
      // a JobManager restarting on its job store comes back with the job: keep following for a while
      const code = (err as { code?: number }).code;
      // NOT_FOUND: while it recovers its jobs
      if (code !== status.UNAVAILABLE && code !== status.NOT_FOUND) throw err;
      unreachableSince ||= Date.now();
      if (Date.now() - unreachableSince > 120_000)
        throw new Error(`Lost the JobManager at ${client.address} for 2 min: ${(err as Error).message}`);
      progress(
        `JobManager ${client.address} unreachable for ${Math.round((Date.now() - unreachableSince) / 1000)} s, waiting for it (Ctrl-C leaves the job running)`,
        false,
      );
      continue;
    }
    const now = Date.now();
    const dt = (now - prev.t) / 1000;
    const rin = (Number(d.recordsIn) - prev.in) / dt;
    const rout = (Number(d.recordsOut) - prev.out) / dt;
    prev = { t: now, in: Number(d.recordsIn), out: Number(d.recordsOut) };
    const elapsed = Math.round((now - started) / 1000);
    const terminal = d.status === 'JOB_FINISHED' || d.status === 'JOB_FAILED' || d.status === 'JOB_CANCELED';
    const waiting =
      (d.waitingReason ? `  (${d.waitingReason})` : '') +
      (d.numRestarts > 0 ? `  restarts: ${d.numRestarts}` : '');
    const cp = await client.checkpoints(jobId).catch(() => undefined);
    const latest = cp?.latestCompleted
      ? `  checkpoint #${cp.latestCompleted.id} ${cp.latestCompleted.durationMs} ms ${formatBytes(cp.latestCompleted.stateSizeBytes)}`
      : '';
    progress(
      `[${elapsed}s] ${shortStatus(d.status).padEnd(9)} tasks: ${taskStates(d)}  sources ${formatRate(rin)} (${formatCount(Number(d.recordsIn))})  sinks ${formatRate(rout)} (${formatCount(Number(d.recordsOut))})${latest}${waiting}`,
      terminal,
    );
    if (!terminal) continue;
    if (d.status === 'JOB_FINISHED') {
      console.log(
        `Job ${jobId} FINISHED in ${((Number(d.endTime) - Number(d.startTime)) / 1000).toFixed(1)} s: ${d.recordsIn} records read, ${d.recordsOut} written to sinks`,
      );
      for (const o of outputs) console.log(`Output: ${o}`);
      return 0;
    }
    console.error(describeJob(d));
    return d.status === 'JOB_CANCELED' ? 3 : 2;
  }
}
