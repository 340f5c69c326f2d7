import type { Logger } from './log/logger.js';

/**
 * How the app process ends. Every way its operator or its surroundings can tell it to stop leads to
 * the same graceful stop (drain requests, stop background work, close stores), bounded by
 * SHUTDOWN_TIMEOUT_MS, after which the process exits whatever is still running:
 *
 *  - SIGTERM, SIGINT, SIGHUP to the node process (or to npm, which forwards them: the npm scripts
 *    `exec` node, so no shell or tsx process sits between them that would swallow a signal);
 *  - the npm process that started it disappearing without forwarding anything (kill -9 of npm, an
 *    `npm start &` whose npm is killed): the parent pid changes when the process is re-parented;
 *  - its output pipe going away (EPIPE on stdout or stderr, seen at the next write: every request
 *    writes a log line), since a process nobody can hear is a process nobody can operate.
 */
export interface LifecycleOptions {
  logger: Logger;
  /** Bound on the whole stop; the process exits by then. */
  shutdownTimeoutMs: number;
  /** The graceful stop (idempotent). */
  stop: () => Promise<void>;
  /** Exit when the parent process is gone (set when started by an npm script). */
  watchParent: boolean;
  parentPollMs?: number;
  exit?: (code: number) => void;
}

export interface Lifecycle {
  /** Starts the stop (once); `code` is the exit code after a clean stop. */
  shutdown(reason: string, code?: number): void;
  /** Hands to pino's destination (and anything else that writes): reports a lost output. */
  onOutputError(error: unknown): void;
}

const PARENT_POLL_MS = 1_000;

export function superviseProcess(options: LifecycleOptions): Lifecycle {
  const exit = options.exit ?? ((code: number) => process.exit(code));
  let stopping = false;
  let outputGone = false;

  const shutdown = (reason: string, code = 0): void => {
    if (stopping) return;
    stopping = true;
    if (!outputGone) options.logger.info({ reason }, 'shutting down');
    // The hard bound: whatever still runs then is abandoned (the stores are crash-safe).
    const deadline = setTimeout(() => {
      if (!outputGone) {
        options.logger.error({ shutdownTimeoutMs: options.shutdownTimeoutMs }, 'shutdown timed out; exiting');
      }
      exit(1);
    }, options.shutdownTimeoutMs);
    options.stop().then(
      () => {
        clearTimeout(deadline);
        if (!outputGone) options.logger.info('stopped');
        exit(code);
      },
      (error: unknown) => {
        clearTimeout(deadline);
        if (!outputGone) options.logger.error({ err: error }, 'shutdown failed');
        exit(1);
      },
    );
  };

  const onOutputError = (error: unknown): void => {
    const code = (error as NodeJS.ErrnoException | undefined)?.code;
    if (code !== 'EPIPE' && code !== 'ERR_STREAM_DESTROYED' && code !== 'EIO') return;
    outputGone = true;
    shutdown(`output gone (${code})`, 1);
  };

  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    process.on(signal, () => shutdown(signal));
  }
  process.stdout.on('error', onOutputError);
  process.stderr.on('error', onOutputError);

  if (options.watchParent) {
    const parent = process.ppid;
    const timer = setInterval(() => {
      if (process.ppid !== parent) {
        clearInterval(timer);
        shutdown(`parent process ${parent} exited`);
      }
    }, options.parentPollMs ?? PARENT_POLL_MS);
    timer.unref();
  }
  return { shutdown, onOutputError };
}

/** The share of the shutdown bound given to draining HTTP requests; the rest stops background work. */
export function drainBudgetMs(shutdownTimeoutMs: number): number {
  return Math.max(50, Math.floor(shutdownTimeoutMs * 0.75));
}
