import { randomUUID } from 'node:crypto';
import {
  closeSync,
  fsyncSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  readlinkSync,
  rmdirSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';

/**
 * The exclusive lock on DATA_DIR that the app and every CLI command hold while they use the embedded
 * database (PGlite is one process's database: a second process opening the same files corrupts them).
 *
 * The lock is the file `DATA_DIR/ledger.lock`, created atomically (written to a private file first,
 * then hard-linked into place, which fails when the lock exists), holding who holds it. It is released
 * when the holder stops (explicitly, or on process exit); a holder that was killed leaves the file
 * behind, and the next process decides whether that holder is gone:
 *
 *  - On the same machine, in the same pid namespace (same hostname, boot id and pid namespace): the
 *    holder is alive only if a process with its pid exists *and* started at the recorded time (the
 *    start time in clock ticks since boot, from /proc). A pid reused by another process, or the same
 *    low pid in a restarted container, has another start time: the lock is stale.
 *  - Anywhere else (another host over a network filesystem, another container sharing the volume, a
 *    restarted container, a system without /proc): the pid means nothing here, so the holder proves
 *    it is alive by touching the lock file every HEARTBEAT_MS from a worker thread (so a long
 *    synchronous query on the main thread cannot stop it); a lock not touched for STALE_AFTER_MS is
 *    stale. A holder that finds its lock file replaced reports the lock lost.
 *
 * Taking over a stale lock is serialized by a second atomic step (mkdir of `ledger.lock.takeover`), so
 * two processes that both found the same stale lock cannot both win: the winner re-reads the lock under
 * that guard and replaces it only if it still is the stale one.
 */

export const LOCK_FILE = 'ledger.lock';
const TAKEOVER_DIR = `${LOCK_FILE}.takeover`;
export const HEARTBEAT_MS = 5_000;
export const STALE_AFTER_MS = 30_000;
/** A takeover guard left by a process killed in the middle of its takeover (a few ms of work). */
const TAKEOVER_STALE_MS = 10_000;
const ACQUIRE_ATTEMPTS = 20;

/** Who holds the lock, as written into the lock file. */
export interface LockHolder {
  /** `app` for the server; `cli` for an operator command. */
  role: 'app' | 'cli';
  /** What the holder runs, for the refusal message (`projections rebuild`). */
  command: string;
  pid: number;
  /** Start time of the process in clock ticks since boot (/proc/PID/stat field 22); null without /proc. */
  processStart: string | null;
  hostname: string;
  /** /proc/sys/kernel/random/boot_id: a reboot makes every recorded pid meaningless. */
  bootId: string | null;
  /** The pid namespace (`pid:[4026531836]`): containers have their own pids. */
  pidNamespace: string | null;
  startedAt: string;
  /** Unique per acquisition: tells our lock file from one that replaced it. */
  token: string;
}

export class DataDirBusyError extends Error {
  constructor(
    readonly dataDir: string,
    readonly holder: LockHolder,
    message: string,
  ) {
    super(message);
    this.name = 'DataDirBusyError';
  }
}

export interface DataDirLock {
  readonly path: string;
  readonly holder: LockHolder;
  /** Removes the lock file if it still is ours; idempotent. */
  release(): void;
}

export interface AcquireOptions {
  role: LockHolder['role'];
  command: string;
  /** Called (once) when the lock file was replaced or removed by someone else while we held it. */
  onLost?: (reason: string) => void;
  /** For tests: the clock and the identity of "this process". */
  now?: () => number;
  self?: Pick<LockHolder, 'pid' | 'processStart' | 'hostname' | 'bootId' | 'pidNamespace'>;
  /** For tests: how another process's liveness is probed. */
  probe?: (holder: LockHolder) => 'alive' | 'gone' | 'unknown';
  /** Heartbeat from a worker thread (default true); tests of staleness turn it off. */
  heartbeat?: boolean;
  /** For tests: the heartbeat's period (default HEARTBEAT_MS). */
  heartbeatMs?: number;
}

/**
 * Takes the lock on `dataDir` (created if missing) or throws DataDirBusyError naming the holder. The
 * lock is released by `release()` and, as a last resort, when this process exits.
 */
export function acquireDataDirLock(dataDir: string, options: AcquireOptions): DataDirLock {
  mkdirSync(dataDir, { recursive: true });
  const lockPath = path.join(dataDir, LOCK_FILE);
  const now = options.now ?? Date.now;
  const self = options.self ?? currentProcess();
  const holder: LockHolder = {
    role: options.role,
    command: options.command,
    ...self,
    startedAt: new Date(now()).toISOString(),
    token: randomUUID(),
  };
  const probe = options.probe ?? ((h: LockHolder) => probeHolder(h, self));

  for (let attempt = 1; ; attempt++) {
    if (createExclusive(lockPath, `${JSON.stringify(holder, null, 2)}\n`)) break;
    const existing = readLock(lockPath);
    if (existing === 'missing') continue; // released between our attempt and the read
    const verdict = existing === 'unreadable' ? 'unknown' : probe(existing);
    const ageMs = lockAgeMs(lockPath, now);
    const stale = verdict === 'gone' || (verdict === 'unknown' && ageMs !== null && ageMs > STALE_AFTER_MS);
    if (!stale) {
      if (existing === 'unreadable') {
        // Only a writer that crashed mid-write leaves that (we never write in place); give it a moment.
        if (attempt < ACQUIRE_ATTEMPTS) {
          sleepSync(50);
          continue;
        }
        throw new Error(
          `${lockPath} is not a lock file this program wrote; remove it if nothing uses ${dataDir}`,
        );
      }
      throw new DataDirBusyError(dataDir, existing, busyMessage(dataDir, existing, verdict, ageMs));
    }
    if (attempt >= ACQUIRE_ATTEMPTS) {
      throw new Error(`could not take over the stale lock ${lockPath} after ${attempt} attempts`);
    }
    takeOver(lockPath, existing === 'unreadable' ? null : existing.token, now);
  }

  let released = false;
  let lost = false;
  const onHeartbeatMessage = (message: unknown) => {
    if (lost || released) return;
    lost = true;
    options.onLost?.(String(message));
  };
  const heartbeat =
    (options.heartbeat ?? true)
      ? startHeartbeat(lockPath, holder.token, options.heartbeatMs ?? HEARTBEAT_MS, onHeartbeatMessage)
      : undefined;
  const release = () => {
    if (released) return;
    released = true;
    process.removeListener('exit', release);
    void heartbeat?.terminate();
    const current = readLock(lockPath);
    if (current !== 'missing' && current !== 'unreadable' && current.token === holder.token) {
      try {
        unlinkSync(lockPath);
      } catch {
        // Already gone: nothing to release.
      }
    }
  };
  process.on('exit', release);
  return { path: lockPath, holder, release };
}

/** One line naming the holder and what to do, as the app and the CLI print it. */
export function busyMessage(
  dataDir: string,
  holder: LockHolder,
  verdict: 'alive' | 'gone' | 'unknown',
  ageMs: number | null,
): string {
  const who = holder.role === 'app' ? 'the app' : `\`npm run cli -- ${holder.command}\``;
  const where =
    verdict === 'unknown'
      ? ` on ${holder.hostname}${ageMs !== null ? `, alive ${Math.round(ageMs / 1000)} s ago` : ''}`
      : '';
  const advice = holder.role === 'app' ? 'stop it, or use the HTTP API' : 'wait for it to finish, or stop it';
  return `${who} (pid ${holder.pid}${where}) is using ${displayPath(dataDir)}: ${advice}`;
}

/** `./data` for a directory under the working directory, the absolute path otherwise. */
export function displayPath(dir: string, cwd = process.cwd()): string {
  const relative = path.relative(cwd, dir);
  if (relative === '') return '.';
  if (relative.startsWith('..') || path.isAbsolute(relative)) return dir;
  return `./${relative}`;
}

/** Whether the recorded holder still runs, as far as this process can tell. */
export function probeHolder(
  holder: LockHolder,
  self: Pick<LockHolder, 'hostname' | 'bootId' | 'pidNamespace'>,
): 'alive' | 'gone' | 'unknown' {
  const sameMachine =
    holder.hostname === self.hostname &&
    holder.bootId !== null &&
    holder.bootId === self.bootId &&
    holder.pidNamespace !== null &&
    holder.pidNamespace === self.pidNamespace;
  if (!sameMachine) {
    // Same hostname and namespace ids but another boot: every process of that boot is gone.
    if (holder.hostname === self.hostname && holder.bootId !== null && self.bootId !== null) {
      if (holder.bootId !== self.bootId) return 'gone';
    }
    // No /proc on either side (not Linux): no containers either, so a missing pid is conclusive.
    const noProc = holder.bootId === null && self.bootId === null && holder.pidNamespace === null;
    if (holder.hostname === self.hostname && noProc && !pidExists(holder.pid)) return 'gone';
    return 'unknown';
  }
  if (!pidExists(holder.pid)) return 'gone';
  const start = processStartOf(holder.pid);
  if (start === null || holder.processStart === null) return 'unknown';
  return start === holder.processStart ? 'alive' : 'gone';
}

/** The identity this process records in a lock file. */
export function currentProcess(): Pick<
  LockHolder,
  'pid' | 'processStart' | 'hostname' | 'bootId' | 'pidNamespace'
> {
  return {
    pid: process.pid,
    processStart: processStartOf(process.pid),
    hostname: hostname(),
    bootId: readTrimmed('/proc/sys/kernel/random/boot_id'),
    pidNamespace: readLinkOrNull('/proc/self/ns/pid'),
  };
}

function pidExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Field 22 of /proc/PID/stat (start time in clock ticks after boot); the name in field 2 may hold spaces. */
export function processStartOf(pid: number): string | null {
  const stat = readTrimmed(`/proc/${pid}/stat`);
  if (stat === null) return null;
  const afterName = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // afterName[0] is field 3 (state), so field 22 is index 19.
  const start = afterName[19];
  return start !== undefined && /^\d+$/.test(start) ? start : null;
}

function readTrimmed(file: string): string | null {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    return null;
  }
}

