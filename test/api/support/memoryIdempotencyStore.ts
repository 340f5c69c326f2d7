import { randomUUID } from 'node:crypto';
import type { BeginResult, IdempotencyStore, StoredResponse } from '../../../src/api/idempotency.js';

/**
 * In-process IdempotencyStore for shell tests that are not about idempotency storage (so they need no
 * database). The real stores (Postgres, Redis) are tested in idempotency.e2e.test.ts.
 */
export class MemoryIdempotencyStore implements IdempotencyStore {
  readonly kind = 'postgres' as const;
  private readonly records = new Map<
    string,
    { fingerprint: string; token: string; lockedUntil: number; response: StoredResponse | null }
  >();

  async begin(scope: string, fingerprint: string, options: { lockTtlMs: number }): Promise<BeginResult> {
    const now = Date.now();
    const existing = this.records.get(scope);
    if (existing?.response)
      return { kind: 'completed', fingerprint: existing.fingerprint, response: existing.response };
    if (existing && existing.lockedUntil > now)
      return { kind: 'in_flight', fingerprint: existing.fingerprint };
    const token = randomUUID();
    this.records.set(scope, { fingerprint, token, lockedUntil: now + options.lockTtlMs, response: null });
    return { kind: 'acquired', token };
  }

  async complete(scope: string, token: string, response: StoredResponse): Promise<void> {
    const record = this.records.get(scope);
    if (record?.token === token) record.response = response;
  }

  async release(scope: string, token: string): Promise<void> {
    if (this.records.get(scope)?.token === token && !this.records.get(scope)?.response)
      this.records.delete(scope);
  }

  async ping(): Promise<void> {}
}
