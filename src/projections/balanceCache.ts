import { InvariantViolation } from '../domain/errors.js';

/**
 * Balance reads served from memory, kept exact by the projection's own change notifications.
 *
 * The projection runner, inside the transaction that writes a batch, NOTIFYs
 * BALANCES_CHANGED_CHANNEL with the batch's position and every (tenant, account) whose balance row it
 * changed. Postgres delivers those notifications at commit, on the listener connection, in commit
 * order, before the runner's `ledger_projected` notification of the same batch. A cached entry is
 * dropped as soon as a notification names it, so an entry is never older than the last notification
 * this process has heard.
 *
 * The race that matters: a read that started before a change committed (old snapshot) may finish after
 * that change's notification arrived. Every read in flight holds a ticket; a notification naming its
 * key (or a flush) marks the ticket dirty, and a dirty ticket's value is returned but not cached. A read
 * whose notification arrives after it finished is cached and then dropped by the notification. Either
 * way the cache converges to what the database holds, as fast as notifications arrive.
 *
 * Values that are not worth keeping (a wallet that does not exist yet) are never cached: see `read`.
 *
 * When the listener connection drops, notifications are missed: the cache is emptied and bypassed
 * until the connection is back ('lost' / 'listening' from Database.listen), and every read in flight
 * across either edge is dirty.
 */
export const BALANCES_CHANGED_CHANNEL = 'ledger_balances_changed';

/** Postgres refuses NOTIFY payloads of 8000 bytes or more. */
const MAX_PAYLOAD_BYTES = 7_900;
/** Past this many notifications for one batch, one "everything changed" notification is cheaper. */
const MAX_NOTIFICATIONS_PER_BATCH = 32;
const FLUSH_ALL = '*';

export interface ChangedBalance {
  tenantId: string;
  account: string;
}

/** The cache key of an account's balance: tenant and account never hold tabs (validated identifiers). */
export function balanceCacheKey(tenantId: string, account: string): string {
  return `${tenantId}\t${account}`;
}

/**
 * Payloads announcing that the balances `changed` moved at `position`: `<position>` on the first line,
 * then one `<tenant>\t<account>` per line, split to fit NOTIFY's size limit; `<position>\n*` when there
 * are too many to list.
 */
export function balanceChangePayloads(position: bigint, changed: Iterable<ChangedBalance>): string[] {
  const head = position.toString();
  const payloads: string[] = [];
  let lines: string[] = [];
  let bytes = head.length;
  const seen = new Set<string>();
  for (const { tenantId, account } of changed) {
    const line = balanceCacheKey(tenantId, account);
    // One line per account, whatever the number of its currencies.
    if (seen.has(line)) continue;
    seen.add(line);
    if (/[\n\t]/.test(tenantId) || /[\n\t]/.test(account)) {
      throw new InvariantViolation(`balance key holds a tab or newline: ${JSON.stringify(line)}`);
    }
    const lineBytes = Buffer.byteLength(line) + 1;
    if (bytes + lineBytes > MAX_PAYLOAD_BYTES && lines.length > 0) {
      payloads.push([head, ...lines].join('\n'));
      if (payloads.length >= MAX_NOTIFICATIONS_PER_BATCH) return [`${head}\n${FLUSH_ALL}`];
      lines = [];
      bytes = head.length;
    }
    lines.push(line);
    bytes += lineBytes;
  }
  payloads.push([head, ...lines].join('\n'));
  return payloads;
}

export function flushAllPayload(position: bigint): string {
  return `${position}\n${FLUSH_ALL}`;
}

export type BalanceChange = { position: bigint; keys: string[] | 'all' };

/** Reads a payload back; null when it is not one of ours (then the safe reaction is a flush). */
export function parseBalanceChange(payload: string): BalanceChange | null {
  const lines = payload.split('\n');
  const head = lines[0]!;
  if (!/^-?\d{1,20}$/.test(head)) return null;
  const position = BigInt(head);
  if (lines.length === 2 && lines[1] === FLUSH_ALL) return { position, keys: 'all' };
  const keys = lines.slice(1);
  if (keys.some((k) => k.split('\t').length !== 2)) return null;
  return { position, keys };
}

export interface BalanceCacheStats {
  hits: number;
  /** Misses answered by another read of the same key already under way. */
  joined: number;
  misses: number;
  /** Misses whose value was not kept because a change or a flush overtook the read. */
  discarded: number;
  invalidations: number;
  flushes: number;
  entries: number;
  live: boolean;
}

