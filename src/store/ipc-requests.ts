/** What the requests of one kind come to: the answer a reply gives, or what a failed request gives. Either may throw to reject. */
export interface IpcOutcome<Req, Res, T> {
  answer(reply: Res): T;
  /** No reply within the timeout, or a send that threw. */
  failed(request: Req, err: Error): T;
}

interface Pending<Req, T> {
  request: Req;
  resolve: (value: T) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

/**
 * Requests over a message channel (a worker's IPC to its primary), each answered by the reply
 * that carries its id. A request with no reply within `timeoutMs`, or whose send throws, comes
 * to what `outcome.failed` says. The timer and the outcome are shared, so a request costs its
 * message, its promise and one pending entry.
 */
export class IpcRequests<Req extends { id: number }, Res extends { id: number }, T> {
  private nextId = 0;
  private readonly pending = new Map<number, Pending<Req, T>>();

  constructor(
    private readonly send: (m: Req) => void,
    private readonly timeoutMs: number,
    private readonly timeoutMessage: string,
    private readonly outcome: IpcOutcome<Req, Res, T>,
  ) {}

  /** The id for the next request's message. */
  id(): number {
    return this.nextId++;
  }

  request(m: Req): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const p: Pending<Req, T> = { request: m, resolve, reject, timer: setTimeout(this.expire, this.timeoutMs, m.id) };
      this.pending.set(m.id, p);
      try {
        this.send(m);
      } catch (err) {
        clearTimeout(p.timer);
        this.pending.delete(m.id);
        this.fail(p, err as Error);
      }
    });
  }

  /** Settles the request the reply answers; a reply to none (answered already, or timed out) is dropped. */
  reply(m: Res): void {
    const p = this.pending.get(m.id);
    if (!p) return;
    this.pending.delete(m.id);
    clearTimeout(p.timer);
    try {
      p.resolve(this.outcome.answer(m));
    } catch (err) {
      p.reject(err as Error);
    }
  }

  private readonly expire = (id: number): void => {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    this.fail(p, new Error(this.timeoutMessage));
  };

  private fail(p: Pending<Req, T>, err: Error): void {
    try {
      p.resolve(this.outcome.failed(p.request, err));
    } catch (e) {
      p.reject(e as Error);
    }
  }
}
