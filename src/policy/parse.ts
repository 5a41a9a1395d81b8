// Parsing and validation of the policy file (schema version 1): the top level (version, allow, deny,
// workspace) and the `workspace:` section. Every problem becomes a PolicyIssue with a 1-based position and
// plain words; nothing here throws on any input. The parts, one file each: the YAML readers (yamlNodes.ts),
// one entry (entry.ts), its host pattern (hostPattern.ts), checks across entries (lint.ts), typo
// suggestions (suggest.ts).
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document } from 'yaml';
import { compilePolicy } from './decide';
import { parseEntry } from './entry';
import { crossChecks } from './lint';
import { unknownFieldMessage } from './suggest';
import type { ParseResult, Policy, PolicyIssue, Rule, RuleList, SourcePos, WorkspacePath, WorkspaceRules } from './types';
import { parseAskSetting, type AskSettings } from './ask';
import { parseWorkspacePath, WORKSPACE_FIELDS, writableWarning } from './workspace';
import { byPosition, Ctx, describe, EMPTY, rangeOf, scalarText, type Range } from './yamlNodes';

export const TOP_FIELDS = ['version', 'onUnknown', 'askTimeout', 'allow', 'deny', 'workspace'] as const;

function parseWorkspaceList(ctx: Ctx, list: 'protect' | 'writable', node: any): WorkspacePath[] {
  const where = `workspace.${list}`;
  const out: WorkspacePath[] = [];
  if (node === null || (isScalar(node) && node.value === null)) return out;
  if (!isSeq(node)) {
    ctx.workspaceError(`${where} must be a list of paths, like [".github/workflows/", "Makefile"], not ${describe(node)}`, rangeOf(node));
    return out;
  }
  node.items.forEach((raw: unknown, i: number) => {
    const it = ctx.resolve(raw);
    const text = scalarText(it);
    if (text === undefined) {
      ctx.workspaceError(`${where}[${i}]: expected a path, got ${describe(it)}`, rangeOf(it) ?? rangeOf(node));
      return;
    }
    const p = parseWorkspacePath(text);
    if ('error' in p) {
      ctx.workspaceError(`${where}[${i}]: ${p.error}`, rangeOf(it));
      return;
    }
    const pos = ctx.pos(rangeOf(it));
    const dup = out.find((x) => x.path === p.path);
    if (dup) ctx.warnAt(`${where}[${i}]: "${p.path}" is listed twice`, pos);
    else out.push({ path: p.path, dir: p.dir, text, pos });
    if (list === 'writable') {
      const w = writableWarning(p.path);
      if (w) ctx.warnAt(`${where}[${i}]: ${w}`, pos);
    }
  });
  return out;
}

function parseWorkspaceSection(ctx: Ctx, node: any, keyRange: Range): WorkspaceRules | undefined {
  if (node === null || (isScalar(node) && node.value === null)) return { protect: [], writable: [] };
  if (!isMap(node)) {
    ctx.workspaceError(`workspace must be a mapping with "protect" and/or "writable" lists, not ${describe(node)}`, rangeOf(node) ?? keyRange);
    return undefined;
  }
  const rules: WorkspaceRules = { protect: [], writable: [] };
  for (const pair of node.items as any[]) {
    const key = ctx.resolve(pair.key);
    const name = isScalar(key) ? String(key.value) : '';
    if (!(WORKSPACE_FIELDS as readonly string[]).includes(name)) {
      ctx.workspaceError(unknownFieldMessage('workspace', name, WORKSPACE_FIELDS), rangeOf(key));
      continue;
    }
    rules[name as 'protect' | 'writable'] = parseWorkspaceList(ctx, name as 'protect' | 'writable', ctx.resolve(pair.value));
  }
  for (const w of rules.writable) {
    if (rules.protect.some((p) => p.path === w.path)) {
      ctx.errors.push({ severity: 'error', message: `workspace: "${w.path}" is both protected and writable; keep it in one list`, pos: w.pos });
      ctx.workspaceErrors.push(ctx.errors[ctx.errors.length - 1]);
    }
  }
  if (ctx.workspaceErrors.length) return undefined;
  return rules;
}

interface Parsed {
  result: ParseResult;
  /** The workspace section as written (also when other parts of the file have errors). */
  workspace?: WorkspaceRules;
  /** Errors that leave the workspace section unreadable (YAML syntax errors included). */
  workspaceErrors: PolicyIssue[];
}

