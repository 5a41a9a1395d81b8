// The YAML side of parsing and editing: positions (1-based, as editors show them), the issue collector,
// readers of scalars, lists and booleans that report what they found in plain words, and the writer of a
// scalar. Nothing here knows the schema.
import { LineCounter, isAlias, isMap, isPair, isScalar, isSeq, parse as parseYaml, type Document } from 'yaml';
import type { PolicyIssue, SourcePos } from './types';

export type Range = readonly [number, number, number?] | null | undefined;

/** Collects the issues of one parse, with positions from the YAML document's line counter. */
export class Ctx {
  errors: PolicyIssue[] = [];
  warnings: PolicyIssue[] = [];
  /** The errors that make the `workspace:` section unreadable (a subset of errors). */
  workspaceErrors: PolicyIssue[] = [];
  constructor(
    readonly lc: LineCounter,
    readonly doc: Document,
    readonly textLength: number,
  ) {}

  pos(range: Range): SourcePos {
    if (!range) return { line: 1, col: 1, endLine: 1, endCol: 1 };
    const s = Math.max(0, Math.min(range[0], this.textLength));
    const e = Math.max(s, Math.min(range[1], this.textLength));
    const a = this.lc.linePos(s);
    const b = this.lc.linePos(e);
    return { line: a.line, col: a.col, endLine: b.line, endCol: b.col };
  }
  error(message: string, range: Range): void {
    this.errors.push({ severity: 'error', message, pos: this.pos(range) });
  }
  workspaceError(message: string, range: Range): void {
    this.error(message, range);
    this.workspaceErrors.push(this.errors[this.errors.length - 1]);
  }
  warn(message: string, range: Range): void {
    this.warnings.push({ severity: 'warning', message, pos: this.pos(range) });
  }
  warnAt(message: string, pos: SourcePos): void {
    this.warnings.push({ severity: 'warning', message, pos });
  }
  resolve(node: unknown): any {
    if (isAlias(node)) {
      try {
        return node.resolve(this.doc) ?? null;
      } catch {
        return null;
      }
    }
    return node;
  }
}

export function rangeOf(node: any): Range {
  return node && Array.isArray(node.range) ? (node.range as Range) : undefined;
}

/** Where a collection's content really ends (before trailing comments/blank lines). */
export function contentEnd(node: any): number {
  if (!node) return 0;
  if (isMap(node) || isSeq(node)) {
    if (node.flow) return node.range ? node.range[1] : 0;
    let end = node.range ? node.range[0] : 0;
    for (const it of node.items as any[]) {
      if (isPair(it)) {
        const v: any = it.value;
        const k: any = it.key;
        if (v && v.range) end = Math.max(end, contentEnd(v));
        else if (k && k.range) end = Math.max(end, k.range[1]);
      } else if (it && it.range) end = Math.max(end, contentEnd(it));
    }
    return end;
  }
  return node.range ? node.range[1] : 0;
}

/** How a value is named in an error ("a list", "nothing", the text itself). */
export function describe(v: unknown): string {
  if (v === null || v === undefined) return 'nothing';
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (isMap(v)) return 'a mapping';
  if (isSeq(v)) return 'a list';
  if (isScalar(v)) return describe(v.value);
  return 'an unsupported value';
}

/** The text of a scalar (plain numbers keep their source text), or undefined. */
export function scalarText(node: any): string | undefined {
  if (!isScalar(node)) return undefined;
  if (typeof node.value === 'string') return node.value;
  // Plain scalars YAML reads as numbers ("host: 2130706433") keep their source text.
  if (typeof node.value === 'number' && typeof node.source === 'string') return node.source;
  return undefined;
}

/** A list of text scalars (`where` names it in errors); undefined when it is not one or is empty. */
export function parseStringList(ctx: Ctx, where: string, node: any, example: string): { items: string[]; nodes: any[] } | undefined {
  node = ctx.resolve(node);
  if (!isSeq(node)) {
    ctx.error(`${where} must be a list, like ${example}`, rangeOf(node));
    return undefined;
  }
  const items: string[] = [];
  const nodes: any[] = [];
  for (const raw of node.items) {
    const it = ctx.resolve(raw);
    const s = scalarText(it);
    if (s === undefined) {
      ctx.error(`${where}: expected text, got ${describe(it)}`, rangeOf(it) ?? rangeOf(node));
      continue;
    }
    items.push(s);
    nodes.push(it);
  }
  if (node.items.length === 0) {
    ctx.error(`${where} is empty, so the entry would match nothing; remove "${where.split('.').pop()}" to match any`, rangeOf(node));
    return undefined;
  }
  return { items, nodes };
}

export function parseBool(ctx: Ctx, where: string, node: any): boolean | undefined {
  node = ctx.resolve(node);
  if (isScalar(node) && typeof node.value === 'boolean') return node.value;
  ctx.error(`${where} must be true or false, not ${describe(node)}`, rangeOf(node));
  return undefined;
}

/** Issues in file order (stable for equal positions). */
export function byPosition(issues: PolicyIssue[]): PolicyIssue[] {
  return issues.map((x, i) => [x, i] as const).sort(([a, i], [b, j]) => a.pos.line - b.pos.line || a.pos.col - b.pos.col || i - j).map(([x]) => x);
}

/** Where issues about the file as a whole point. */
export const EMPTY: SourcePos = { line: 1, col: 1, endLine: 1, endCol: 1 };

/** A YAML scalar for `s`: plain when that reads back as the same string, else double-quoted. */
export function yamlScalar(s: string, quoteWildcards = false): string {
  if (quoteWildcards && s.startsWith('*')) return JSON.stringify(s);
  if (/^[A-Za-z0-9_][A-Za-z0-9._\-/:]*$/.test(s) && !s.includes(': ') && !/:$/.test(s)) {
    try {
      if (parseYaml(s) === s) return s;
    } catch {}
  }
  return JSON.stringify(s);
}
