export * from './errors.js';
export * from './version.js';
export * from './schemas.js';
export * from './framing.js';
export * from './holder-options.js';
export * from './crash-point.js';
