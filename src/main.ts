import cluster from 'node:cluster';
import type { Config } from './config/schema.js';
import type { Logger } from './observability/logger.js';
import { buildApp } from './runtime/app.js';
import { startPrimary } from './runtime/primary.js';
import { workerCount } from './runtime/process.js';
import { startSingle } from './runtime/single.js';
import { runWorker } from './runtime/worker.js';

/** `keygate serve`: open the store, start the ports, log the ready line, drain on SIGTERM. */
export async function serve(config: Config, logger: Logger): Promise<void> {
  if (cluster.isWorker) return runWorker(config, logger);
  const app = await buildApp(config, logger);
  if (workerCount(config) > 1) return startPrimary(app, workerCount(config));
  return startSingle(app);
}
