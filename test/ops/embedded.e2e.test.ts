import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signToken } from '../../src/api/auth.js';
import {
  type AppProcess,
  dataDirTemplate,
  killTree,
  lockFileExists,
  portFree,
  processAlive,
  ROOT,
  runCli,
  startApp,
  within,
} from '../support/appProcess.js';

/**
 * The app and the CLI as processes on the embedded default (one file: they share one migrated DATA_DIR
 * template, whose creation is the slow part).
 *
 * Stopping: the app stops, and frees its port, whichever of its processes is told to stop: `npm start`
 * is npm exec-ing node (no shell or tsx process between them), npm forwards SIGTERM/SIGINT, and node
 * notices when npm vanished without forwarding anything (kill -9) or when its output pipe is gone.
 *
 * The lock: PGlite is one process's database. Running `projections rebuild` beside `npm start` on the
 * same DATA_DIR used to print success while the app went on serving what its own PGlite had, and left
 * files the next open could not read ("could not open file base/5/16444"). Now every command that opens
 * the store refuses with one line naming the app, and nothing changes.
 */
const SHUTDOWN_TIMEOUT_MS = 4_000;
/** Slack for this test's own polling and process scheduling on a busy machine. */
const SLACK_MS = 1_500;

let template: Awaited<ReturnType<typeof dataDirTemplate>>;
const started: AppProcess[] = [];

beforeAll(async () => {
  template = await dataDirTemplate();
}, 180_000);
afterAll(() => {
  for (const app of started) killTree(app);
  template?.dispose();
});

async function start(via: 'npm' | 'node' = 'npm'): Promise<AppProcess> {
  const app = await startApp({
    dataDir: template.copy(),
    via,
    env: { SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS) },
  });
  started.push(app);
  return app;
}

/** Every process of the app is gone and its port is free within the shutdown bound. */
async function expectStopped(app: AppProcess): Promise<void> {
  const freed = await within(SHUTDOWN_TIMEOUT_MS + SLACK_MS, () => portFree(app.port));
  expect(freed, `port ${app.port} still taken; output:\n${app.output().slice(-1_500)}`).not.toBeNull();
  const gone = await within(
    SHUTDOWN_TIMEOUT_MS + SLACK_MS,
    () => !processAlive(app.appPid) && !processAlive(app.child.pid!),
  );
  expect(gone, 'a process of the app is still running').not.toBeNull();
}

describe('the app exits when any of its processes is told to stop', () => {
  it.concurrent.each([
    ['SIGTERM', 'npm'],
    ['SIGTERM', 'node'],
    ['SIGINT', 'npm'],
    ['SIGINT', 'node'],
  ] as const)(
    '%s to %s: drained, stopped, exit 0, lock released',
    async (signal, target) => {
      const app = await start();
      process.kill(target === 'npm' ? app.child.pid! : app.appPid, signal);
      await expectStopped(app);
      const exit = await app.exited;
      // npm exits with its child's status when it forwarded the signal.
      if (target === 'node') expect(exit).toEqual({ code: 0, signal: null });
      expect(app.output()).toContain('"msg":"stopped"');
      expect(lockFileExists(app.dataDir)).toBe(false);
    },
    180_000,
  );

  it.concurrent('kill -9 of npm: the app notices it lost its parent and stops', async () => {
    const app = await start();
    process.kill(app.child.pid!, 'SIGKILL');
    await expectStopped(app);
    expect(app.output()).toMatch(/"reason":"parent process \d+ exited","msg":"shutting down"/);
    expect(lockFileExists(app.dataDir)).toBe(false);
  }, 180_000);

  it.concurrent('its output pipe gone: the next write fails with EPIPE and the app stops', async () => {
    const app = await start('node');
    app.child.stdout!.destroy();
    app.child.stderr!.destroy();
    // Every request writes a log line; the write after the pipe closed fails (and the app going down
    // may cut this very request: its outcome does not matter here).
    await fetch(`${app.url}/healthz`)
      .then((r) => r.arrayBuffer())
      .catch(() => undefined);
    await expectStopped(app);
    expect(await app.exited).toEqual({ code: 1, signal: null });
    expect(lockFileExists(app.dataDir)).toBe(false);
  }, 180_000);
});

