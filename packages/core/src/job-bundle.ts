import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { installPlanner, type StreamGraph } from '@weir/api/internal';
import { PayloadReader } from './json-payload.js';

/** What a job module sees while it is planned: the submitter's directory and arguments. */
export interface JobContext {
  workingDirectory: string;
  args: string[];
  defaultParallelism?: number;
}

/**
 * The job context a client submits (`job_context_json`), checked field by field; an empty payload
 * is an empty context. The reader decides what a missing field means (a task: its own working
 * directory).
 */
export function parseJobContext(text: string, what: string): Partial<JobContext> {
  const r = new PayloadReader(what);
  const v = r.object(text ? r.parse(text) : {}, '');
  r.optional(v, '', 'workingDirectory', (x, p) => r.string(x, p));
  r.optional(v, '', 'args', (x, p) => r.eachElement(x, p, (a, ap) => r.string(a, ap)));
  r.optional(v, '', 'defaultParallelism', (x, p) => r.integer(x, p, 1));
  return v as Partial<JobContext>;
}

const API_SPECIFIER = /(["'])@weir\/api\1/g;

/**
 * Evaluates a bundled job module in planning mode and returns the graph it hands to
 * `execute()`. The bundle imports `@weir/api` as an external; it is pointed at this
 * runtime's own copy so the module and the runtime share one set of classes.
 */
export async function planJobBundle(
  bundle: string,
  ctx: JobContext,
  cacheDir: string,
  timeoutMs = 60_000,
): Promise<StreamGraph> {
  const apiUrl = import.meta.resolve('@weir/api');
  const source = bundle.replace(API_SPECIFIER, JSON.stringify(apiUrl));
  mkdirSync(cacheDir, { recursive: true });
  const digest = createHash('sha256').update(source).digest('hex').slice(0, 16);
  const file = path.join(cacheDir, `job-${digest}-${process.pid}-${Date.now()}.mjs`);
  writeFileSync(file, source);

  let captured: StreamGraph | undefined;
  let onCaptured: (() => void) | undefined;
  const executed = new Promise<void>((resolve) => (onCaptured = resolve));
  installPlanner({
    workingDirectory: ctx.workingDirectory,
    args: ctx.args,
    ...(ctx.defaultParallelism !== undefined ? { defaultParallelism: ctx.defaultParallelism } : {}),
    onExecute(graph) {
      if (captured) throw new Error('A job may call execute() only once');
      captured = graph;
      onCaptured!();
    },
  });
  let timer: NodeJS.Timeout | undefined;
  try {
    const evaluated = import(pathToFileURL(file).href).then(() => {
      if (!captured) throw new Error('The job module finished without calling env.execute()');
    });
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`The job module did not call env.execute() within ${timeoutMs / 1000} s`)),
        timeoutMs,
      );
    });
    await Promise.race([executed, evaluated, timeout]);
    return captured!;
  } finally {
    clearTimeout(timer);
    installPlanner(undefined);
  }
}
