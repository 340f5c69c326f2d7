import type { JournalEntry } from '../domain/journal.js';
import {
  ACCOUNT_VOLUME_WATCH_FROM,
  accountLimitExceeded,
  assertPostingWithinLimit,
  type SharedAccountChange,
  sharedAccountsOf,
} from '../domain/ledgerLimits.js';

/** An account's volume (the sum of its four totals) as the read model has it. */
export interface AccountVolume {
  tenantId: string;
  account: string;
  currency: string;
  volume: number;
}

/**
 * What the guard needs from the read model (implemented over its balances table by
 * src/projections/accountVolumes.ts, wired in the composition root).
 */
export interface SharedAccountVolumes {
  /** Every account, of any tenant, whose volume is at least `atLeast` (served by a partial index). */
  atLeast(atLeast: number): Promise<AccountVolume[]>;
  /** The current volumes of these accounts of one tenant; an account without a balance is absent. */
  of(tenantId: string, keys: ReadonlyArray<{ account: string; currency: string }>): Promise<AccountVolume[]>;
}

export interface AccountVolumeGuardOptions {
  volumes: SharedAccountVolumes;
  /** How long the list of accounts near the limit is trusted before it is read again. */
  refreshMs?: number;
  clock?: () => number;
}

const key = (tenantId: string, account: string, currency: string): string =>
  `${tenantId}\u0000${account}\u0000${currency}`;

/**
 * The per-account limit of accounts no single stream owns (platform:*, stripe:*, clearing:*, tutor
 * pending and receivable), checked before the append (src/domain/ledgerLimits.ts has the reasoning).
 * Their totals exist only in the read model, so the guard keeps the short list of accounts past the
 * watch mark (half the lower limit; read at most once per `refreshMs` through a partial index) and,
 * for a command that adds to one of those, reads its exact volume and refuses what would pass the
 * limit. Every other account was below the mark a moment ago; the room above it absorbs what landed
 * since. The common path therefore costs no query.
 */
export class AccountVolumeGuard {
  private readonly refreshMs: number;
  private readonly clock: () => number;
  private watched = new Set<string>();
  private readAt = Number.NEGATIVE_INFINITY;
  private reading: Promise<void> | undefined;

  constructor(private readonly options: AccountVolumeGuardOptions) {
    this.refreshMs = options.refreshMs ?? 1_000;
    this.clock = options.clock ?? Date.now;
    if (!Number.isInteger(this.refreshMs) || this.refreshMs < 0) {
      throw new RangeError('AccountVolumeGuard refreshMs must be an integer >= 0');
    }
  }

  /**
   * Throws account_limit_exceeded (a DomainError) when `entries` would take a shared account past
   * `limit` (ledgerLimits.ts, volumeLimitFor).
   */
  async check(tenantId: string, entries: readonly JournalEntry[], limit: number): Promise<void> {
    const shared = new Map<string, SharedAccountChange>();
    for (const entry of entries) {
      for (const p of entry.postings) assertPostingWithinLimit(p);
      for (const [k, change] of sharedAccountsOf(entry)) {
        const seen = shared.get(k);
        if (seen) {
          seen.delta += change.delta;
          seen.growth += change.growth;
        } else shared.set(k, { ...change });
      }
    }
    if (shared.size === 0) return;
    await this.refresh();
    // An account below the watch mark a moment ago can take up to `limit - ACCOUNT_VOLUME_WATCH_FROM`
    // without a look; the rest is checked against its exact volume.
    const exact = [...shared.values()].filter(
      (s) =>
        s.delta > 0 &&
        (this.watched.has(key(tenantId, s.account, s.currency)) ||
          s.growth > limit - ACCOUNT_VOLUME_WATCH_FROM),
    );
    if (exact.length === 0) return;
    const current = new Map<string, number>();
    for (const v of await this.options.volumes.of(tenantId, exact)) {
      current.set(key(v.tenantId, v.account, v.currency), v.volume);
    }
    for (const s of exact) {
      const volume = current.get(key(tenantId, s.account, s.currency)) ?? 0;
      if (volume + s.delta > limit) {
        throw accountLimitExceeded({
          account: s.account,
          currency: s.currency,
          volume,
          added: s.delta,
          limit,
        });
      }
    }
  }

  private async refresh(): Promise<void> {
    if (this.clock() - this.readAt < this.refreshMs) return;
    this.reading ??= (async () => {
      try {
        const started = this.clock();
        const rows = await this.options.volumes.atLeast(ACCOUNT_VOLUME_WATCH_FROM);
        this.watched = new Set(rows.map((r) => key(r.tenantId, r.account, r.currency)));
        this.readAt = started;
      } finally {
        this.reading = undefined;
      }
    })();
    await this.reading;
  }
}
