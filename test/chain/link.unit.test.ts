import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ChainFold, GENESIS_HASH, linkDocument, linkHash } from '../../src/chain/link.js';

/**
 * The link's definition is a format: every chain ever written and every anchor an auditor holds depend
 * on these exact bytes, so they are pinned here (a change needs a new algorithm name, not an edit).
 */
const event = {
  id: '2f1c6a59-43a4-5d0e-9a53-0c7f2d3b8e11',
  type: 'WalletToppedUp',
  streamName: 'wallet-acme.stu_1',
  revision: 3n,
  data: { amount: 1500, currency: 'eur', z: [1, 'two', null], a: { y: true, b: 'é' } },
  metadata: {
    tenantId: 'acme',
    correlationId: 'c-1',
    causationId: 'c-1',
    actor: { id: 'svc', role: 'service' as const },
    idempotencyKey: 'k-1',
    occurredAt: '2026-12-04T10:00:00.000Z',
    schemaVersion: 1,
  },
};

describe('chain link (sha256-jcs-v1)', () => {
  it('hashes the RFC 8785 canonical JSON of the link document, byte for byte', () => {
    const text = linkDocument(GENESIS_HASH, 0n, event);
    expect(text).toBe(
      `{"data":{"a":{"b":"é","y":true},"amount":1500,"currency":"eur","z":[1,"two",null]},"id":"2f1c6a59-43a4-5d0e-9a53-0c7f2d3b8e11","metadata":{"actor":{"id":"svc","role":"service"},"causationId":"c-1","correlationId":"c-1","idempotencyKey":"k-1","occurredAt":"2026-12-04T10:00:00.000Z","schemaVersion":1,"tenantId":"acme"},"prev":"${GENESIS_HASH}","revision":"3","seq":"0","streamName":"wallet-acme.stu_1","tenantId":"acme","type":"WalletToppedUp","v":1}`,
    );
    const hash = linkHash(GENESIS_HASH, 0n, event);
    expect(hash).toBe(createHash('sha256').update(text, 'utf8').digest('hex'));
    // Computed outside this code base (Python's hashlib over the text above).
    expect(hash).toBe('f0a0c54571fed39f444590cc90e4c5833a7fdbbc04495bb464225dabbb85db09');
  });

  it('changes with every field it covers, and with the previous link', () => {
    const base = linkHash(GENESIS_HASH, 0n, event);
    const variants = [
      linkHash('1'.repeat(64), 0n, event),
      linkHash(GENESIS_HASH, 1n, event),
      linkHash(GENESIS_HASH, 0n, { ...event, id: '2f1c6a59-43a4-5d0e-9a53-0c7f2d3b8e12' }),
      linkHash(GENESIS_HASH, 0n, { ...event, type: 'WalletAdjusted' }),
      linkHash(GENESIS_HASH, 0n, { ...event, streamName: 'wallet-acme.stu_2' }),
      linkHash(GENESIS_HASH, 0n, { ...event, revision: 4n }),
      linkHash(GENESIS_HASH, 0n, { ...event, data: { ...event.data, amount: 1501 } }),
      linkHash(GENESIS_HASH, 0n, { ...event, metadata: { ...event.metadata, idempotencyKey: 'k-2' } }),
      linkHash(GENESIS_HASH, 0n, { ...event, metadata: { ...event.metadata, tenantId: 'globex' } }),
    ];
    expect(new Set([base, ...variants]).size).toBe(variants.length + 1);
    // Key order and whitespace are not content: the canonical form is the same.
    const reordered = {
      ...event,
      data: { z: [1, 'two', null], a: { b: 'é', y: true }, currency: 'eur', amount: 1500 },
    };
    expect(linkHash(GENESIS_HASH, 0n, reordered)).toBe(base);
  });

  it('folds each tenant into its own chain, dense from 0', () => {
    const fold = new ChainFold();
    const a0 = fold.add(event);
    const b0 = fold.add({ ...event, metadata: { ...event.metadata, tenantId: 'globex' } });
    const a1 = fold.add({ ...event, revision: 4n });
    expect([a0.seq, b0.seq, a1.seq]).toEqual([0n, 0n, 1n]);
    expect(a1.hash).toBe(linkHash(a0.hash, 1n, { ...event, revision: 4n }));
    expect(fold.heads().map((h) => h.tenantId)).toEqual(['acme', 'globex']);
    expect(() => linkHash('x', 0n, event)).toThrow(/prev/);
  });
});
