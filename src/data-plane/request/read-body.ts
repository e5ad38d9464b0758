import type { IncomingMessage } from 'node:http';

/**
 * Reads a body of at most `cap` bytes. 'too-large' as soon as it passes the cap (by its
 * Content-Length, or by what arrived: reading stops there); 'timeout' when it has not all
 * arrived within `timeoutMs`.
 */
export function readBody(req: IncomingMessage, cap: number, timeoutMs?: number): Promise<Buffer | 'too-large' | 'timeout'> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > cap) return resolve('too-large');
    const chunks: Buffer[] = [];
    let size = 0;
    let timer: NodeJS.Timeout | undefined;
    const stop = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      clearTimeout(timer);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > cap) {
        stop();
        req.pause();
        resolve('too-large');
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      stop();
      resolve(Buffer.concat(chunks, size));
    };
    const onError = (err: Error): void => {
      stop();
      reject(err);
    };
    if (timeoutMs !== undefined) {
      timer = setTimeout(() => {
        stop();
        req.pause();
        resolve('timeout');
      }, Math.max(0, timeoutMs));
    }
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });
}