function parseInner(text: string): Parsed {
  const emptyPolicy = (warnings: PolicyIssue[]): Parsed => ({
    result: { errors: [{ severity: 'error', message: 'policy is empty: it needs at least "version: 1" and an "allow:" list', pos: EMPTY }], warnings },
    workspaceErrors: [],
  });
  if (typeof text !== 'string' || text.trim() === '') return emptyPolicy([]);
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true, keepSourceTokens: false });
  const ctx = new Ctx(lc, doc as Document, text.length);
  for (const e of doc.errors) {
    const msg = e.message.replace(/ at line \d+, column \d+:[\s\S]*$/, '');
    // An unclosed [ or { is reported where the parser gave up (often the end of the file): point at where it opens.
    const unclosed = /Flow (sequence|map)\b.*end with an? ([\]}])/.exec(e.message);
    const at = unclosed ? unclosedFlowStart(text, e.pos[0], unclosed[2] === ']' ? '[' : '{') : undefined;
    ctx.error(at !== undefined ? `YAML syntax error: this ${unclosed![2] === ']' ? '[' : '{'} is never closed (${msg})` : `YAML syntax error: ${msg}`, at !== undefined ? [at, at + 1] : e.pos);
  }
  for (const w of doc.warnings) ctx.warn(w.message.replace(/ at line \d+, column \d+:[\s\S]*$/, ''), w.pos);
  if (ctx.errors.length > 0) return { result: { errors: ctx.errors, warnings: ctx.warnings }, workspaceErrors: ctx.errors };
  const root = ctx.resolve(doc.contents);
  if (root === null || root === undefined || (isScalar(root) && root.value === null)) return emptyPolicy(ctx.warnings);
  if (!isMap(root)) {
    ctx.error(`the policy must be a mapping with "version", "allow" and "deny", not ${describe(root)}`, rangeOf(root));
    return { result: { errors: ctx.errors, warnings: ctx.warnings }, workspaceErrors: ctx.errors };
  }
  let version: number | undefined;
  let workspace: WorkspaceRules | undefined;
  const ask: AskSettings = {};
  const lists: Record<RuleList, Rule[]> = { allow: [], deny: [] };
  const keys: Record<string, SourcePos> = {};
  for (const pair of root.items) {
    const key = ctx.resolve(pair.key);
    const name = isScalar(key) ? String(key.value) : undefined;
    if (name === undefined) {
      ctx.error('top-level field names must be plain words', rangeOf(key));
      continue;
    }
    if (!(TOP_FIELDS as readonly string[]).includes(name)) {
      ctx.error(unknownFieldMessage('', name, TOP_FIELDS), rangeOf(key));
      continue;
    }
    keys[name] = ctx.pos(rangeOf(key));
    const value = ctx.resolve(pair.value);
    if (name === 'workspace') {
      workspace = parseWorkspaceSection(ctx, value, rangeOf(key));
      continue;
    }
    if (name === 'onUnknown' || name === 'askTimeout') {
      parseAskSetting(ctx, ask, name, value, rangeOf(key));
      continue;
    }
    if (name === 'version') {
      if (isScalar(value) && value.value === 1) version = 1;
      else ctx.error(`version: ${describe(value)} is not supported; this extension understands "version: 1"`, rangeOf(value) ?? rangeOf(key));
      if (version === undefined) version = 0;
      continue;
    }
    const list = name as RuleList;
    if (value === null || (isScalar(value) && value.value === null)) continue; // "allow:" with no entries
    if (!isSeq(value)) {
      ctx.error(`${list} must be a list of entries, like "- host: api.example.com", not ${describe(value)}`, rangeOf(value) ?? rangeOf(key));
      continue;
    }
    value.items.forEach((item: unknown, i: number) => {
      const node = ctx.resolve(item);
      const r = parseEntry(ctx, list, i, node);
      if (r) lists[list].push(r);
    });
  }
  if (version === undefined) ctx.error('missing "version: 1" at the top of the policy', [0, 0]);
  const ws = { workspace, workspaceErrors: byPosition(ctx.workspaceErrors) };
  if (ctx.errors.length > 0) return { result: { errors: byPosition(ctx.errors), warnings: byPosition(ctx.warnings), keys }, ...ws };
  const policy: Policy = { version: 1, allow: lists.allow, deny: lists.deny, ...ask };
  if (workspace) policy.workspace = workspace;
  crossChecks(ctx, policy);
  compilePolicy(policy);
  return { result: { policy, errors: [], warnings: byPosition(ctx.warnings), keys }, ...ws };
}

/**
 * Parses and validates a policy file. Returns the policy only when there are no errors; never throws.
 * The returned policy is pre-indexed for `decide`.
 */
export function parsePolicy(text: string): ParseResult {
  return parseSafely(text).result;
}

function parseSafely(text: string): Parsed {
  try {
    return parseInner(text);
  } catch (e) {
    const errors: PolicyIssue[] = [{ severity: 'error', message: `the policy could not be read: ${e instanceof Error ? e.message : String(e)}`, pos: EMPTY }];
    return { result: { errors, warnings: [] }, workspaceErrors: errors };
  }
}

/**
 * Only the `workspace:` section, for the engine: it must know which paths to protect also when other parts of
 * the file have errors (the proxy then blocks everything). `errors` are those that leave the section unreadable;
 * `rules` is undefined when the file has no such section (the built-in protections apply).
 */
export function parseWorkspaceRules(text: string): { rules?: WorkspaceRules; errors: PolicyIssue[] } {
  const p = parseSafely(text);
  return p.workspaceErrors.length ? { errors: p.workspaceErrors } : { rules: p.workspace, errors: [] };
}

/**
 * The offset of the last `open` bracket before `before` that no closing bracket matches (quotes and comments
 * skipped), or undefined.
 */
export function unclosedFlowStart(text: string, before: number, open: '[' | '{'): number | undefined {
  const close = open === '[' ? ']' : '}';
  const stack: number[] = [];
  let quote: string | undefined;
  for (let i = 0; i < Math.min(before, text.length); i++) {
    const c = text[i];
    if (quote) {
      if (c === '\\' && quote === '"') i++;
      else if (c === quote) quote = undefined;
      else if (c === '\n') quote = undefined;
      continue;
    }
    if (c === '"' || c === "'") quote = c;
    else if (c === '#' && (i === 0 || /\s/.test(text[i - 1]))) {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (c === open) stack.push(i);
    else if (c === close) stack.pop();
  }
  return stack.length ? stack[stack.length - 1] : undefined;
}
