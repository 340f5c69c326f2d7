import { type ChildProcess, spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  acquireDataDirLock,
  currentProcess,
  DataDirBusyError,
  LOCK_FILE,
  type LockHolder,
  processStartOf,
  readDataDirLock,
  STALE_AFTER_MS,
} from '../../src/db/dataDirLock.js';

const root = mkdtempSync(path.join(tmpdir(), 'ledger-lock-'));
let n = 0;
const freshDir = () => path.join(root, `d${n++}`);
const children: ChildProcess[] = [];

afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

const HOLDER = path.join(import.meta.dirname, 'support', 'lockHolder.ts');

function spawnHolder(dir: string, role: 'app' | 'cli', mode: string, ...extra: string[]) {
  const child = spawn(process.execPath, ['--import', 'tsx', HOLDER, dir, role, mode, ...extra], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  let out = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    out += chunk.toString();
  });
  const line = () =>
    new Promise<string>((resolve, reject) => {
      const check = () => {
        const nl = out.indexOf('\n');
        if (nl >= 0) return resolve(out.slice(0, nl));
        if (child.exitCode !== null)
          return reject(new Error(`holder exited ${child.exitCode} before a line`));
        setTimeout(check, 20);
      };
      check();
    });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, line, exited };
}

/** A lock file as another process would have left it. */
function writeLock(dir: string, holder: Partial<LockHolder>, ageMs = 0): void {
  mkdirSync(dir, { recursive: true });
  const base: LockHolder = {
    role: 'app',
    command: 'start',
    ...currentProcess(),
    startedAt: new Date().toISOString(),
    token: 'someone-else',
  };
  const file = path.join(dir, LOCK_FILE);
  writeFileSync(file, JSON.stringify({ ...base, ...holder }));
  const t = new Date(Date.now() - ageMs);
  utimesSync(file, t, t);
}

