// A minimal source-map (v3) reader: maps a generated line/column of dist/*.js back to the original file and
// line, to name hot spots as src/proxy/server.ts:123 instead of proxy.js:4567.
import * as fs from 'node:fs';

const B64 = new Map([...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'].map((c, i) => [c, i]));

interface Seg {
  /** Generated column. */
  col: number;
  src: number;
  line: number;
}

export class SourceMap {
  private readonly lines: Seg[][] = [];
  readonly sources: string[];

  constructor(file: string) {
    const m = JSON.parse(fs.readFileSync(file, 'utf8')) as { sources: string[]; mappings: string };
    this.sources = m.sources;
    let src = 0;
    let line = 0;
    for (const gl of m.mappings.split(';')) {
      const segs: Seg[] = [];
      let gcol = 0;
      for (const part of gl.split(',')) {
        if (!part) continue;
        const v = decodeVlq(part);
        gcol += v[0];
        if (v.length >= 4) {
          src += v[1];
          line += v[2];
          segs.push({ col: gcol, src, line });
        }
      }
      this.lines.push(segs);
    }
  }

  /** 0-based generated line/column → "source:line" (1-based line), or undefined. */
  lookup(line: number, column: number): { source: string; line: number } | undefined {
    const segs = this.lines[line];
    if (!segs || segs.length === 0) return undefined;
    let best: Seg | undefined;
    for (const s of segs) {
      if (s.col <= column) best = s;
      else break;
    }
    best ??= segs[0];
    return { source: this.sources[best.src], line: best.line + 1 };
  }
}

function decodeVlq(s: string): number[] {
  const out: number[] = [];
  let value = 0;
  let shift = 0;
  for (const ch of s) {
    const d = B64.get(ch);
    if (d === undefined) break;
    value += (d & 31) << shift;
    if (d & 32) shift += 5;
    else {
      out.push(value & 1 ? -(value >>> 1) : value >>> 1);
      value = 0;
      shift = 0;
    }
  }
  return out;
}
