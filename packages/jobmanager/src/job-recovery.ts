import type { StoredJob } from './job-store.js';
import { RestorePlan } from './restore.js';

/**
 * The newest retained checkpoint; else the savepoint the job was submitted with. There is no
 * fallback to an older checkpoint: sinks may have committed output up to the newest one.
 */
export async function recoveryPlan(stored: StoredJob): Promise<RestorePlan | undefined> {
  const [newest, older] = [...stored.retained].sort((a, b) => b.id - a.id);
  if (newest) {
    try {
      return await RestorePlan.load(newest.path, stored.graph, true);
    } catch (err) {
      throw new Error(
        `its latest checkpoint ${newest.id} (${newest.path}) cannot be read: ${(err as Error).message}. Sinks may already have committed output up to it, so the job is not resumed from an older checkpoint on its own; to resume and accept that replay, submit it again with --from-savepoint ${older ? older.path : 'an older savepoint'}`,
        { cause: err },
      );
    }
  }
  return stored.restorePath
    ? RestorePlan.load(stored.restorePath, stored.graph, stored.allowNonRestoredState)
    : undefined;
}
