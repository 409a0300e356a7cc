// The processes of a LocalCluster get the Node.js flags they need to run (the TypeScript
// loader when the cluster runs from source) and the ones asked for, never the flags of the
// process that started them (a bench's --cpu-prof, a test's heap limit).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { ROOT, tempDir } from '../helpers/cli.js';

const exec = promisify(execFile);

interface Child {
  argv: string[];
  arenas: string | null;
}

/** The command lines and MALLOC_ARENA_MAX of a LocalCluster's JobManager and TaskManager, started by a process run with `--max-old-space-size=123`. */
async function clusterChildren(module: string, env: NodeJS.ProcessEnv = process.env): Promise<Child[]> {
  const { stdout } = await exec(
    process.execPath,
    [
      '--max-old-space-size=123',
      '--import',
      'tsx',
      path.join(ROOT, 'test/helpers/local-cluster-flags-main.ts'),
      module,
      tempDir('weir-flags-'),
    ],
    { cwd: ROOT, timeout: 60_000, env },
  );
  return JSON.parse(stdout.trim().split('\n').pop()!) as Child[];
}

async function clusterCommandLines(module: string): Promise<string[][]> {
  return (await clusterChildren(module)).map((c) => c.argv);
}

describe('LocalCluster child processes', () => {
  test('from source: the tsx loader and the asked-for flags, not the parent’s heap limit', async () => {
    const [jm, tm] = await clusterCommandLines(path.join(ROOT, 'packages/cli/src/index.ts'));
    const entry = path.join(ROOT, 'packages/cli/src/bin/weir.ts');
    assert.equal(jm![1], '--import');
    assert.match(jm![2]!, /\/tsx\/dist\/loader\.mjs$/);
    assert.deepEqual(jm!.slice(3, 5), [entry, 'jobmanager'], jm!.join(' '));
    assert.deepEqual(tm!.slice(3, 6), ['--max-old-space-size=200', entry, 'taskmanager'], tm!.join(' '));
    for (const argv of [jm!, tm!]) assert.ok(!argv.includes('--max-old-space-size=123'), argv.join(' '));
  });

  test('built: no flags for the JobManager, only the asked-for ones for the TaskManager', async () => {
    const [jm, tm] = await clusterCommandLines(path.join(ROOT, 'packages/cli/dist/index.js'));
    const entry = path.join(ROOT, 'packages/cli/dist/bin/weir.js');
    assert.deepEqual(jm!.slice(1, 3), [entry, 'jobmanager'], jm!.join(' '));
    assert.deepEqual(tm!.slice(1, 4), ['--max-old-space-size=200', entry, 'taskmanager'], tm!.join(' '));
  });

  test('TaskManagers get two glibc malloc arenas unless the environment sets MALLOC_ARENA_MAX', async () => {
    const module = path.join(ROOT, 'packages/cli/dist/index.js');
    const unset = { ...process.env };
    delete unset.MALLOC_ARENA_MAX;
    const [jm, tm] = await clusterChildren(module, unset);
    assert.equal(tm!.arenas, '2');
    assert.equal(jm!.arenas, null);
    const [, own] = await clusterChildren(module, { ...unset, MALLOC_ARENA_MAX: '4' });
    assert.equal(own!.arenas, '4');
  });
});
