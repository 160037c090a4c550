export * from './config.js';
export * from './logger.js';
export * from './nats.js';
export * from './db.js';
export * from './clock.js';
export * from './service-main.js';
export * from './yaml-config.js';
export * from './sleep.js';
