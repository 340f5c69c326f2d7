import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import split2 from 'split2';
import { CHAIN_ALGORITHM, ChainFold } from '../chain/link.js';
import { validateAppend } from '../eventstore/validation.js';
import {
  type ExportedEvent,
  ExportFormatError,
  type ExportHeader,
  type ExportTrailer,
  MAX_LINE_BYTES,
  parseHeader,
  parseLine,
} from './format.js';

/**
 * Reads an export file (format.ts) line by line in bounded memory (a line over MAX_LINE_BYTES is an
 * error, never buffered whole), gunzipping when the file starts with gzip's magic bytes.
 */

async function isGzip(path: string): Promise<boolean> {
  const handle = await open(path, 'r');
  try {
    const { bytesRead, buffer } = await handle.read(Buffer.alloc(2), 0, 2, 0);
    return bytesRead === 2 && buffer[0] === 0x1f && buffer[1] === 0x8b;
  } finally {
    await handle.close();
  }
}

async function lineStream(path: string): Promise<Readable> {
  const gzip = await isGzip(path);
  const lines = split2('\n', { maxLength: MAX_LINE_BYTES });
  const file = createReadStream(path);
  file.on('error', (error) => lines.destroy(error));
  if (!gzip) return file.pipe(lines);
  const gunzip = createGunzip();
  gunzip.on('error', (error) => lines.destroy(error));
  return file.pipe(gunzip).pipe(lines);
}

export interface ExportFile {
  header: ExportHeader;
  /** The file's events in order; ends after checking the trailer's count (not its checksum). */
  events(): AsyncGenerator<ExportedEvent>;
}

/** Opens the file for one pass over its events (each call of `events` reads it again). */
export async function openExport(path: string): Promise<ExportFile> {
  const header = await readHeader(path);
  return {
    header,
    async *events() {
      let line = 0;
      let count = 0;
      let trailer: ExportTrailer | undefined;
      for await (const text of await lineStream(path)) {
        line++;
        if (line === 1) continue;
        if (trailer) throw new ExportFormatError(line, 'content after the trailer');
        const parsed = parseLine(text as string, line);
        if (parsed.kind === 'trailer') {
          trailer = parsed.trailer;
          continue;
        }
        count++;
        yield parsed.event;
      }
      if (!trailer) throw new ExportFormatError(line, 'no trailer: the file is truncated');
      if (trailer.events !== count) {
        throw new ExportFormatError(
          line,
          `the trailer says ${trailer.events} events, the file holds ${count}`,
        );
      }
    },
  };
}

async function readHeader(path: string): Promise<ExportHeader> {
  for await (const text of await lineStream(path)) return parseHeader(text as string);
  throw new ExportFormatError(1, 'the file is empty');
}

export interface FileCheck {
  header: ExportHeader;
  trailer: ExportTrailer;
  events: number;
}

/**
 * One pass over the whole file before anything is written: every line parses, positions strictly
 * increase, the trailer's count matches and the SHA-256 of everything before the trailer is the one
 * it records. Throws ExportFormatError (naming the line) otherwise.
 */
export async function checkExport(path: string, onLine?: (events: number) => void): Promise<FileCheck> {
  const hash = createHash('sha256');
  let header: ExportHeader | undefined;
  let trailer: ExportTrailer | undefined;
  let line = 0;
  let events = 0;
  let previous: bigint | undefined;
  const chain = new ChainFold();
  for await (const text of await lineStream(path)) {
    line++;
    const current = text as string;
    if (line === 1) {
      header = parseHeader(current);
      hash.update(`${current}\n`, 'utf8');
      continue;
    }
    if (trailer) throw new ExportFormatError(line, 'content after the trailer');
    const parsed = parseLine(current, line);
    if (parsed.kind === 'trailer') {
      trailer = parsed.trailer;
      continue;
    }
    hash.update(`${current}\n`, 'utf8');
    const { position, streamName, revision, id, type, data, metadata } = parsed.event;
    try {
      // What an append would refuse is refused here, before anything is written.
      validateAppend(streamName, [{ id, type, data, metadata }], {
        expectedRevision: revision === 0n ? 'no_stream' : revision - 1n,
      });
    } catch (error) {
      throw new ExportFormatError(line, error instanceof Error ? error.message : String(error));
    }
    if (previous !== undefined && position <= previous) {
      throw new ExportFormatError(line, `position ${position} does not follow ${previous}`);
    }
    previous = position;
    chain.add(parsed.event);
    events++;
    if (events % 1_000 === 0) onLine?.(events);
  }
  if (!header) throw new ExportFormatError(1, 'the file is empty');
  if (!trailer) throw new ExportFormatError(line, 'no trailer: the file is truncated');
  if (trailer.events !== events) {
    throw new ExportFormatError(line, `the trailer says ${trailer.events} events, the file holds ${events}`);
  }
  const digest = hash.digest('hex');
  if (digest !== trailer.sha256) {
    throw new ExportFormatError(
      line,
      `checksum mismatch: the file's content hashes to ${digest}, the trailer records ${trailer.sha256}`,
    );
  }
  const last = previous === undefined ? null : previous.toString();
  if (last !== trailer.lastPosition) {
    throw new ExportFormatError(
      line,
      `the trailer's last position ${trailer.lastPosition} is not the last event's (${last})`,
    );
  }
  if (trailer.chain) {
    if (trailer.chain.algorithm !== CHAIN_ALGORITHM) {
      throw new ExportFormatError(
        line,
        `the trailer's chain uses ${trailer.chain.algorithm}; this version reads ${CHAIN_ALGORITHM}`,
      );
    }
    const folded = chain.heads();
    if (trailer.chain.heads.length + trailer.chain.headsOmitted !== folded.length) {
      throw new ExportFormatError(
        line,
        `the trailer names chain heads of ${trailer.chain.heads.length + trailer.chain.headsOmitted} tenant(s), the file's events are of ${folded.length}`,
      );
    }
    for (const h of trailer.chain.heads) {
      const mine = chain.head(h.tenantId);
      if (!mine || mine.seq.toString() !== h.seq || mine.hash !== h.hash) {
        throw new ExportFormatError(
          line,
          `the trailer's chain head of tenant ${h.tenantId} (${h.seq}:${h.hash.slice(0, 16)}…) is not the file's events' (${mine ? `${mine.seq}:${mine.hash.slice(0, 16)}…` : 'none'})`,
        );
      }
    }
  }
  onLine?.(events);
  return { header, trailer, events };
}
