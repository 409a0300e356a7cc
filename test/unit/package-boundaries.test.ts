import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';

/**
 * A program that only submits jobs imports `@weir/client`; it must not load the JobManager,
 * the TaskManager or the native RocksDB binding. Each probe is a fresh Node process that
 * imports one package (from its built dist/, as a user's program would) with a module
 * resolve hook logging every module URL, then lists the shared libraries the process has
 * loaded (process.report): a static import of either server package, or of the binding,
 * anywhere under the client shows up in one or the other.
 */

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const run = promisify(execFile);

// runs in the loader thread; appends each resolved URL to the log file
const HOOKS = `
import { appendFileSync } from 'node:fs';
let log;
export function initialize(data) { log = data.log; }
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  appendFileSync(log, r.url + '\\n');
  return r;
}`;

const PROBE = `
import { register } from 'node:module';
const [target, log] = process.argv.slice(1);
register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(HOOKS)}), import.meta.url, { data: { log } });
await import(target);
const shared = process.report.getReport().sharedObjects;
process.stdout.write(JSON.stringify(shared));
process.exit(0);`;

interface Loaded {
  modules: string[];
  sharedObjects: string[];
}

async function loadedBy(specifier: string): Promise<Loaded> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'weir-boundary-'));
  const log = path.join(dir, 'modules.log');
  try {
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', PROBE, specifier, log], {
      cwd: ROOT,
      env: { ...process.env, NODE_OPTIONS: '' },
    });
    return {
      modules: readFileSync(log, 'utf8').split('\n').filter(Boolean),
      sharedObjects: JSON.parse(stdout) as string[],
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const fromPackage = (modules: string[], pkg: string): string[] =>
  modules.filter((u) => u.includes(`/packages/${pkg}/`));
const rocksdb = (l: Loaded): string[] => [
  ...l.modules.filter((u) => /rocksdb/i.test(u)),
  ...l.sharedObjects.filter((s) => /rocksdb/i.test(s)),
];

describe('package boundaries', () => {
  test('importing @weir/client loads neither server nor the RocksDB binding', async () => {
    const l = await loadedBy('@weir/client');
    assert.ok(
      fromPackage(l.modules, 'client').some((u) => u.endsWith('/packages/client/dist/index.js')),
      `the probe did not see @weir/client itself load: ${l.modules.join(', ')}`,
    );
    assert.deepEqual(fromPackage(l.modules, 'jobmanager'), [], 'the client loads the JobManager');
    assert.deepEqual(fromPackage(l.modules, 'taskmanager'), [], 'the client loads the TaskManager');
    assert.deepEqual(fromPackage(l.modules, 'cli'), [], 'the client loads the CLI');
    assert.deepEqual(rocksdb(l), [], 'the client loads the RocksDB binding');
  });

  test('@weir/client depends on @weir/core only, so installing it does not install the servers', () => {
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'packages/client/package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
    };
    const weir = Object.keys(pkg.dependencies).filter((d) => d.startsWith('@weir/'));
    assert.deepEqual(weir, ['@weir/core']);
    assert.equal(pkg.dependencies['@nxtedition/rocksdb'], undefined);
  });

  test('the probe sees them where they are: the CLI commands load both servers', async () => {
    const l = await loadedBy(pathToFileURL(path.join(ROOT, 'packages/cli/dist/commands/index.js')).href);
    assert.notDeepEqual(fromPackage(l.modules, 'jobmanager'), []);
    assert.notDeepEqual(fromPackage(l.modules, 'taskmanager'), []);
  });

  test('the probe sees the native RocksDB binding once it is loaded', async () => {
    // the RocksDB backend loads the binding on first use, in a TaskManager's slot worker; here it is imported directly
    const l = await loadedBy('@nxtedition/rocksdb');
    assert.ok(
      l.sharedObjects.some((s) => /rocksdb/i.test(s)),
      `no RocksDB shared object among ${l.sharedObjects.length} loaded`,
    );
  });

  test('job code sees only the public API: @weir/api does not export the planner or the stream graph', async () => {
    const api = (await import('@weir/api')) as Record<string, unknown>;
    const internal = (await import('@weir/api/internal')) as Record<string, unknown>;
    for (const name of [
      'installPlanner',
      'currentPlanner',
      'buildStreamGraph',
      'DEFAULT_CHECKPOINT_SETTINGS',
    ])
      assert.equal(api[name], undefined, `@weir/api exports ${name}`);
    assert.equal(typeof internal.installPlanner, 'function');
    assert.equal(typeof api.StreamExecutionEnvironment, 'function');
  });
});
