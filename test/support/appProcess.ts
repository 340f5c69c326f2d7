import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

/**
 * The app and the CLI as operators run them (`npm start`, `npm run cli -- …`), for tests of what the
 * process does: locks, signals, exits. Starting PGlite on a new DATA_DIR runs initdb (tens of seconds
 * on a busy machine), so a test file migrates one template directory and each app gets a copy.
 */

export const ROOT = path.resolve(import.meta.dirname, '..', '..');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `npm run -s cli -- ...args` with `env` (plus PATH and HOME only). */
export function runCli(args: string[], env: Record<string, string>, timeoutMs = 120_000): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      'npm',
      ['run', '-s', 'cli', '--', ...args],
      {
        cwd: ROOT,
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', ...env },
        timeout: timeoutMs,
      },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : null) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** A migrated DATA_DIR to copy from, and a scratch root that `dispose` removes. */
export async function dataDirTemplate(): Promise<{ root: string; copy(): string; dispose(): void }> {
  const root = mkdtempSync(path.join(tmpdir(), 'ledger-proc-'));
  const template = path.join(root, 'template');
  const migrated = await runCli(['migrate'], { DATA_DIR: template });
  if (migrated.code !== 0) throw new Error(`migrate failed: ${migrated.stderr}`);
  let n = 0;
  return {
    root,
    copy() {
      const dir = path.join(root, `data-${n++}`);
      cpSync(template, dir, { recursive: true });
      return dir;
    },
    dispose() {
      rmSync(root, { recursive: true, force: true });
    },
  };
}

export interface AppProcess {
  /** The process we spawned: npm for `npm start`, node for a direct start. */
  child: ChildProcess;
  /** The node process that runs the app (npm's child, or `child` itself). */
  appPid: number;
  url: string;
  port: number;
  dataDir: string;
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface StartOptions {
  dataDir: string;
  /** `npm start` (default), `npm run start:prod`, or node with tsx directly. */
  via?: 'npm' | 'node';
  env?: Record<string, string>;
  /** stdout of the child: piped to us (default) or a pipe we can close. */
  stdio?: 'pipe';
  readyTimeoutMs?: number;
}

/** Starts the app on a free port (PORT=0) and waits until /readyz answers 200. */
export async function startApp(options: StartOptions): Promise<AppProcess> {
  const env = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '/root',
    DATA_DIR: options.dataDir,
    PORT: '0',
    LOG_LEVEL: 'info',
    ...options.env,
  };
  const via = options.via ?? 'npm';
  const child =
    via === 'npm'
      ? spawn('npm', ['start'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
      : spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
          cwd: ROOT,
          env,
          stdio: ['ignore', 'pipe', 'pipe'],
          detached: true,
        });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr!.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const deadline = Date.now() + (options.readyTimeoutMs ?? 120_000);
  let url: string | undefined;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`the app exited during start:\n${output.slice(-2_000)}`);
    }
    url ??= /listening on (http:\/\/[^\s]+)/.exec(output)?.[1];
    if (url && (await ready(url))) break;
    await sleep(100);
  }
  if (!url) throw new Error(`the app did not start in time:\n${output.slice(-2_000)}`);
  const port = Number(new URL(url).port);
  const appPid = via === 'npm' ? childPidOf(child.pid!) : child.pid!;
  return { child, appPid, url, port, dataDir: options.dataDir, output: () => output, exited };
}

async function ready(url: string): Promise<boolean> {
  try {
    const response = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(2_000) });
    await response.arrayBuffer();
    return response.status === 200;
  } catch {
    return false;
  }
}

/** The one child of `pid` (npm `exec`s node, so npm has exactly one). */
export function childPidOf(pid: number): number {
  const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
    .trim()
    .split(/\s+/)
    .filter(Boolean);
  if (children.length !== 1) throw new Error(`expected one child of ${pid}, found [${children.join(', ')}]`);
  return Number(children[0]);
}

export function processAlive(pid: number): boolean {
  // A zombie (exited, not yet reaped) counts as gone.
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** True when nothing accepts connections on 127.0.0.1:port. */
export function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
}

/** Polls `condition` every 50 ms for up to `timeoutMs`; returns the elapsed ms, or null on timeout. */
export async function within(
  timeoutMs: number,
  condition: () => boolean | Promise<boolean>,
): Promise<number | null> {
  const started = Date.now();
  while (Date.now() - started <= timeoutMs) {
    if (await condition()) return Date.now() - started;
    await sleep(50);
  }
  return null;
}

export function killTree(app: AppProcess): void {
  for (const pid of [app.appPid, app.child.pid]) {
    if (pid !== undefined && processAlive(pid)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  }
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export function lockFileExists(dataDir: string): boolean {
  return existsSync(path.join(dataDir, 'ledger.lock'));
}
