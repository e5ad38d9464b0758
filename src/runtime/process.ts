import { availableParallelism } from 'node:os';
import type { Config } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';

/**
 * How often a process confirms it is current (a feed read, a sync beat to workers): often
 * enough that a quiet, healthy node never looks stale against `maxStalenessMs`.
 */
export function freshnessBeatMs(config: Config): number {
  return Math.min(1_000, Math.floor(config.propagation.maxStalenessMs / 4));
}

export function workerCount(config: Config): number {
  return config.gateway.workers === 'auto' ? availableParallelism() : config.gateway.workers;
}

/** Stops on SIGTERM/SIGINT once: `drain` finishes in-flight work, then the process exits 0. */
export function onTermination(logger: Logger, graceMs: number, drain: () => Promise<void>, force: () => void): void {
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'draining');
    const timer = setTimeout(() => {
      logger.warn('drain timed out; closing remaining connections');
      force();
    }, graceMs);
    timer.unref();
    drain()
      .then(() => logger.info('stopped'))
      .catch((err: unknown) => logger.error({ err }, 'shutdown failed'))
      .finally(() => {
        clearTimeout(timer);
        logger.flush(() => process.exit(0));
      });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}
