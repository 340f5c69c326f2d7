import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** pdftotext (Debian's poppler-utils, installed by .ci/run) on a PDF: its text, layout kept. */
export function pdfText(pdf: Buffer): string {
  const dir = mkdtempSync(join(tmpdir(), 'doc-'));
  try {
    const file = join(dir, 'd.pdf');
    writeFileSync(file, pdf);
    return execFileSync('pdftotext', ['-layout', file, '-'], { encoding: 'utf8' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** pdftoppm: the first page as PNG (to look at). */
export function pdfFirstPagePng(pdf: Buffer, out: string): void {
  const dir = mkdtempSync(join(tmpdir(), 'doc-'));
  try {
    const file = join(dir, 'd.pdf');
    writeFileSync(file, pdf);
    execFileSync('pdftoppm', ['-png', '-r', '80', '-singlefile', file, out.replace(/\.png$/, '')]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
