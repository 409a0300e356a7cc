export * from './model.js';
export * from './generator.js';
export * from './nexmark-source.js';
