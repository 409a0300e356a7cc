import type { SplitRequester } from '@weir/api';
import type { FromWorker, ToWorker } from '../worker-protocol.js';

/**
 * A source task's split requests to its enumerator on the JobManager: posted to the
 * TaskManager's main thread (which holds the gRPC connection) and answered by request id.
 */
export class SplitRequestChannel implements SplitRequester {
  private nextId = 1;
  private readonly waiting = new Map<
    number,
    { resolve: (a: { splits: unknown[]; noMoreSplits: boolean }) => void; reject: (e: Error) => void }
  >();

  constructor(
    private readonly post: (msg: FromWorker) => void,
    private readonly executionId: string,
    private readonly operatorId: string,
    private readonly subtaskIndex: number,
    private readonly sourceName: string,
  ) {}

  request(
    lastCheckpointId: number,
    wantMore: boolean,
  ): Promise<{ splits: unknown[]; noMoreSplits: boolean }> {
    const requestId = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(requestId, { resolve, reject });
      this.post({
        t: 'splitRequest',
        executionId: this.executionId,
        requestId,
        operatorId: this.operatorId,
        subtaskIndex: this.subtaskIndex,
        lastCheckpointId,
        wantMore,
      });
    });
  }

  onAssignment(msg: Extract<ToWorker, { t: 'splitAssignment' }>): void {
    const w = this.waiting.get(msg.requestId);
    if (!w) return;
    this.waiting.delete(msg.requestId);
    if (msg.error !== undefined) {
      w.reject(
        new Error(`Source '${this.sourceName}' could not get splits from its enumerator: ${msg.error}`),
      );
      return;
    }
    w.resolve({ splits: JSON.parse(msg.splitsJson) as unknown[], noMoreSplits: msg.noMoreSplits });
  }
}
