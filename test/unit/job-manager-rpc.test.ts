import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import {
  createClient,
  defaultSettings,
  dispatcherProto,
  fileStorageUri,
  unary,
  type DispatcherClient,
} from '../../packages/core/src/index.js';
import { JobManager } from '../../packages/jobmanager/src/job-manager.js';
import { oneVertexJobGraphJson, tempDir } from '../helpers/cli.js';

/** The status code and details a call ends with ('0 ok' when it succeeds). */
function outcome(p: Promise<unknown>): Promise<string> {
  return p.then(
    () => '0 ok',
    (e: grpc.ServiceError) => `${grpc.status[e.code]} ${e.details}`,
  );
}

describe('JobManager gRPC handlers answer with grpc.status codes', () => {
  const work = tempDir('weir-jm-rpc-');
  // a job store under a regular file: every write to it fails
  writeFileSync(path.join(work, 'not-a-dir'), '');
  const jm = new JobManager({
    host: '127.0.0.1',
    port: 0,
    settings: defaultSettings(),
    checkpointStorage: fileStorageUri(path.join(work, 'checkpoints')),
    savepointDir: path.join(work, 'savepoints'),
    jobStore: fileStorageUri(path.join(work, 'not-a-dir', 'ha')),
  });
  let client: DispatcherClient;

  before(async () => {
    const port = await jm.start();
    client = createClient(dispatcherProto.Dispatcher, `127.0.0.1:${port}`);
  });
  after(async () => {
    client.close();
    await jm.stop();
  });

  test('unknown job: NOT_FOUND; a refused savepoint target: INVALID_ARGUMENT', async () => {
    const jobId = 'a'.repeat(32);
    assert.equal(
      await outcome(unary(client.GetJobStatus.bind(client), { jobId }, 5_000)),
      `NOT_FOUND No job with id '${jobId}'`,
    );
    assert.match(
      await outcome(unary(client.TriggerSavepoint.bind(client), { jobId, target: 'a/../../b' }, 5_000)),
      /^INVALID_ARGUMENT Savepoint target 'a\/\.\.\/\.\.\/b' is refused: '\.\.' segments/,
    );
  });

  test('a job that cannot be stored for recovery: UNAVAILABLE, naming the store', async () => {
    const submit = {
      jobName: 'x',
      jobGraphJson: oneVertexJobGraphJson(),
      bundle: Buffer.from('x'),
      jobContextJson: '{}',
      restorePath: '',
      allowNonRestoredState: false,
    };
    assert.match(
      await outcome(unary(client.SubmitJob.bind(client), submit, 5_000)),
      /^UNAVAILABLE Cannot store the job for recovery in file:\/\/\/.*\/not-a-dir\/ha: Cannot write checkpoint file .*ENOTDIR/,
    );
    assert.match(
      await outcome(unary(client.SubmitJob.bind(client), { ...submit, jobGraphJson: '{' }, 5_000)),
      /^INVALID_ARGUMENT Invalid job graph: /,
    );
  });
});
