/** The clock a timer is set on. */
export enum TimeDomain {
  EVENT_TIME = 'EVENT_TIME',
  PROCESSING_TIME = 'PROCESSING_TIME',
}

/**
 * Timers of the current key (Flink's TimerService). A timer is identified by (key,
 * timestamp): registering the same timestamp twice for a key fires once. Event-time timers
 * fire when the watermark reaches their timestamp, processing-time timers when the clock
 * does; both are part of checkpoints.
 */
export interface TimerService {
  currentProcessingTime(): number;
  /** -Infinity before the first watermark */
  currentWatermark(): number;
  registerEventTimeTimer(time: number): void;
  registerProcessingTimeTimer(time: number): void;
  deleteEventTimeTimer(time: number): void;
  deleteProcessingTimeTimer(time: number): void;
}
