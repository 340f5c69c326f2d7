import type { EventStore, RecordedEvent } from '../eventstore/port.js';
import { tenantOf } from './chainer.js';
import type { ChainLink, ChainStore } from './chainStore.js';
import { ChainFold, type ChainHead } from './link.js';

/**
 * `verify --chain`: recomputes every tenant's chain from the events as the store holds them now and
 * compares it, link by link in log order, with the chain the chainer wrote when each event was new
 * (chainStore.ts). The first difference is named:
 *
 *  - changed:   the event at a linked position is the linked one, but its content, metadata, stream,
 *               revision or tenant no longer hash to its link (or another event took its place);
 *  - removed:   a linked event is gone from the store;
 *  - reordered: a linked event is in the store at another position than the one it was linked at;
 *  - inserted:  an event sits at a position the chain covers but was never linked;
 *  - anchor:    an anchor taken outside (tenant, seq, hash: from the API, an export) does not match the
 *               recomputed chain, or the chain never reaches its seq (history cut off at the end);
 *  - head:      the heads table disagrees with the links (the API would show a wrong head).
 *
 * Events after the chain's checkpoint are not linked yet (the chain lag) and are only counted. The chain
 * table and the events could be rewritten together by someone with write access to both: anchors are
 * what catch that, so `--anchor` is how an auditor closes the loop.
 */
export type ChainBreakKind = 'changed' | 'removed' | 'reordered' | 'inserted' | 'anchor' | 'head';

export interface ChainBreak {
  kind: ChainBreakKind;
  /** Where: the global position the chain holds the event at (or where the unexpected event is). */
  position: bigint;
  eventId: string;
  tenantId: string;
  /** The event's place in its tenant's chain, when known. */
  seq: bigint | null;
  message: string;
}

export interface ChainAnchor {
  tenantId: string;
  seq: bigint;
  hash: string;
}

export interface ChainVerification {
  ok: boolean;
  /** The first break found; verification stops there (what follows it cannot be trusted anyway). */
  break: ChainBreak | null;
  /** Events recomputed and matched. */
  eventsVerified: number;
  /** Events after the checkpoint, not linked yet. */
  eventsNotYetLinked: number;
  /** Checkpoint of the chain when verification started. */
  checkpoint: bigint;
  /** Recomputed heads of every tenant (tenant order). */
  heads: ChainHead[];
  anchorsChecked: number;
}

export interface VerifyChainOptions {
  store: EventStore;
  chain: ChainStore;
  anchors?: readonly ChainAnchor[];
  /** Events and links read per page. */
  pageSize?: number;
}

