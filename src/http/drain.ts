import type { Server, ServerResponse } from 'node:http';

/**
 * Shutdown state shared by a server and its handlers. Once draining, responses not yet
 * started answer `Connection: close`, and idle keep-alive connections are closed as soon as
 * they go idle, so the process exits when the last in-flight request is done.
 */
export interface DrainState {
  draining: boolean;
  /** Responses whose headers may not be written yet (tracked only where that is cheap). */
  readonly responses: Set<ServerResponse>;
}

export function drainState(): DrainState {
  return { draining: false, responses: new Set() };
}

const IDLE_SWEEP_MS = 100;

/** Stops accepting and resolves when every connection is closed. */
export function drainServer(server: Server, state: DrainState): Promise<void> {
  state.draining = true;
  for (const res of state.responses) if (!res.headersSent) res.shouldKeepAlive = false;
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    const sweep = setInterval(() => server.closeIdleConnections(), IDLE_SWEEP_MS);
    server.close(() => {
      clearInterval(sweep);
      resolve();
    });
    server.closeIdleConnections();
  });
}