describe('DATA_DIR lock', () => {
  it('is exclusive: a second taker is refused with one line naming the holder, and release frees it', () => {
    const dir = freshDir();
    const lock = acquireDataDirLock(dir, { role: 'app', command: 'start', heartbeat: false });
    expect(readDataDirLock(dir)?.pid).toBe(process.pid);
    let refusal: unknown;
    try {
      acquireDataDirLock(dir, { role: 'cli', command: 'verify', heartbeat: false });
    } catch (error) {
      refusal = error;
    }
    expect(refusal).toBeInstanceOf(DataDirBusyError);
    const message = (refusal as Error).message;
    expect(message).toBe(`the app (pid ${process.pid}) is using ${dir}: stop it, or use the HTTP API`);
    expect(message).not.toContain('\n');
    lock.release();
    expect(existsSync(path.join(dir, LOCK_FILE))).toBe(false);
    acquireDataDirLock(dir, { role: 'cli', command: 'verify', heartbeat: false }).release();
  });

  it('names a CLI holder by its command', () => {
    const dir = freshDir();
    const lock = acquireDataDirLock(dir, { role: 'cli', command: 'projections rebuild', heartbeat: false });
    expect(() => acquireDataDirLock(dir, { role: 'app', command: 'start', heartbeat: false })).toThrow(
      `\`npm run cli -- projections rebuild\` (pid ${process.pid}) is using ${dir}: wait for it to finish, or stop it`,
    );
    lock.release();
  });

  it('refuses while another live process holds it, and takes over once that process was killed', async () => {
    const dir = freshDir();
    const holder = spawnHolder(dir, 'app', 'hold');
    const pid = Number((await holder.line()).split(' ')[1]);
    expect(pid).toBe(holder.child.pid);
    expect(() => acquireDataDirLock(dir, { role: 'cli', command: 'verify', heartbeat: false })).toThrow(
      `the app (pid ${pid}) is using ${dir}: stop it, or use the HTTP API`,
    );
    holder.child.kill('SIGKILL');
    await holder.exited;
    // The dead holder's file is still there: only its pid says it is stale.
    expect(readDataDirLock(dir)?.pid).toBe(pid);
    const lock = acquireDataDirLock(dir, { role: 'cli', command: 'verify', heartbeat: false });
    expect(readDataDirLock(dir)?.pid).toBe(process.pid);
    lock.release();
  });

  it('a recorded pid that now belongs to another process (other start time) is stale', () => {
    const dir = freshDir();
    // Our parent is alive, but it did not start at the recorded time: the pid was reused.
    const start = processStartOf(process.ppid);
    expect(start).not.toBeNull();
    writeLock(dir, { pid: process.ppid, processStart: String(Number(start) + 1) });
    const lock = acquireDataDirLock(dir, { role: 'app', command: 'start', heartbeat: false });
    expect(readDataDirLock(dir)?.token).toBe(lock.holder.token);
    lock.release();
  });

  it('the same pid in a restarted container (same host, other pid namespace) waits for the heartbeat to go stale', () => {
    const dir = freshDir();
    writeLock(dir, { pidNamespace: 'pid:[1]', pid: 1 }, 1_000);
    expect(() => acquireDataDirLock(dir, { role: 'app', command: 'start', heartbeat: false })).toThrow(
      /\(pid 1 on .+, alive 1 s ago\) is using/,
    );
    writeLock(dir, { pidNamespace: 'pid:[1]', pid: 1 }, STALE_AFTER_MS + 5_000);
    acquireDataDirLock(dir, { role: 'app', command: 'start', heartbeat: false }).release();
  });

  it('a holder on another host (network filesystem) counts as alive while its heartbeat is fresh', () => {
    const dir = freshDir();
    writeLock(dir, { hostname: 'ledger-2.internal', bootId: 'other-boot' }, 2_000);
    expect(() => acquireDataDirLock(dir, { role: 'cli', command: 'verify', heartbeat: false })).toThrow(
      /the app \(pid \d+ on ledger-2\.internal, alive 2 s ago\) is using .*: stop it, or use the HTTP API/,
    );
    writeLock(dir, { hostname: 'ledger-2.internal', bootId: 'other-boot' }, STALE_AFTER_MS + 1_000);
    acquireDataDirLock(dir, { role: 'cli', command: 'verify', heartbeat: false }).release();
  });

  it('a lock from before a reboot of this host is stale at once', () => {
    const dir = freshDir();
    writeLock(dir, { bootId: '00000000-0000-0000-0000-000000000000', pid: process.pid }, 1_000);
    acquireDataDirLock(dir, { role: 'app', command: 'start', heartbeat: false }).release();
  });

  it('a file that is not a lock is left alone while fresh, taken over once old', () => {
    const dir = freshDir();
    writeLock(dir, {});
    const file = path.join(dir, LOCK_FILE);
    writeFileSync(file, 'garbage');
    expect(() => acquireDataDirLock(dir, { role: 'app', command: 'start', heartbeat: false })).toThrow(
      /is not a lock file this program wrote/,
    );
    const old = new Date(Date.now() - STALE_AFTER_MS - 1_000);
    utimesSync(file, old, old);
    acquireDataDirLock(dir, { role: 'app', command: 'start', heartbeat: false }).release();
  });

  it('of several processes taking over the same stale lock at once, exactly one wins', async () => {
    const dir = freshDir();
    writeLock(dir, { pid: 999_999_999 });
    const startAt = String(Date.now() + 2_500);
    const racers = Array.from({ length: 4 }, () => spawnHolder(dir, 'cli', 'race', startAt));
    const outcomes = await Promise.all(racers.map((r) => r.line()));
    expect(outcomes.filter((o) => o === 'won')).toHaveLength(1);
    expect(outcomes.filter((o) => o === 'busy')).toHaveLength(3);
    const winner = racers[outcomes.indexOf('won')]!;
    expect(readDataDirLock(dir)?.pid).toBe(winner.child.pid);
  });

  it('is released when the holder exits normally', async () => {
    const dir = freshDir();
    const holder = spawnHolder(dir, 'cli', 'exit');
    expect(await holder.line()).toBe('locked');
    expect(await holder.exited).toBe(0);
    expect(existsSync(path.join(dir, LOCK_FILE))).toBe(false);
  });

  it('release leaves a lock that is no longer ours, and the holder hears that it lost it', async () => {
    const dir = freshDir();
    const reasons: string[] = [];
    const lock = acquireDataDirLock(dir, {
      role: 'app',
      command: 'start',
      heartbeatMs: 30,
      onLost: (reason) => reasons.push(reason),
    });
    const file = path.join(dir, LOCK_FILE);
    writeFileSync(file, readFileSync(file, 'utf8').replace(lock.holder.token, 'intruder'));
    for (let i = 0; i < 500 && reasons.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(reasons).toEqual([`the lock file ${file} was replaced by another process`]);
    lock.release();
    expect(readDataDirLock(dir)?.token).toBe('intruder');
  });

  it('the heartbeat keeps the lock file fresh', async () => {
    const dir = freshDir();
    const lock = acquireDataDirLock(dir, { role: 'app', command: 'start', heartbeatMs: 30 });
    const file = path.join(dir, LOCK_FILE);
    const old = new Date(Date.now() - 60_000);
    utimesSync(file, old, old);
    // The worker takes a moment to start on a busy machine; then it touches the file every 30 ms.
    let ageMs = Number.POSITIVE_INFINITY;
    for (let i = 0; i < 200 && ageMs > 5_000; i++) {
      await new Promise((r) => setTimeout(r, 50));
      ageMs = Date.now() - statSync(file).mtimeMs;
    }
    expect(ageMs).toBeLessThan(5_000);
    lock.release();
  });
});
