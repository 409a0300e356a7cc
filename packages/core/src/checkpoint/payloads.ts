import { PayloadReader, fieldPath } from '../json-payload.js';
import type { CheckpointStatsSnapshot } from './checkpoint-stats.js';
import type { CheckpointMetadata, TaskRestoreState, TaskStateSnapshot } from './state-handles.js';

/*
 * One validating parser per checkpoint payload. Each checks the whole shape and throws a
 * PayloadError naming the payload and the field; the JobManager turns one for `_metadata` into a
 * StorageError CORRUPT (the checkpoint is damaged), a task into a failure of its restore.
 */

const KEY_GROUP = /^(0|[1-9][0-9]*)$/;

function checkKeyGroups(
  r: PayloadReader,
  v: unknown,
  path: string,
  check: (v: unknown, path: string) => unknown,
): void {
  const o = r.object(v, path);
  for (const [k, x] of Object.entries(o)) {
    if (!KEY_GROUP.test(k)) r.fail(fieldPath(path, k), 'keyed by a key group number');
    check(x, fieldPath(path, k));
  }
}

function checkStrings(r: PayloadReader, v: unknown, path: string): void {
  r.eachValue(v, path, (x, p) => r.string(x, p));
}

function checkKeyedHandle(r: PayloadReader, v: unknown, path: string): void {
  const h = r.object(v, path);
  const format = h.format;
  const checkSharedFile = (o: Record<string, unknown>, p: string): void => {
    r.string(o.path, fieldPath(p, 'path'));
    r.integer(o.size, fieldPath(p, 'size'));
    r.string(o.sha256, fieldPath(p, 'sha256'));
    r.integer(o.checkpointId, fieldPath(p, 'checkpointId'), 1);
  };
  if (format === 'rocksdb-native') {
    r.eachElement(h.states, fieldPath(path, 'states'), (st, p) => {
      const a = r.array(st, p);
      if (a.length !== 2) r.fail(p, '[name, kind] (2 elements)');
      r.string(a[0], fieldPath(p, 0));
      r.string(a[1], fieldPath(p, 1));
    });
    const kgPath = fieldPath(path, 'keyGroups');
    const kg = r.array(h.keyGroups, kgPath);
    if (kg.length !== 2) r.fail(kgPath, '[first, last] (2 elements)');
    const first = r.integer(kg[0], fieldPath(kgPath, 0));
    if (r.integer(kg[1], fieldPath(kgPath, 1)) < first) r.fail(kgPath, '[first, last] with first <= last');
    r.string(h.sequence, fieldPath(path, 'sequence'));
    r.eachElement(h.files, fieldPath(path, 'files'), (f, p) => {
      const o = r.object(f, p);
      checkSharedFile(o, p);
      const name = r.string(o.name, fieldPath(p, 'name'));
      // the name becomes a path in the database's directory
      if (!/^[A-Za-z0-9._-]+$/.test(name) || name === '.' || name === '..')
        r.fail(fieldPath(p, 'name'), 'a file name of a RocksDB database');
    });
    r.number(h.checkpointedSize, fieldPath(path, 'checkpointedSize'));
    r.number(h.fullSize, fieldPath(path, 'fullSize'));
  } else if (format === 'incremental') {
    checkStrings(r, h.kinds, fieldPath(path, 'kinds'));
    const files = r.eachElement(h.files, fieldPath(path, 'files'), (f, p) =>
      checkSharedFile(r.object(f, p), p),
    );
    checkKeyGroups(r, h.groups, fieldPath(path, 'groups'), (chain, p) =>
      r.eachElement(chain, p, (link, lp) => {
        const l = r.array(link, lp);
        if (l.length !== 4) r.fail(lp, '[file, offset, length, full] (4 elements)');
        const fi = r.integer(l[0], fieldPath(lp, 0));
        if (fi >= files.length) r.fail(fieldPath(lp, 0), `an index into files (${files.length} listed)`);
        r.integer(l[1], fieldPath(lp, 1));
        r.integer(l[2], fieldPath(lp, 2));
        r.oneOf(l[3], fieldPath(lp, 3), [0, 1] as const);
      }),
    );
    r.number(h.checkpointedSize, fieldPath(path, 'checkpointedSize'));
    r.number(h.fullSize, fieldPath(path, 'fullSize'));
  } else if (format === undefined) {
    r.string(h.path, fieldPath(path, 'path'));
    r.integer(h.size, fieldPath(path, 'size'));
    r.string(h.sha256, fieldPath(path, 'sha256'));
    checkKeyGroups(r, h.index, fieldPath(path, 'index'), (range, p) => {
      const a = r.array(range, p);
      if (a.length < 2 || a.length % 2 !== 0)
        r.fail(p, '[offset, length] or several such pairs (an even number of elements)');
      for (let i = 0; i < a.length; i++) r.integer(a[i], fieldPath(p, i));
    });
    checkStrings(r, h.kinds, fieldPath(path, 'kinds'));
  } else {
    r.fail(fieldPath(path, 'format'), '"incremental", "rocksdb-native" or absent (the full format)');
  }
}