describe('a start that cannot work says why in one line', () => {
  const runApp = (env: Record<string, string>) =>
    new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
        cwd: ROOT,
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', ...env },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
      });
      child.once('exit', (code) => resolve({ code, stderr }));
    });

  it.concurrent('DATA_DIR that is not a directory', async () => {
    const file = path.join(template.root, 'not-a-dir');
    writeFileSync(file, 'x');
    const result = await runApp({ DATA_DIR: path.join(file, 'data') });
    expect(result).toEqual({
      code: 2,
      stderr: `configuration error: DATA_DIR: ${path.join(file, 'data')} is not usable: a path component is not a directory (ENOTDIR at ${path.join(file, 'data')})\n`,
    });
  }, 60_000);

  it.concurrent('a port already in use', async () => {
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as net.AddressInfo).port;
    try {
      const dataDir = template.copy();
      const result = await runApp({ DATA_DIR: dataDir, PORT: String(port) });
      expect(result).toEqual({
        code: 1,
        stderr: `cannot start: PORT: 127.0.0.1:${port} is already in use by another process: stop it, or set PORT\n`,
      });
      expect(lockFileExists(dataDir)).toBe(false);
    } finally {
      taken.close();
    }
  }, 180_000);
});

const TENANT = 'acme';

async function wallet(url: string, token: string, consistentWith?: string) {
  const query = consistentWith ? `?consistentWith=${consistentWith}` : '';
  const response = await fetch(`${url}/v1/wallets/stu_1${query}`, {
    headers: { authorization: `Bearer ${token}` },
  });
  return { status: response.status, body: (await response.json()) as { available?: number } };
}

describe('CLI commands beside a running app on the embedded default', () => {
  it.concurrent('refuse with one line naming the app, change nothing, and work once it stopped', async () => {
    const app = await start();
    const { dataDir } = app;
    const secret = readFileSync(path.join(dataDir, 'jwt-secret'), 'utf8').trim();
    const token = await signToken({
      tenant: TENANT,
      sub: 'stu_1',
      roles: ['student'],
      secret,
      ttlSeconds: 600,
    });
    const topUp = await fetch(`${app.url}/v1/wallets/stu_1/top-ups`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${token}`,
        'content-type': 'application/json',
        'idempotency-key': 'k1',
      },
      body: JSON.stringify({ amount: 2_500, currency: 'usd', paymentMethod: 'pm_card_visa' }),
    });
    expect(topUp.status).toBe(201);
    const { position } = (await topUp.json()) as { position: string };
    expect(await wallet(app.url, token, position)).toMatchObject({ status: 200, body: { available: 2_500 } });

    const env = { DATA_DIR: dataDir };
    const refusal = `the app (pid ${app.appPid}) is using ${dataDir}: stop it, or use the HTTP API\n`;
    const commands = [
      ['projections', 'rebuild'],
      ['verify'],
      ['replay', '--tenant', TENANT, '--account', 'student:stu_1:wallet'],
      ['migrate'],
      ['migrate', '--down', '--delete-all-events'],
    ];
    const results = await Promise.all(commands.map((args) => runCli(args, env)));
    for (const [i, result] of results.entries()) {
      expect({ command: commands[i], ...result }).toEqual({
        command: commands[i],
        code: 1,
        stdout: '',
        stderr: refusal,
      });
    }
    // A token needs no store: it still works beside the app.
    const minted = await runCli(['token', '--tenant', TENANT, '--sub', 'stu_1', '--role', 'student'], env);
    expect(minted.code).toBe(0);

    // The app still serves, reads and writes.
    expect(await wallet(app.url, minted.stdout.trim())).toMatchObject({
      status: 200,
      body: { available: 2_500 },
    });
    const second = await fetch(`${app.url}/v1/wallets/stu_1/top-ups`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${token}`,
        'content-type': 'application/json',
        'idempotency-key': 'k2',
      },
      body: JSON.stringify({ amount: 500, currency: 'usd', paymentMethod: 'pm_card_visa' }),
    });
    expect(second.status).toBe(201);
    const after = ((await second.json()) as { position: string }).position;
    expect(await wallet(app.url, token, after)).toMatchObject({ status: 200, body: { available: 3_000 } });

    process.kill(app.appPid, 'SIGTERM');
    expect(await app.exited).toEqual({ code: 0, signal: null });
    expect(await within(2_000, () => portFree(app.port))).not.toBeNull();

    // The store is intact: a rebuild works and the verifier finds the read models equal to the events.
    const rebuilt = await runCli(['projections', 'rebuild'], env);
    expect(rebuilt.code).toBe(0);
    expect(rebuilt.stdout).toMatch(/rebuilt read models to position \d+/);
    const verified = await runCli(['verify'], env);
    expect(verified).toMatchObject({ code: 0 });
    expect(verified.stdout).toMatch(/no differences/);
  }, 300_000);
});