function readLinkOrNull(file: string): string | null {
  try {
    return readlinkSync(file);
  } catch {
    return null;
  }
}

type ReadResult = LockHolder | 'missing' | 'unreadable';

function readLock(lockPath: string): ReadResult {
  let text: string;
  try {
    text = readFileSync(lockPath, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'missing';
    throw error;
  }
  try {
    const value = JSON.parse(text) as Partial<LockHolder>;
    if (
      typeof value.pid === 'number' &&
      typeof value.token === 'string' &&
      typeof value.hostname === 'string' &&
      (value.role === 'app' || value.role === 'cli')
    ) {
      return {
        role: value.role,
        command: typeof value.command === 'string' ? value.command : '?',
        pid: value.pid,
        processStart: typeof value.processStart === 'string' ? value.processStart : null,
        hostname: value.hostname,
        bootId: typeof value.bootId === 'string' ? value.bootId : null,
        pidNamespace: typeof value.pidNamespace === 'string' ? value.pidNamespace : null,
        startedAt: typeof value.startedAt === 'string' ? value.startedAt : '?',
        token: value.token,
      };
    }
  } catch {
    // Fall through.
  }
  return 'unreadable';
}

function lockAgeMs(lockPath: string, now: () => number): number | null {
  try {
    return Math.max(0, now() - statSync(lockPath).mtimeMs);
  } catch {
    return null;
  }
}

/**
 * Writes `content` to a private file and hard-links it to `target`: the lock appears complete or not
 * at all. Filesystems without hard links fall back to O_EXCL creation. False when `target` exists.
 */
function createExclusive(target: string, content: string): boolean {
  const temporary = `${target}.${process.pid}.${randomUUID()}.tmp`;
  writeDurably(temporary, content, 'wx');
  try {
    linkSync(temporary, target);
    return true;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') throw error;
    try {
      writeDurably(target, content, 'wx');
      return true;
    } catch (fallbackError) {
      if ((fallbackError as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw fallbackError;
    }
  } finally {
    try {
      unlinkSync(temporary);
    } catch {
      // Nothing to clean.
    }
  }
}

function writeDurably(file: string, content: string, flag: 'wx'): void {
  const fd = openSync(file, flag, 0o644);
  try {
    writeSync(fd, content);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Removes the stale lock whose token is `staleToken` (null: unreadable), under the takeover guard. */
function takeOver(lockPath: string, staleToken: string | null, now: () => number): void {
  const guard = path.join(path.dirname(lockPath), TAKEOVER_DIR);
  try {
    mkdirSync(guard);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    // Someone else is taking over; if they died doing it, clear their guard.
    const age = (() => {
      try {
        return now() - statSync(guard).mtimeMs;
      } catch {
        return 0;
      }
    })();
    if (age > TAKEOVER_STALE_MS) {
      try {
        rmdirSync(guard);
      } catch {
        // Raced with another cleaner.
      }
    } else {
      sleepSync(20);
    }
    return;
  }
  try {
    const current = readLock(lockPath);
    const stillStale =
      current === 'unreadable' ? staleToken === null : current !== 'missing' && current.token === staleToken;
    if (stillStale) unlinkSync(lockPath);
  } finally {
    rmdirSync(guard);
  }
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * Touches the lock file every HEARTBEAT_MS from a worker thread (its own event loop), and reports (one
 * message) when the file no longer holds our token. The worker does not keep the process alive.
 */
function startHeartbeat(
  lockPath: string,
  token: string,
  intervalMs: number,
  onMessage: (message: unknown) => void,
): Worker {
  const worker = new Worker(
    `const { workerData, parentPort } = require('node:worker_threads');
     const fs = require('node:fs');
     const beat = () => {
       let text;
       try { text = fs.readFileSync(workerData.lockPath, 'utf8'); }
       catch (e) { parentPort.postMessage('the lock file ' + workerData.lockPath + ' was removed'); return; }
       if (!text.includes(workerData.token)) {
         parentPort.postMessage('the lock file ' + workerData.lockPath + ' was replaced by another process');
         return;
       }
       try { const t = new Date(); fs.utimesSync(workerData.lockPath, t, t); } catch {}
       setTimeout(beat, workerData.intervalMs);
     };
     setTimeout(beat, workerData.intervalMs);`,
    { eval: true, workerData: { lockPath, token, intervalMs } },
  );
  worker.on('message', onMessage);
  // A worker that cannot start (resource limits) must not take the process down: the lock still holds.
  worker.on('error', () => undefined);
  // After the listeners: adding a listener refs the worker again.
  worker.unref();
  return worker;
}

/** For tests and operators: the holder recorded in DATA_DIR's lock file, if any. */
export function readDataDirLock(dataDir: string): LockHolder | null {
  const result = readLock(path.join(dataDir, LOCK_FILE));
  return result === 'missing' || result === 'unreadable' ? null : result;
}