function checkLists(r: PayloadReader, v: unknown, path: string): void {
  r.eachValue(v, path, (l, p) => {
    const o = r.object(l, p);
    r.oneOf(o.mode, fieldPath(p, 'mode'), ['split', 'union'] as const);
    r.array(o.items, fieldPath(p, 'items'));
  });
}

function checkChannelStateHandle(r: PayloadReader, v: unknown, path: string): void {
  const h = r.object(v, path);
  r.string(h.path, fieldPath(path, 'path'));
  r.integer(h.size, fieldPath(path, 'size'));
  r.string(h.sha256, fieldPath(path, 'sha256'));
  r.integer(h.inputBytes, fieldPath(path, 'inputBytes'));
  r.integer(h.outputBytes, fieldPath(path, 'outputBytes'));
}

function checkOperatorSubtaskState(r: PayloadReader, v: unknown, path: string): void {
  const s = r.object(v, path);
  r.optional(s, path, 'operatorState', (x, p) => r.array(x, p));
  r.optional(s, path, 'lists', (x, p) => checkLists(r, x, p));
  r.optional(s, path, 'keyed', (x, p) => checkKeyedHandle(r, x, p));
  r.optional(s, path, 'channelState', (x, p) => checkChannelStateHandle(r, x, p));
}

function checkTaskStateSnapshot(r: PayloadReader, v: unknown, path: string): void {
  r.eachValue(v, path, (s, p) => checkOperatorSubtaskState(r, s, p));
}

/**
 * A checkpoint's or savepoint's `_metadata`. `what` names it in errors, e.g.
 * "checkpoint 7 _metadata" or the file's URI.
 */
export function parseCheckpointMetadata(text: string, what: string): CheckpointMetadata {
  const r = new PayloadReader(what);
  const md = r.object(r.parse(text), '');
  r.oneOf(md.version, 'version', [1] as const);
  r.string(md.jobId, 'jobId');
  r.integer(md.checkpointId, 'checkpointId');
  r.integer(md.maxParallelism, 'maxParallelism', 1);
  r.optional(md, '', 'savepoint', (x, p) => r.boolean(x, p));
  r.optional(md, '', 'timestamp', (x, p) => r.number(x, p));
  r.eachValue(md.operators, 'operators', (op, p) => {
    const o = r.object(op, p);
    r.integer(o.parallelism, fieldPath(p, 'parallelism'), 1);
    checkKeyGroups(r, o.subtasks, fieldPath(p, 'subtasks'), (s, sp) => checkOperatorSubtaskState(r, s, sp));
  });
  return md as unknown as CheckpointMetadata;
}

/** The state a task acknowledges a checkpoint with (`AcknowledgeCheckpoint.state_json`); empty means none. */
export function parseTaskStateSnapshot(text: string, what: string): TaskStateSnapshot {
  const r = new PayloadReader(what);
  const v = text ? r.parse(text) : {};
  checkTaskStateSnapshot(r, v, '');
  return v as TaskStateSnapshot;
}

