/**
 * Event time in the API: watermarks, timestamps, timers, side outputs, windows, two-input
 * and broadcast functions. One module so the package index can re-export it whole.
 */
export * from './watermark.js';
export * from './output-tag.js';
export * from './timer-service.js';
export * from './contexts.js';
export * from './keyed-state-store.js';
export * from './two-input-functions.js';
export * from '../windowing/windows.js';
export * from '../windowing/triggers.js';
export * from '../windowing/assigners.js';
export * from '../windowing/evictors.js';
export * from '../windowing/process-window-function.js';
