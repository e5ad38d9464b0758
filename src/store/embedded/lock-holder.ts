import { promises as fsp } from 'node:fs';

/**
 * Who holds an embedded store's lock: a process id, and where the system tells them apart, the
 * process's start time (clock ticks after boot, `/proc/<pid>/stat` field 22) and the boot id.
 * A pid alone cannot tell the holder from a later process given the same pid (a container
 * restarted, the machine rebooted); the three together can. Lock files that hold only a pid
 * (written by earlier versions, or where `/proc` is absent) are still read.
 */
export interface LockHolder {
  pid: number;
  startTime?: string;
  bootId?: string;
}

const BOOT_ID = '/proc/sys/kernel/random/boot_id';

let bootIdOnce: Promise<string | undefined> | null = null;
let selfOnce: Promise<LockHolder> | null = null;

/** This system's boot id, or undefined where there is none to read. */
function bootId(): Promise<string | undefined> {
  bootIdOnce ??= fsp.readFile(BOOT_ID, 'utf8').then((t) => t.trim() || undefined, () => undefined);
  return bootIdOnce;
}

/** Field 22 of `/proc/<pid>/stat`, or undefined when it cannot be read (no such process, no /proc). */
export async function processStartTime(pid: number | 'self'): Promise<string | undefined> {
  const text = await fsp.readFile(`/proc/${pid}/stat`, 'utf8').catch(() => null);
  if (text === null) return undefined;
  // "pid (comm) state ppid …": comm may hold spaces and parentheses, so count from the last ")".
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const start = fields[22 - 3];
  return start !== undefined && /^\d+$/.test(start) ? start : undefined;
}

/** This process as a lock holder: read once, it does not change. */
export function thisProcess(): Promise<LockHolder> {
  selfOnce ??= Promise.all([processStartTime('self'), bootId()]).then(([startTime, boot]) => describe(process.pid, startTime, boot));
  return selfOnce;
}

/** Another process as a lock holder, as `thisProcess` would describe it if run there. */
export async function describeProcess(pid: number): Promise<LockHolder> {
  const [startTime, boot] = await Promise.all([processStartTime(pid), bootId()]);
  return describe(pid, startTime, boot);
}

function describe(pid: number, startTime: string | undefined, boot: string | undefined): LockHolder {
  const holder: LockHolder = { pid };
  if (startTime !== undefined) holder.startTime = startTime;
  if (boot !== undefined) holder.bootId = boot;
  return holder;
}

export function formatLock(holder: LockHolder): string {
  return JSON.stringify(holder);
}

/**
 * The holder a lock file names: `{"pid":…,"startTime":…,"bootId":…}`, or a bare pid (the
 * older format). Pid 0, no live holder, for anything else: an empty file (its text not yet on
 * disk when the machine lost power) or one someone else wrote.
 */
export function parseLock(text: string): LockHolder {
  const trimmed = text.trim();
  if (/^\d+$/.test(trimmed)) return { pid: Number(trimmed) };
  try {
    const v = JSON.parse(trimmed) as Record<string, unknown>;
    const pid = v.pid;
    if (typeof pid !== 'number' || !Number.isInteger(pid) || pid <= 0) return { pid: 0 };
    return describe(pid, typeof v.startTime === 'string' ? v.startTime : undefined, typeof v.bootId === 'string' ? v.bootId : undefined);
  } catch {
    return { pid: 0 };
  }
}

/**
 * Whether the process a lock names is alive and is still the process that wrote it, and is
 * not this one (a lock naming this pid is left from an earlier life: a restarted container
 * is pid 1 again). The lock is stale when the pid is dead, when the system has rebooted since
 * (another boot id), or when the pid now belongs to a process started at another time.
 */
export async function heldByAnother(holder: LockHolder): Promise<boolean> {
  if (holder.pid <= 0 || holder.pid === process.pid) return false;
  const self = await thisProcess();
  if (holder.bootId !== undefined && self.bootId !== undefined && holder.bootId !== self.bootId) return false;
  if (!processAlive(holder.pid)) return false;
  if (holder.startTime === undefined) return true; // an older lock: the pid is all there is to go by
  const now = await processStartTime(holder.pid);
  // Unreadable although alive a moment ago: it exited meanwhile, or /proc hides it (then trust the pid).
  if (now === undefined) return processAlive(holder.pid);
  return now === holder.startTime;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
