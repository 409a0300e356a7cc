export * from './state-handles.js';
export * from './checkpoint-stats.js';
export * from './payloads.js';