interface Ticket<V> {
  dirty: boolean;
  value: Promise<V>;
}

export class BalanceCache<V> {
  private readonly entries = new Map<string, V>();
  private readonly inFlight = new Map<string, Set<Ticket<V>>>();
  private live = false;
  /** Highest position named by a notification heard while live (-1: none yet). */
  private heard = -1n;
  private readonly counters = { hits: 0, joined: 0, misses: 0, discarded: 0, invalidations: 0, flushes: 0 };

  constructor(private readonly options: { maxEntries: number }) {
    if (!Number.isSafeInteger(options.maxEntries) || options.maxEntries < 1) {
      throw new RangeError('maxEntries must be a positive integer');
    }
  }

  /** Position up to which every change has been heard (and applied to the cache). */
  get heardPosition(): bigint {
    return this.heard;
  }

  get isLive(): boolean {
    return this.live;
  }

  stats(): BalanceCacheStats {
    return { ...this.counters, entries: this.entries.size, live: this.live };
  }

  /**
   * The cached value, or undefined; a miss must be read through `read` so that the race with
   * notifications is handled.
   */
  get(key: string): V | undefined {
    if (!this.live) return undefined;
    const value = this.entries.get(key);
    if (value === undefined) return undefined;
    this.counters.hits++;
    // Least recently used goes first when full: re-inserting moves the key to the end.
    this.entries.delete(key);
    this.entries.set(key, value);
    return value;
  }

  /**
   * Reads `key` from the source and keeps the value unless a change to it was heard meanwhile.
   * Concurrent misses of one key share a read that is still clean (no change heard since it began): it
   * is as fresh as an entry would be, and a herd of readers of a wallet that just changed costs one
   * database read, not one each.
   */
  read(key: string, load: () => Promise<V>, keep: (value: V) => boolean = () => true): Promise<V> {
    let tickets = this.inFlight.get(key);
    if (this.live && tickets) {
      for (const ticket of tickets) {
        if (!ticket.dirty) {
          this.counters.joined++;
          return ticket.value;
        }
      }
    }
    this.counters.misses++;
    if (!tickets) {
      tickets = new Set();
      this.inFlight.set(key, tickets);
    }
    // Registered before any notification can be handled (those arrive as events, never synchronously).
    const ticket = { dirty: !this.live } as Ticket<V>;
    ticket.value = this.load(key, load, keep, ticket);
    tickets.add(ticket);
    return ticket.value;
  }

  private async load(
    key: string,
    load: () => Promise<V>,
    keep: (value: V) => boolean,
    ticket: Ticket<V>,
  ): Promise<V> {
    try {
      const value = await load();
      if (ticket.dirty || !this.live) this.counters.discarded++;
      else if (keep(value)) this.put(key, value);
      return value;
    } finally {
      const tickets = this.inFlight.get(key);
      tickets?.delete(ticket);
      if (tickets?.size === 0) this.inFlight.delete(key);
    }
  }

  /** Applies one notification. */
  changed(change: BalanceChange): void {
    if (change.keys === 'all') this.flush();
    else {
      for (const key of change.keys) {
        if (this.entries.delete(key)) this.counters.invalidations++;
        for (const ticket of this.inFlight.get(key) ?? []) ticket.dirty = true;
      }
    }
  }

  /**
   * Every change up to `position` has been applied. Fed by the projection's `ledger_projected`
   * notification, which follows all of a batch's balance notifications on the same connection: a batch
   * split over several payloads is heard only once its last one is in.
   */
  heardUpTo(position: bigint): void {
    if (this.live && position > this.heard) this.heard = position;
  }

  /** The notification stream is (again) live: nothing heard before can be trusted to be complete. */
  listening(): void {
    this.flush();
    this.live = true;
  }

  /** The notification stream broke: stop serving from memory until it is live again. */
  lost(): void {
    this.live = false;
    this.flush();
  }

  /** Forgets every entry and every read in flight (their values will not be kept). */
  flush(): void {
    this.counters.flushes++;
    this.entries.clear();
    for (const tickets of this.inFlight.values()) for (const ticket of tickets) ticket.dirty = true;
  }

  private put(key: string, value: V): void {
    this.entries.delete(key);
    if (this.entries.size >= this.options.maxEntries) {
      this.entries.delete(this.entries.keys().next().value as string);
    }
    this.entries.set(key, value);
  }
}
