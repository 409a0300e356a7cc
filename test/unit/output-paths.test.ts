import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  StoragePathPolicy,
  outputDirectories,
  type JobOutputs,
} from '../../packages/jobmanager/src/storage-paths.js';

const policy = new StoragePathPolicy({
  checkpointStorage: 'file:///data/checkpoints',
  savepointDir: '/data/savepoints',
  restrict: false,
});
const sink = (path: string, operatorId = 'uid-sink') => ({
  operatorId,
  operatorName: 'Sink: FileSink',
  path,
});
const running = (dir: string): JobOutputs[] => [
  { jobId: 'a1', jobName: 'first', outputs: outputDirectories([sink(dir)], '/') },
];

describe('output directories of jobs (FileSink paths)', () => {
  test('relative paths resolve against the job working directory; . and trailing slashes do not make another path', () => {
    const [out] = outputDirectories([sink('out/./results/')], '/home/u/job');
    assert.equal(out!.dir, '/home/u/job/out/results');
    assert.equal(out!.uri, 'file:///home/u/job/out/results');
    assert.deepEqual(
      outputDirectories([sink('relative')], undefined),
      [],
      'unknown working directory: not checked',
    );
  });

  test('a job is refused on a directory another running job writes to, not on a nested or sibling one', () => {
    const outs = outputDirectories([sink('results')], '/srv');
    assert.throws(
      () => policy.checkOutputs('second', outs, running('/srv/results/')),
      /Job 'second' is refused: 'Sink: FileSink' writes to \/srv\/results, where job a1 \('first'\) is writing/,
    );
    policy.checkOutputs('second', outputDirectories([sink('/srv/results/b')], '/'), running('/srv/results'));
    policy.checkOutputs('second', outputDirectories([sink('/srv/results-2')], '/'), running('/srv/results'));
  });

  test('two sinks of one job in one directory, and a directory in the checkpoint storage, are refused', () => {
    assert.throws(
      () => policy.checkOutputs('j', outputDirectories([sink('/o'), sink('/x/../o', 'uid-other')], '/'), []),
      /its sinks 'Sink: FileSink' \(uid-sink\) and 'Sink: FileSink' \(uid-other\) both write to \/o/,
    );
    assert.throws(
      () => policy.checkOutputs('j', outputDirectories([sink('/data/checkpoints/x')], '/'), []),
      /inside the checkpoint storage file:\/\/\/data\/checkpoints/,
    );
    // the job's own checkpoint storage counts too
    assert.throws(
      () => policy.checkOutputs('j', outputDirectories([sink('/mine/cp/out')], '/'), [], 'file:///mine/cp'),
      /inside the checkpoint storage file:\/\/\/mine\/cp/,
    );
    policy.checkOutputs('j', outputDirectories([sink('/data/out')], '/'), [], 's3://bucket/cp');
  });

  test('a savepoint target inside a running job output directory is refused, the default directory included', () => {
    assert.throws(
      () => policy.savepointTarget('/srv/results/sp', running('/srv/results')),
      /Savepoint target '\/srv\/results\/sp' is refused: it is inside \/srv\/results, the output directory of 'Sink: FileSink' of job a1 \('first'\)/,
    );
    assert.throws(
      () => policy.savepointTarget(undefined, running('/data/savepoints')),
      /Savepoint target '.*\/data\/savepoints' is refused: .* or set state.savepoints.dir elsewhere/,
    );
    assert.equal(policy.savepointTarget('/srv/sp', running('/srv/results')), 'file:///srv/sp');
    // a target that contains an output directory does not mix with it: savepoints go into their own subdirectory
    assert.equal(policy.savepointTarget('/srv', running('/srv/results')), 'file:///srv');
  });
});