export async function verifyChain(options: VerifyChainOptions): Promise<ChainVerification> {
  const { store, chain } = options;
  const pageSize = options.pageSize ?? 1_000;
  const checkpoint = await chain.checkpoint();
  const events = pages<RecordedEvent>((after) =>
    store.readAll({ ...(after === undefined ? {} : { after }), maxCount: pageSize }),
  );
  const links = pages<ChainLink>((after) => chain.links({ after: after ?? -1n, limit: pageSize }));
  const fold = new ChainFold();
  const anchors = new Map<string, ChainAnchor>();
  for (const a of options.anchors ?? []) anchors.set(`${a.tenantId}\u0000${a.seq}`, a);
  let anchorsChecked = 0;
  let eventsVerified = 0;
  let eventsNotYetLinked = 0;

  const result = (found: ChainBreak | null): ChainVerification => ({
    ok: found === null,
    break: found,
    eventsVerified,
    eventsNotYetLinked,
    checkpoint,
    heads: fold.heads(),
    anchorsChecked,
  });

  /** A linked event not at its position: somewhere else (reordered) or nowhere (removed). */
  const missing = async (link: ChainLink, instead: RecordedEvent | undefined): Promise<ChainBreak> => {
    const elsewhere = await store.findEvent(link.streamName, link.eventId);
    const where = `event ${link.eventId} (tenant ${link.tenantId}, seq ${link.seq}, stream ${link.streamName}) linked at position ${link.position}`;
    if (elsewhere && elsewhere.position !== link.position) {
      return {
        kind: 'reordered',
        position: link.position,
        eventId: link.eventId,
        tenantId: link.tenantId,
        seq: link.seq,
        message: `${where} is now at position ${elsewhere.position}${instead ? `; position ${link.position} holds event ${instead.id}` : ''}`,
      };
    }
    if (instead) {
      return {
        kind: 'changed',
        position: link.position,
        eventId: link.eventId,
        tenantId: link.tenantId,
        seq: link.seq,
        message: `${where} was replaced by event ${instead.id}`,
      };
    }
    return {
      kind: 'removed',
      position: link.position,
      eventId: link.eventId,
      tenantId: link.tenantId,
      seq: link.seq,
      message: `${where} is no longer in the store`,
    };
  };

  let event = await events.next();
  let link = await links.next();
  for (;;) {
    if (link === undefined) {
      if (event === undefined) break;
      if (event.position <= checkpoint) return result(inserted(event));
      eventsNotYetLinked++;
      event = await events.next();
      continue;
    }
    if (event === undefined || event.position > link.position) return result(await missing(link, undefined));
    if (event.position < link.position) return result(inserted(event));
    if (event.id !== link.eventId) return result(await missing(link, event));
    let tenantId: string;
    try {
      tenantId = tenantOf(event);
    } catch {
      tenantId = '';
    }
    // The event's own tenant decides its chain: a tenant edited into the metadata is a change.
    const linked = tenantId === link.tenantId ? fold.add(event) : null;
    if (linked === null || linked.seq !== link.seq || linked.hash !== link.hash) {
      return result({
        kind: 'changed',
        position: link.position,
        eventId: event.id,
        tenantId: link.tenantId,
        seq: link.seq,
        message:
          `event ${event.id} (tenant ${link.tenantId}, seq ${link.seq}, stream ${link.streamName}) at position ${link.position} was changed: ` +
          (linked === null
            ? `its tenant is now ${tenantId || '(none)'}`
            : linked.seq !== link.seq
              ? `it is the tenant's event ${linked.seq} now, linked as ${link.seq}`
              : `its content, metadata, stream or revision no longer hash to its link ${link.hash.slice(0, 16)}…`),
      });
    }
    const hash = linked.hash;
    const anchor = anchors.get(`${link.tenantId}\u0000${link.seq}`);
    if (anchor) {
      anchorsChecked++;
      if (anchor.hash !== hash) {
        return result({
          kind: 'anchor',
          position: link.position,
          eventId: event.id,
          tenantId: link.tenantId,
          seq: link.seq,
          message: `anchor ${anchor.hash.slice(0, 16)}… for tenant ${link.tenantId} seq ${link.seq} does not match the recomputed chain (${hash.slice(0, 16)}…): history up to event ${event.id} was rewritten`,
        });
      }
    }
    eventsVerified++;
    event = await events.next();
    link = await links.next();
  }

  for (const anchor of anchors.values()) {
    const head = fold.head(anchor.tenantId);
    if (!head || head.seq < anchor.seq) {
      return result({
        kind: 'anchor',
        position: -1n,
        eventId: '',
        tenantId: anchor.tenantId,
        seq: anchor.seq,
        message: `anchor for tenant ${anchor.tenantId} seq ${anchor.seq} is beyond the chain (${head ? `its last event is seq ${head.seq}` : 'no event of the tenant is linked'}): events at the end were removed, or the chain is behind`,
      });
    }
  }

  // The heads table is what the API and the exports show: it must be the end of the links.
  let afterTenant: string | undefined;
  const seen = new Set<string>();
  for (;;) {
    const page = await chain.heads({
      ...(afterTenant !== undefined ? { afterTenant } : {}),
      limit: pageSize,
    });
    for (const stored of page) {
      seen.add(stored.tenantId);
      const recomputed = fold.head(stored.tenantId);
      if (!recomputed || recomputed.seq !== stored.seq || recomputed.hash !== stored.hash) {
        return result({
          kind: 'head',
          position: stored.position,
          eventId: stored.eventId,
          tenantId: stored.tenantId,
          seq: stored.seq,
          message: `the head shown for tenant ${stored.tenantId} (seq ${stored.seq}, ${stored.hash.slice(0, 16)}…) is not the end of its chain (${recomputed ? `seq ${recomputed.seq}, ${recomputed.hash.slice(0, 16)}…` : 'no links'})`,
        });
      }
    }
    if (page.length < pageSize) break;
    afterTenant = page[page.length - 1]!.tenantId;
  }
  const headless = fold.heads().find((h) => !seen.has(h.tenantId));
  if (headless) {
    return result({
      kind: 'head',
      position: -1n,
      eventId: '',
      tenantId: headless.tenantId,
      seq: headless.seq,
      message: `tenant ${headless.tenantId} has links up to seq ${headless.seq} but no head row`,
    });
  }
  return result(null);
}

function inserted(event: RecordedEvent): ChainBreak {
  const tenantId = (event.metadata as { tenantId?: unknown }).tenantId;
  return {
    kind: 'inserted',
    position: event.position,
    eventId: event.id,
    tenantId: typeof tenantId === 'string' ? tenantId : '',
    seq: null,
    message: `event ${event.id} (stream ${event.streamName}) at position ${event.position} was never linked: it was inserted into history the chain already covered`,
  };
}

/** A cursor over position-ordered pages: next() returns the next item, undefined at the end. */
function pages<T extends { position: bigint }>(
  read: (after: bigint | undefined) => Promise<T[]>,
): { next(): Promise<T | undefined> } {
  let buffer: T[] = [];
  let index = 0;
  let after: bigint | undefined;
  let done = false;
  return {
    async next() {
      if (index >= buffer.length) {
        if (done) return undefined;
        buffer = await read(after);
        index = 0;
        if (buffer.length === 0) {
          done = true;
          return undefined;
        }
        after = buffer[buffer.length - 1]!.position;
      }
      return buffer[index++];
    },
  };
}
