import type { FastifyInstance } from 'fastify';

/**
 * Graceful stop of the HTTP side: stop accepting connections, let in-flight requests finish (at most
 * drainTimeoutMs), then cut whatever is left. Returns once the server is closed; the caller then stops
 * subscriptions and closes the database, in that order, so no acknowledged command loses its events.
 */
export async function closeGracefully(
  app: Pick<FastifyInstance, 'close' | 'server' | 'log'>,
  options: { drainTimeoutMs: number },
): Promise<{ drained: boolean }> {
  if (!Number.isSafeInteger(options.drainTimeoutMs) || options.drainTimeoutMs < 0) {
    throw new RangeError('drainTimeoutMs must be a non-negative integer');
  }
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), options.drainTimeoutMs);
  });
  // close() stops listening, answers new requests on open connections with 503 and waits for in-flight ones.
  const closing = app.close().then(() => 'closed' as const);
  const outcome = await Promise.race([closing, timedOut]);
  clearTimeout(timer);
  if (outcome === 'closed') return { drained: true };
  app.log.warn({ drainTimeoutMs: options.drainTimeoutMs }, 'drain timed out; closing remaining connections');
  app.server.closeAllConnections();
  await closing;
  return { drained: false };
}
