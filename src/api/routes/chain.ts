import { Type } from 'typebox';
import type { ChainStore, StoredChainHead } from '../../chain/chainStore.js';
import { CHAIN_ALGORITHM } from '../../chain/link.js';
import type { EventStore } from '../../eventstore/port.js';
import type { Policy } from '../auth.js';
import { positionParam } from '../requestValues.js';
import { errorResponses, Position } from '../schemas.js';
import type { RouteModule } from '../v1/routeKit.js';

/**
 * The tenant's chain head (docs/guarantees.md, "Tamper-evident log"): the hash of its newest linked
 * event, which commits to every event of the tenant before it. An auditor writes it down somewhere the
 * ledger's operators cannot change (a ticket, an email, a notary); `npm run cli -- verify --chain
 * --anchor <anchor>` later proves the history up to it is unchanged. Finance admins only.
 */
const strict = { additionalProperties: false } as const;
const POLICY: Policy = [{ role: 'finance_admin' }];

const ChainHeadResponse = Type.Object(
  {
    tenantId: Type.String(),
    algorithm: Type.Literal(CHAIN_ALGORITHM, {
      description: 'SHA-256 over the RFC 8785 canonical JSON of each link (docs/guarantees.md)',
    }),
    eventsLinked: Type.String({ description: "how many of the tenant's events the chain covers (decimal)" }),
    seq: Type.Union([Type.String(), Type.Null()], {
      description: "the newest linked event's place in the tenant's chain, from 0 (null: none linked yet)",
    }),
    hash: Type.Union([Type.String({ pattern: '^[0-9a-f]{64}$' }), Type.Null()]),
    eventId: Type.Union([Type.String(), Type.Null()]),
    position: Type.Union([Type.String(), Type.Null()], {
      description: "the newest linked event's global position in this store",
    }),
    chainedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
    anchor: Type.Union([Type.String(), Type.Null()], {
      description: 'tenant:seq:hash, as `verify --chain --anchor` takes it',
    }),
    chainedThrough: Type.String({
      description: 'global position up to which every event (of every tenant) is linked',
    }),
    storeHead: Type.String({
      description: 'the event store head: events after chainedThrough are not linked yet (the chain lag)',
    }),
  },
  { ...strict, $id: 'ChainHead' },
);

export function chainHeadOut(
  tenantId: string,
  head: StoredChainHead | undefined,
  chainedThrough: bigint,
  storeHead: bigint,
) {
  return {
    tenantId,
    algorithm: CHAIN_ALGORITHM,
    eventsLinked: head ? (head.seq + 1n).toString() : '0',
    seq: head ? head.seq.toString() : null,
    hash: head?.hash ?? null,
    eventId: head?.eventId ?? null,
    position: head ? head.position.toString() : null,
    chainedAt: head ? head.chainedAt.toISOString() : null,
    anchor: head ? `${tenantId}:${head.seq}:${head.hash}` : null,
    chainedThrough: chainedThrough.toString(),
    storeHead: storeHead.toString(),
  } as const;
}

export function chainRoutes(options: { chain: ChainStore; store: EventStore }): RouteModule {
  const { chain, store } = options;
  return async (app, { kit }) => {
    app.addSchema(ChainHeadResponse);
    app.get(
      '/ledger/chain-head',
      {
        config: { policy: POLICY },
        schema: {
          operationId: 'getLedgerChainHead',
          tags: ['finance'],
          summary:
            "The tenant's hash-chain head: the hash that commits to every event of the tenant up to its newest linked one (to anchor outside the ledger); `atPosition` gives the head at or before a global position, as an export pinned there names it",
          querystring: Type.Object({ atPosition: Type.Optional(Position) }, strict),
          response: { 200: Type.Ref('ChainHead'), ...errorResponses() },
        },
      },
      async (request) => {
        const tenantId = kit.principal(request).tenantId;
        const at =
          request.query.atPosition === undefined
            ? undefined
            : positionParam(request.query.atPosition, 'atPosition');
        const [chainedThrough, storeHead] = await Promise.all([chain.checkpoint(), store.headPosition()]);
        const head = at === undefined ? await chain.head(tenantId) : await chain.headAt(tenantId, at);
        return chainHeadOut(tenantId, head, chainedThrough, storeHead);
      },
    );
  };
}
