import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GENESIS_HASH, linkHash } from '../../src/chain/link.js';
import { verifyChain } from '../../src/chain/verifyChain.js';
import { type ChainFeature, createChainFeature } from '../../src/chainFeature.js';
import { MemoryCheckpointStore } from '../../src/commands/checkpointStore.js';
import { createDocumentsFeature } from '../../src/documentsFeature.js';
import { token } from '../api/support/harness.js';
import { client, type RealStack, startRealStack } from '../api/support/realStack.js';

/**
 * The chain head over HTTP against the real stack with the chainer running: what GET
 * /v1/ledger/chain-head answers is the fold of the tenant's events (recomputed here from the events,
 * not read from the chain tables), per tenant, at a position, and in the OpenAPI document.
 */
const A = 'chain_a';
const B = 'chain_b';

describe(`chain head over HTTP (${process.env.DATABASE_URL ? 'Postgres' : 'PGlite'})`, () => {
  let s: RealStack;
  let feature: ChainFeature;
  let call: ReturnType<typeof client>;
  const tok: Record<string, string> = {};
  let last = 0n;

  beforeAll(async () => {
    s = await startRealStack({
      features: (parts) => {
        feature = createChainFeature({ db: parts.db.db, store: parts.store, registry: parts.registry });
        feature.start();
        // The documents' routes with the chain: the closing-balances CSV carries the head.
        const documents = createDocumentsFeature({
          db: parts.db.db,
          store: parts.store,
          handler: parts.service.handler,
          checkpoints: new MemoryCheckpointStore(),
          chain: feature.chain,
        });
        return { routes: [...feature.routes, ...documents.routes], close: () => feature.stop() };
      },
    });
    call = client(s.baseUrl);
    tok.financeA = await token(A, 'fin_a', 'finance_admin');
    tok.financeB = await token(B, 'fin_b', 'finance_admin');
    tok.tenantAdminA = await token(A, 'adm_a', 'tenant_admin');
  }, 180_000);
  afterAll(() => s?.close());

  const adjust = async (tenantToken: string, key: string, amount: number) => {
    const res = await call('POST', '/v1/adjustments', {
      token: tenantToken,
      key,
      body: { account: 'student:stu_c:wallet', direction: 'credit', amount, currency: 'usd', reason: 'seed' },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    last = BigInt(String(res.body.position));
  };

  /** The tenant's chain recomputed from the store's events alone. */
  const recomputed = async (tenantId: string) => {
    let hash = GENESIS_HASH;
    let seq = -1n;
    for (const e of (await s.events()).filter((x) => x.metadata.tenantId === tenantId)) {
      seq++;
      hash = linkHash(hash, seq, e);
    }
    return { seq, hash };
  };

  it('answers the head of the caller’s tenant: the fold of its events, once they are linked', async () => {
    const before = await call('GET', '/v1/ledger/chain-head', { token: tok.financeA! });
    expect(before.status).toBe(200);
    expect(before.body).toMatchObject({
      tenantId: A,
      eventsLinked: '0',
      seq: null,
      hash: null,
      anchor: null,
    });

    await adjust(tok.financeA!, 'a-1', 1_000);
    await adjust(tok.financeB!, 'b-1', 2_000);
    await adjust(tok.financeA!, 'a-2', 300);
    await feature.chainer.waitForPosition(last, 20_000);

    const a = await call('GET', '/v1/ledger/chain-head', { token: tok.financeA! });
    const b = await call('GET', '/v1/ledger/chain-head', { token: tok.financeB! });
    const wantA = await recomputed(A);
    const wantB = await recomputed(B);
    expect(wantA.seq).toBeGreaterThan(0n);
    expect(a.body).toMatchObject({
      tenantId: A,
      algorithm: 'sha256-jcs-v1',
      seq: String(wantA.seq),
      eventsLinked: String(wantA.seq + 1n),
      hash: wantA.hash,
      anchor: `${A}:${wantA.seq}:${wantA.hash}`,
    });
    expect(BigInt(String(a.body.chainedThrough))).toBeGreaterThanOrEqual(last);
    expect(BigInt(String(a.body.storeHead))).toBeGreaterThanOrEqual(last);
    expect(b.body).toMatchObject({ tenantId: B, seq: String(wantB.seq), hash: wantB.hash });
    expect(b.body.hash).not.toBe(a.body.hash);

    // The anchor it printed verifies the whole store.
    const verdict = await verifyChain({
      store: s.store,
      chain: feature.chain,
      anchors: [
        { tenantId: A, seq: wantA.seq, hash: wantA.hash },
        { tenantId: B, seq: wantB.seq, hash: wantB.hash },
      ],
    });
    expect(verdict).toMatchObject({ ok: true, anchorsChecked: 2 });
  });

  it('answers the head at or before a position (what an export pinned there names)', async () => {
    const events = (await s.events()).filter((e) => e.metadata.tenantId === A);
    const first = events[0]!;
    const res = await call('GET', `/v1/ledger/chain-head?atPosition=${first.position}`, {
      token: tok.financeA!,
    });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      seq: '0',
      position: String(first.position),
      hash: linkHash(GENESIS_HASH, 0n, first),
    });
    const tooFar = await call('GET', '/v1/ledger/chain-head?atPosition=9999999999999999999', {
      token: tok.financeA!,
    });
    expect(tooFar.status).toBe(400);
    const notAPosition = await call('GET', '/v1/ledger/chain-head?atPosition=-1', { token: tok.financeA! });
    expect(notAPosition.status).toBe(400);
  });

  it("ends the accountant's CSV exports with the chain head at their position, and names it in a header", async () => {
    await feature.chainer.waitForPosition(await s.store.headPosition(), 20_000);
    const csv = async (path: string) => {
      const res = await fetch(`${s.baseUrl}${path}`, {
        headers: { authorization: `Bearer ${tok.financeA}` },
      });
      expect(res.status, path).toBe(200);
      const lines = (await res.text()).trimEnd().split(/\r?\n/);
      return { res, lines, last: lines.at(-1)! };
    };
    for (const path of ['/v1/journal.csv', '/v1/accounts/student:stu_c:wallet/statement.csv']) {
      const { res, lines, last } = await csv(path);
      const pinned = res.headers.get('x-ledger-position')!;
      const head = await call('GET', `/v1/ledger/chain-head?atPosition=${pinned}`, { token: tok.financeA! });
      expect(head.body.anchor).toMatch(new RegExp(`^${A}:\\d+:[0-9a-f]{64}$`));
      expect(res.headers.get('x-ledger-chain-head'), path).toBe(head.body.anchor);
      expect(last, path).toBe(
        `# ledger chain head ${head.body.anchor} (sha256-jcs-v1; event at position ${head.body.position}; linked through position ${head.body.chainedThrough})`,
      );
      // One field, no commas: a CSV reader sees a one-column row or (comment '#') nothing.
      expect(last).not.toContain(',');
      expect(lines.length).toBeGreaterThan(2);
    }
    const balances = await csv('/v1/ledger/balances.csv?asOf=2100-01-01T00:00:00Z');
    const current = await call('GET', '/v1/ledger/chain-head', { token: tok.financeA! });
    expect(balances.res.headers.get('x-ledger-chain-head')).toBe(current.body.anchor);
    expect(balances.last).toContain(`# ledger chain head ${current.body.anchor} `);
    // Another tenant's export names its own head.
    const other = await fetch(`${s.baseUrl}/v1/journal.csv`, {
      headers: { authorization: `Bearer ${tok.financeB}` },
    });
    expect(other.headers.get('x-ledger-chain-head')).toMatch(new RegExp(`^${B}:`));
  });

  it('is for finance admins only, and in the OpenAPI document', async () => {
    const res = await call('GET', '/v1/ledger/chain-head', { token: tok.tenantAdminA! });
    expect(res.status).toBe(403);
    const doc = (await (await fetch(`${s.baseUrl}/docs/json`)).json()) as {
      paths: Record<string, Record<string, { operationId?: string }>>;
      components: { schemas: Record<string, unknown> };
    };
    expect(doc.paths['/v1/ledger/chain-head']?.get?.operationId).toBe('getLedgerChainHead');
    expect(JSON.stringify(doc.components.schemas)).toContain('chainedThrough');
  });
});
