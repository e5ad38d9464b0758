import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { Lifecycle } from './lifecycle.js';

const silent = pino({ level: 'silent' });

describe('Lifecycle', () => {
  it('stops roles in the reverse of the order they started, each after the one started after it has finished', async () => {
    const life = new Lifecycle(silent);
    const log: string[] = [];
    for (const name of ['store', 'follower', 'ports']) {
      life.add(name, async () => {
        log.push(`${name} stopping`);
        await new Promise((r) => setTimeout(r, 5));
        log.push(`${name} stopped`);
      });
    }
    await life.stop();
    expect(log).toEqual(['ports stopping', 'ports stopped', 'follower stopping', 'follower stopped', 'store stopping', 'store stopped']);
  });

  it('stops every role once, however often it is asked, and a second call waits for the first', async () => {
    const life = new Lifecycle(silent);
    let stops = 0;
    life.add('slow', () => new Promise<void>((r) => setTimeout(() => { stops++; r(); }, 10)));
    const first = life.stop();
    const second = life.stop();
    await second;
    expect(stops).toBe(1);
    await first;
    await life.stop();
    expect(stops).toBe(1);
  });

  it('logs a role whose stop fails and still stops the roles under it (the store is never left open)', async () => {
    const errors: unknown[] = [];
    const logger = pino({ level: 'error' }, { write: (line: string) => errors.push(JSON.parse(line)) });
    const life = new Lifecycle(logger);
    const stopped: string[] = [];
    life.add('store', () => { stopped.push('store'); });
    life.add('ports', () => { throw new Error('drain failed'); });
    await life.stop();
    expect(stopped).toEqual(['store']);
    expect(errors).toMatchObject([{ role: 'ports', msg: 'stopping a role failed' }]);
  });
});
