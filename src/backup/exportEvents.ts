import { createHash } from 'node:crypto';
import { closeSync, createWriteStream, existsSync, fsyncSync, openSync, renameSync, rmSync } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { CHAIN_ALGORITHM, ChainFold, type ChainHead } from '../chain/link.js';
import type { EventStore } from '../eventstore/port.js';
import { eventLine, exportChain, FORMAT, FORMAT_VERSION, headerLine, trailerLine } from './format.js';

export interface ExportProgress {
  /** Events written so far. */
  events: number;
  /** Source position reached, and the head the export stops at (taken when it began). */
  position: bigint;
  head: bigint;
}

export interface ExportOptions {
  store: EventStore;
  /** Where the file goes; `.gz` compresses it. Written as `<out>.partial`, renamed when complete. */
  out: string;
  /** Only this tenant's events (by metadata.tenantId); omitted: all. */
  tenant?: string;
  /** Events per store read. */
  pageSize?: number;
  onProgress?: (progress: ExportProgress) => void;
  clock?: () => Date;
}

export interface ExportResult {
  events: number;
  lastPosition: bigint | null;
  head: bigint;
  sha256: string;
  out: string;
  /** Each tenant's chain head after the exported events (what the trailer records). */
  chainHeads: ChainHead[];
}

/**
 * Streams the event log, up to the head it finds when it starts, into an export file (format.ts):
 * a consistent cut even beside a live app (later appends are not included), in bounded memory (one
 * page of events at a time, with the file's backpressure). The file appears under its name only once
 * it is complete and on disk; an interrupted export leaves at most `<out>.partial`.
 */
export async function exportEvents(options: ExportOptions): Promise<ExportResult> {
  const { store, out } = options;
  if (existsSync(out)) throw new Error(`${out} exists: export to a new file`);
  const pageSize = options.pageSize ?? 1_000;
  const head = await store.headPosition();
  const hash = createHash('sha256');
  let events = 0;
  let lastPosition: bigint | null = null;
  let digest = '';
  // The file's own events folded into each tenant's chain (link.ts): the same heads the chainer
  // reaches for these events, whatever the store, so the export can be anchored and checked later.
  const chain = new ChainFold();
  const clock = options.clock ?? (() => new Date());

  async function* lines(): AsyncGenerator<string> {
    const emit = (text: string): string => {
      const line = `${text}\n`;
      hash.update(line, 'utf8');
      return line;
    };
    yield emit(
      headerLine({
        format: FORMAT,
        version: FORMAT_VERSION,
        exportedAt: clock().toISOString(),
        source: { eventStore: store.kind, head: head.toString() },
        tenant: options.tenant ?? null,
      }),
    );
    let after: bigint | undefined;
    while (head >= 0n) {
      const page = await store.readAll({ ...(after !== undefined ? { after } : {}), maxCount: pageSize });
      let done = page.length === 0;
      for (const event of page) {
        if (event.position > head) {
          done = true;
          break;
        }
        after = event.position;
        if (options.tenant !== undefined && event.metadata.tenantId !== options.tenant) continue;
        events++;
        lastPosition = event.position;
        chain.add(event);
        yield emit(eventLine(event));
      }
      options.onProgress?.({ events, position: after ?? -1n, head });
      if (done || after === head) break;
    }
    digest = hash.digest('hex');
    yield `${trailerLine({
      end: true,
      events,
      lastPosition: lastPosition === null ? null : String(lastPosition),
      sha256: digest,
      chain: exportChain(CHAIN_ALGORITHM, chain.heads()),
    })}\n`;
  }

  const partial = `${out}.partial`;
  rmSync(partial, { force: true });
  try {
    const file = createWriteStream(partial, { flags: 'wx' });
    if (out.endsWith('.gz')) await pipeline(Readable.from(lines()), createGzip(), file);
    else await pipeline(Readable.from(lines()), file);
    const fd = openSync(partial, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(partial, out);
  } catch (error) {
    rmSync(partial, { force: true });
    throw error;
  }
  return { events, lastPosition, head, sha256: digest, out, chainHeads: chain.heads() };
}
