import fp from 'fastify-plugin';
import type { EventStore } from '../../eventstore/port.js';
import type { LedgerQueries } from '../../projections/ledgerQueries.js';
import { ApiError } from '../problem.js';
import { positionParam } from '../requestValues.js';

export interface ReadYourWritesOptions {
  queries: LedgerQueries;
  store: EventStore;
  /** Longest a GET waits for its `consistentWith` position. */
  consistencyWaitMs: number;
}

/**
 * Read-your-writes: a GET with `consistentWith=<position>` (a position a command returned) is answered
 * only once the read models have applied that position, or 503 after `consistencyWaitMs`. The query
 * parameter is validated by each route's schema (ConsistencyQuery), so this runs in `preHandler`.
 */
export const readYourWrites = fp<ReadYourWritesOptions>(
  async (app, { queries, store, consistencyWaitMs }) => {
    app.addHook('preHandler', async (request) => {
      if (request.method !== 'GET') return;
      const consistentWith = (request.query as { consistentWith?: string } | undefined)?.consistentWith;
      if (consistentWith === undefined) return;
      const position = positionParam(consistentWith, 'querystring/consistentWith');
      // Every position a command returned exists in the store; one past its head cannot be waited for.
      if (position > (await store.headPosition())) {
        throw new ApiError('validation_failed', `position ${consistentWith} is beyond the event store head`, {
          errors: [{ path: 'querystring/consistentWith', message: 'beyond the event store head' }],
        });
      }
      if (!(await queries.waitForPosition(position, consistencyWaitMs))) {
        throw new ApiError('unavailable', `read models have not reached position ${consistentWith} yet`, {
          retryAfterSeconds: 1,
        });
      }
      // The checkpoint moves past a tenant's stalled event (src/projections/stalls.ts), so "reached"
      // does not mean this tenant's read models have it: a stall at or before the position is a 503
      // that says so (the stall is committed with the checkpoint that passed it, so it is seen here).
      const tenantId = request.principal?.tenantId;
      const stall = tenantId === undefined ? null : ((await queries.projectionStallOf?.(tenantId)) ?? null);
      if (stall && stall.position <= position) {
        throw new ApiError(
          'projection_stalled',
          `the read models of tenant ${stall.tenantId} are stopped at position ${stall.position} (${stall.eventType} in ${stall.streamName}): they cannot apply that event; an operator resumes them with \`projections resume\``,
          {
            retryAfterSeconds: 30,
            details: {
              projection: stall.projection,
              position: stall.position.toString(),
              streamName: stall.streamName,
              eventType: stall.eventType,
              since: stall.stalledAt.toISOString(),
            },
          },
        );
      }
    });
  },
  { name: 'v1-read-your-writes', dependencies: ['v1-authorization'] },
);
