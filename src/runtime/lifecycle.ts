import type { Logger } from '../observability/logger.js';

/** A part of a process that holds something until it is stopped: a store, a listener, a timer. */
export interface Role {
  readonly name: string;
  /** Releases what the role holds; the roles started after it are already stopped. */
  stop(): void | Promise<void>;
}

/**
 * One process's roles in the order they started, stopped in the reverse order: whatever a
 * role depends on (the store under the feed follower, the follower under the gateway) is
 * still there while it stops. A role whose stop fails is logged and the rest still stop, so
 * one fault never leaves the store open or usage unflushed.
 */
export class Lifecycle {
  private readonly roles: Role[] = [];
  private stopping: Promise<void> | null = null;

  constructor(private readonly logger: Logger) {}

  /** Records a role that has started; it stops before every role recorded earlier. */
  add(name: string, stop: () => void | Promise<void>): void {
    this.roles.push({ name, stop });
  }

  /** Stops every role once, last started first; a second call waits for the first. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      for (const role of this.roles.splice(0).reverse()) {
        try {
          await role.stop();
        } catch (err) {
          this.logger.error({ err, role: role.name }, 'stopping a role failed');
        }
      }
    })();
    return this.stopping;
  }
}
