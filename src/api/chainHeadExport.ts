import type { ChainStore } from '../chain/chainStore.js';
import { CHAIN_ALGORITHM } from '../chain/link.js';

/**
 * The chain head an accountant's CSV export carries (docs/guarantees.md, "Tamper-evident log"): the
 * tenant's hash-chain head at the position the export is pinned to (or the current one for exports
 * not pinned to a position), as the file's last line and in a response header, so whoever keeps the
 * file keeps an anchor for `verify --chain --anchor`. The line is one CSV field starting with `#` (no
 * commas), which spreadsheets show as a last row and CSV readers skip as a comment (pandas
 * `comment='#'`, csvkit, R).
 */
export const CHAIN_HEAD_HEADER = 'x-ledger-chain-head';

export interface ExportChainHead {
  /** `tenant:seq:hash`, or null when none of the tenant's events is linked yet. */
  anchor: string | null;
  /** The line the file ends with (without its line break). */
  line: string;
}

export async function exportChainHead(
  chain: ChainStore,
  tenantId: string,
  pinnedTo?: bigint,
): Promise<ExportChainHead> {
  const [through, head] = await Promise.all([
    chain.checkpoint(),
    pinnedTo === undefined ? chain.head(tenantId) : chain.headAt(tenantId, pinnedTo),
  ]);
  const anchor = head ? `${tenantId}:${head.seq}:${head.hash}` : null;
  const lag =
    pinnedTo !== undefined && through < pinnedTo
      ? `; the export reaches position ${pinnedTo}: the events after ${through} are not linked yet`
      : '';
  const line = anchor
    ? `# ledger chain head ${anchor} (${CHAIN_ALGORITHM}; event at position ${head!.position}; linked through position ${through}${lag})`
    : `# ledger chain head: none (no event of tenant ${tenantId} linked yet; linked through position ${through}${lag})`;
  return { anchor, line };
}
