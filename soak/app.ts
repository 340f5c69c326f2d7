import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import path from 'node:path';
import { killGroup, sleep, waitExit } from './proc.js';

/**
 * One app process (`src/main.ts` under tsx), started with the soak's env on a fixed port so a restart
 * comes back at the same URL. Ready = it logged `"msg":"listening"` and GET /readyz answers 200.
 */
export class AppProcess {
  private child: ChildProcess | null = null;
  private log: WriteStream | null = null;
  private starts = 0;
  /** Exits we did not cause (crashes), as `code/signal` strings. */
  readonly unexpectedExits: string[] = [];
  private expectingExit = false;

  constructor(
    readonly name: string,
    readonly port: number,
    private readonly env: NodeJS.ProcessEnv,
    private readonly cwd: string,
    private readonly logDir: string,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.child !== null;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  async start(timeoutMs: number): Promise<void> {
    if (this.child) throw new Error(`${this.name} already running`);
    this.starts++;
    this.log = createWriteStream(path.join(this.logDir, `${this.name}.log`), { flags: 'a' });
    this.log.write(`\n===== start #${this.starts} at ${new Date().toISOString()} =====\n`);
    // Run node directly with the tsx loader: one process, so kill -9 hits the app itself.
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      cwd: this.cwd,
      env: { ...this.env, PORT: String(this.port), HOST: '127.0.0.1' },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    this.child = child;
    this.expectingExit = false;
    const log = this.log;
    let listening = false;
    let buffered = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      log.write(chunk);
      if (!listening) {
        buffered = (buffered + chunk.toString()).slice(-16_384);
        if (buffered.includes('"msg":"listening"')) listening = true;
      }
    });
    child.stderr?.on('data', (chunk: Buffer) => log.write(chunk));
    child.once('exit', (code, signal) => {
      log.write(`===== exit code=${code} signal=${signal} at ${new Date().toISOString()} =====\n`);
      if (!this.expectingExit) this.unexpectedExits.push(`${this.name}: code=${code} signal=${signal}`);
      if (this.child === child) this.child = null;
    });
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.child !== child) {
        throw new Error(
          `${this.name} exited during start (see ${path.join(this.logDir, `${this.name}.log`)})`,
        );
      }
      if (listening && (await this.ready())) return;
      await sleep(100);
    }
    throw new Error(
      `${this.name} was not ready within ${timeoutMs} ms (see ${this.logDir}/${this.name}.log)`,
    );
  }

  async ready(): Promise<boolean> {
    try {
      const response = await fetch(`${this.url}/readyz`, { signal: AbortSignal.timeout(2_000) });
      await response.arrayBuffer();
      return response.status === 200;
    } catch {
      return false;
    }
  }

  /** kill -9: no draining, no shutdown hooks. */
  async kill9(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.expectingExit = true;
    killGroup(child, 'SIGKILL');
    await waitExit(child, 10_000);
    this.child = null;
  }

  /** SIGTERM and wait for the drain; returns the exit code (null when it had to be killed). */
  async stop(timeoutMs: number): Promise<{ code: number | null; signal: string | null; forced: boolean }> {
    const child = this.child;
    if (!child) return { code: 0, signal: null, forced: false };
    this.expectingExit = true;
    killGroup(child, 'SIGTERM');
    const exited = await waitExit(child, timeoutMs);
    if (exited === false) {
      killGroup(child, 'SIGKILL');
      await waitExit(child, 5_000);
      this.child = null;
      return { code: null, signal: 'SIGKILL', forced: true };
    }
    this.child = null;
    return { code: exited.code, signal: exited.signal, forced: false };
  }
}
