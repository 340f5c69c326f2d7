import { ChainStore } from '../chain/chainStore.js';
import { CHAIN_ALGORITHM, HASH_PATTERN } from '../chain/link.js';
import { type ChainAnchor, verifyChain } from '../chain/verifyChain.js';
import { isTenantId } from '../domain/ids.js';
import type { ProjectionsCommandDeps } from './projectionsCommands.js';

export const VERIFY_CHAIN_USAGE = 'verify --chain [--anchor TENANT:SEQ:HASH ...] [--format text|json]';

const MAX_ANCHORS = 1_000;

/** Parses `--anchor TENANT:SEQ:HASH` (as GET /v1/ledger/chain-head and the exports print them). */
export function parseAnchors(values: readonly string[]): ChainAnchor[] | { error: string } {
  if (values.length > MAX_ANCHORS) return { error: `at most ${MAX_ANCHORS} anchors` };
  const out: ChainAnchor[] = [];
  for (const value of values) {
    const [tenantId = '', seq = '', hash = '', ...rest] = value.split(':');
    if (rest.length > 0 || !isTenantId(tenantId)) {
      return { error: `--anchor ${value}: not TENANT:SEQ:HASH (bad tenant)` };
    }
    if (!/^(0|[1-9][0-9]{0,18})$/.test(seq)) return { error: `--anchor ${value}: SEQ must be a number` };
    if (!HASH_PATTERN.test(hash)) return { error: `--anchor ${value}: HASH must be 64 lowercase hex digits` };
    out.push({ tenantId, seq: BigInt(seq), hash });
  }
  return out;
}

/** `verify --chain`: recomputes every tenant's hash chain from the events (src/chain/verifyChain.ts). */
export async function verifyChainCommand(
  deps: Omit<ProjectionsCommandDeps, 'tenantId'>,
  options: { anchors: ChainAnchor[]; format: 'text' | 'json' },
): Promise<number> {
  const result = await verifyChain({
    store: deps.store,
    chain: new ChainStore(deps.db),
    anchors: options.anchors,
  });
  if (options.format === 'json') {
    deps.out.write(
      `${JSON.stringify(
        {
          ok: result.ok,
          algorithm: CHAIN_ALGORITHM,
          checkpoint: result.checkpoint.toString(),
          eventsVerified: result.eventsVerified,
          eventsNotYetLinked: result.eventsNotYetLinked,
          anchorsChecked: result.anchorsChecked,
          break: result.break && {
            ...result.break,
            position: result.break.position.toString(),
            seq: result.break.seq === null ? null : result.break.seq.toString(),
          },
          heads: result.heads.map((h) => ({ tenantId: h.tenantId, seq: h.seq.toString(), hash: h.hash })),
        },
        null,
        2,
      )}\n`,
    );
    return result.ok ? 0 : 1;
  }
  const lines: string[] = [];
  if (result.break) {
    const b = result.break;
    lines.push(
      `chain broken: ${b.kind}${b.position >= 0n ? ` at position ${b.position}` : ''}: ${b.message}`,
      `  ${result.eventsVerified} event(s) before it verified; nothing after it is trusted`,
    );
  } else {
    lines.push(
      `chain verified (${CHAIN_ALGORITHM}): ${result.eventsVerified} event(s) of ${result.heads.length} tenant(s) through position ${result.checkpoint}` +
        (result.anchorsChecked > 0 ? `, ${result.anchorsChecked} anchor(s) matched` : ''),
    );
    if (result.eventsNotYetLinked > 0) {
      lines.push(
        `  ${result.eventsNotYetLinked} event(s) after position ${result.checkpoint} not linked yet (the chainer links them when the app runs)`,
      );
    }
    for (const h of result.heads) lines.push(`  ${h.tenantId}:${h.seq}:${h.hash}`);
  }
  deps.out.write(`${lines.join('\n')}\n`);
  return result.ok ? 0 : 1;
}
