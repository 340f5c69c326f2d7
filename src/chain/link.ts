import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';
import type { RecordedEvent } from '../eventstore/port.js';

/**
 * One link of a tenant's hash chain (docs/guarantees.md, "Tamper-evident log"). The hash of the tenant's
 * n-th event is SHA-256 over the RFC 8785 (JCS) canonical JSON of
 *
 *   { v: 1, tenantId, seq: "n", prev: <hash of event n-1, or 64 zeros for n = 0>,
 *     id, type, streamName, revision: "r", data, metadata }
 *
 * so it covers the event's content (type, data), its ids (event id, tenant, stream), its position (its
 * place in the tenant's chain and its revision in its stream), its metadata, and, through `prev`, every
 * earlier event of the tenant in order. Anyone can recompute it from an export with any JCS
 * implementation and SHA-256.
 *
 * Left out on purpose: the store's global position and recorded time. Both are assigned by the store
 * and differ after a restore into another store (EventStoreDB positions are byte offsets in its log and
 * it sets `created` itself; src/backup/format.ts), while an import keeps everything above. So an anchor an
 * auditor wrote down still verifies against a restored or migrated ledger. The chain table records each
 * link's global position beside its hash, which is where `verify --chain` says a broken link sits.
 */
export const CHAIN_ALGORITHM = 'sha256-jcs-v1';
export const CHAIN_VERSION = 1;
/** The `prev` of a tenant's first event. */
export const GENESIS_HASH = '0'.repeat(64);
export const HASH_PATTERN = /^[0-9a-f]{64}$/;

/** The fields of a recorded event a link covers (a RecordedEvent has them all). */
export type ChainedEventFields = Pick<
  RecordedEvent,
  'id' | 'type' | 'streamName' | 'revision' | 'data' | 'metadata'
>;

/** The canonical text a link's hash is taken of (exported for docs and tests: an auditor's reference). */
export function linkDocument(prev: string, seq: bigint, event: ChainedEventFields): string {
  if (!HASH_PATTERN.test(prev)) throw new TypeError(`chain: prev must be 64 lowercase hex digits`);
  if (seq < 0n) throw new RangeError('chain: seq must be >= 0');
  const text = canonicalize({
    v: CHAIN_VERSION,
    tenantId: event.metadata.tenantId,
    seq: seq.toString(),
    prev,
    id: event.id,
    type: event.type,
    streamName: event.streamName,
    revision: event.revision.toString(),
    data: event.data,
    metadata: event.metadata,
  });
  if (text === undefined) throw new TypeError('chain: an event has no canonical form');
  return text;
}

/** The hash of the tenant's `seq`-th event, given the hash of the one before (GENESIS_HASH for seq 0). */
export function linkHash(prev: string, seq: bigint, event: ChainedEventFields): string {
  return createHash('sha256')
    .update(linkDocument(prev, seq, event), 'utf8')
    .digest('hex');
}

/** A tenant's chain after some event: how many of its events are chained (seq + 1) and the last hash. */
export interface ChainHead {
  tenantId: string;
  /** seq of the last chained event (0-based), -1n when the tenant has no chained event. */
  seq: bigint;
  hash: string;
}

/**
 * Folds events (in log order, any tenants) into each tenant's chain: the one place a link's seq and
 * prev come from (the chainer, the verifier and the export's trailer all fold with it).
 */
export class ChainFold {
  private readonly state = new Map<string, ChainHead>();

  /** Starts from known heads (the chainer's, read under its lock). */
  constructor(heads: Iterable<ChainHead> = []) {
    for (const h of heads) this.state.set(h.tenantId, { tenantId: h.tenantId, seq: h.seq, hash: h.hash });
  }

  /** Links the tenant's next event; returns its link. */
  add(event: ChainedEventFields): ChainHead {
    const tenantId = event.metadata.tenantId;
    const before = this.state.get(tenantId);
    const seq = before ? before.seq + 1n : 0n;
    const head = { tenantId, seq, hash: linkHash(before?.hash ?? GENESIS_HASH, seq, event) };
    this.state.set(tenantId, head);
    return head;
  }

  head(tenantId: string): ChainHead | undefined {
    return this.state.get(tenantId);
  }

  get tenants(): number {
    return this.state.size;
  }

  /** Every tenant's head, in tenant order. */
  heads(): ChainHead[] {
    return [...this.state.values()].sort((a, b) =>
      a.tenantId < b.tenantId ? -1 : a.tenantId > b.tenantId ? 1 : 0,
    );
  }
}