/** What a restored task receives (`TaskDeploymentDescriptor.restore_json`); empty means no restore. */
export function parseTaskRestoreState(text: string, what: string): TaskRestoreState | undefined {
  if (!text) return undefined;
  const r = new PayloadReader(what);
  const v = r.object(r.parse(text), '');
  r.string(v.storage, 'storage');
  r.integer(v.checkpointId, 'checkpointId');
  r.eachValue(v.operators, 'operators', (op, p) => {
    const o = r.object(op, p);
    r.optional(o, p, 'splits', (x, sp) => r.array(x, sp));
    r.optional(o, p, 'lists', (x, lp) => checkLists(r, x, lp));
    r.optional(o, p, 'keyed', (x, kp) => r.eachElement(x, kp, (h, hp) => checkKeyedHandle(r, h, hp)));
    r.optional(o, p, 'channelState', (x, cp) => checkChannelStateHandle(r, x, cp));
  });
  return v as unknown as TaskRestoreState;
}

function checkCheckpointStats(r: PayloadReader, v: unknown, path: string): void {
  const s = r.object(v, path);
  const f = (k: string): string => fieldPath(path, k);
  r.integer(s.id, f('id'));
  r.boolean(s.savepoint, f('savepoint'));
  r.oneOf(s.status, f('status'), ['IN_PROGRESS', 'COMPLETED', 'FAILED'] as const);
  r.number(s.triggerTime, f('triggerTime'));
  for (const k of ['endTime', 'durationMs']) r.optional(s, path, k, (x, p) => r.number(x, p));
  r.optional(s, path, 'failureReason', (x, p) => r.string(x, p));
  r.optional(s, path, 'persistedDataBytes', (x, p) => r.number(x, p));
  r.optional(s, path, 'unaligned', (x, p) => r.boolean(x, p));
  for (const k of ['stateSizeBytes', 'maxSyncDurationMs', 'maxAsyncDurationMs', 'maxAlignmentDurationMs'])
    r.number(s[k], f(k));
  r.string(s.path, f('path'));
  r.eachElement(s.subtasks, f('subtasks'), (t, p) => {
    const o = r.object(t, p);
    r.string(o.executionId, fieldPath(p, 'executionId'));
    r.string(o.vertex, fieldPath(p, 'vertex'));
    r.integer(o.subtask, fieldPath(p, 'subtask'));
    r.boolean(o.acknowledged, fieldPath(p, 'acknowledged'));
    for (const k of [
      'ackTime',
      'syncDurationMs',
      'asyncDurationMs',
      'alignmentDurationMs',
      'stateSizeBytes',
      'persistedDataBytes',
    ])
      r.optional(o, p, k, (x, xp) => r.number(x, xp));
    r.optional(o, p, 'unaligned', (x, xp) => r.boolean(x, xp));
  });
}

/** A job's checkpoint statistics (`GetCheckpointsResponse.stats_json`). */
export function parseCheckpointStatsSnapshot(text: string, what: string): CheckpointStatsSnapshot {
  const r = new PayloadReader(what);
  const v = r.object(r.parse(text), '');
  r.optional(v, '', 'disabled', (x, p) => r.boolean(x, p));
  r.optional(v, '', 'counts', (x, p) => {
    const c = r.object(x, p);
    for (const k of ['completed', 'failed', 'inProgress']) r.integer(c[k], fieldPath(p, k));
  });
  r.optional(v, '', 'latestCompleted', (x, p) => checkCheckpointStats(r, x, p));
  r.optional(v, '', 'history', (x, p) => r.eachElement(x, p, (s, sp) => checkCheckpointStats(r, s, sp)));
  r.optional(v, '', 'settings', (x, p) => r.object(x, p));
  return v as CheckpointStatsSnapshot;
}
