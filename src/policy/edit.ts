// Comment-preserving edits of the policy text: what quick fixes and the sidebar call.
// Edits splice the original text (untouched bytes stay byte-for-byte); only unusual layouts (flow-style
// maps, odd indentation) fall back to re-rendering the document with the yaml library, which still keeps
// comments but may reformat. One file on purpose: every edit (add, update, remove, disable, move) runs the
// same load → locate the entry → splice or re-render steps, and they share the helpers that find lines.
import { LineCounter, isMap, isPair, isScalar, isSeq, parseDocument, type Document } from 'yaml';
import { parseHostPattern } from './hostPattern';
import { starterPolicy } from './starter';
import { contentEnd, yamlScalar } from './yamlNodes';
import { compileGlob } from './path';
import type { AllowSpec, RuleList } from './types';

export interface EditResult {
  text: string;
}

function flowList(items: string[], quote: boolean): string {
  return `[${items.map((x) => (quote ? JSON.stringify(x) : yamlScalar(x))).join(', ')}]`;
}

/** The text to write after "host:" for a spec, validated. */
function hostValue(spec: AllowSpec, list: RuleList): string {
  if (!spec || typeof spec.host !== 'string') throw new Error('A policy entry needs a host');
  const raw = spec.host.trim();
  // "::1" alone is an IPv6 address, not host "" with port 1.
  const p = parseHostPattern(raw.includes(':') && !raw.startsWith('[') && raw.split(':').length > 2 ? `[${raw}]` : raw, { list });
  if ('error' in p) throw new Error(`Cannot write host: ${p.error}`);
  const port = spec.port ?? p.port;
  if (port !== undefined && (!Number.isInteger(port) || port < 1 || port > 65535)) throw new Error(`Port ${port} is out of range (1-65535)`);
  let h = p.text;
  if (p.kind === 'ip' && h.includes(':') && !h.startsWith('[')) h = `[${h}]`;
  return port === undefined ? h : `${h}:${port}`;
}

interface Field {
  key: string;
  value: string;
}

function specFields(spec: AllowSpec, list: RuleList): Field[] {
  const out: Field[] = [{ key: 'host', value: yamlScalar(hostValue(spec, list), true) }];
  if (spec.methods && spec.methods.length > 0) out.push({ key: 'methods', value: flowList(normMethods(spec.methods), false) });
  if (spec.paths && spec.paths.length > 0) out.push({ key: 'paths', value: flowList(normPaths(spec.paths), true) });
  if (list === 'allow' && spec.tcp && spec.tcp.length > 0) out.push({ key: 'tcp', value: `[${normPorts(spec.tcp).join(', ')}]` });
  if (list === 'allow') {
    if (spec.private) out.push({ key: 'private', value: 'true' });
    if (spec.intercept === false) out.push({ key: 'intercept', value: 'false' });
  }
  return out;
}

function normPorts(p: number[]): number[] {
  for (const n of p) if (!Number.isInteger(n) || n < 1 || n > 65535) throw new Error(`Port ${n} is out of range (1-65535)`);
  return [...new Set(p)].sort((a, b) => a - b);
}

function normMethods(m: string[]): string[] {
  return [...new Set(m.map((x) => x.trim().toUpperCase()).filter((x) => x !== ''))];
}

function normPaths(p: string[]): string[] {
  const out: string[] = [];
  for (const x of p) {
    const c = compileGlob(x.trim());
    if ('error' in c) throw new Error(`Cannot write path: ${c.error}`);
    if (!out.includes(c.glob)) out.push(c.glob);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Loading and text helpers

interface Loaded {
  text: string;
  doc: Document;
  root: any;
}

function load(text: string | undefined): Loaded {
  let t = typeof text === 'string' && text.trim() !== '' ? text : starterPolicy();
  let doc = parseDocument(t, { keepSourceTokens: false });
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    const lc = new LineCounter();
    parseDocument(t, { lineCounter: lc });
    const lp = lc.linePos(e.pos[0]);
    const msg = e.message.replace(/ at line \d+, column \d+:[\s\S]*$/, '');
    throw new Error(`The policy file is not valid YAML (line ${lp.line}, column ${lp.col}: ${msg}); fix it before editing`);
  }
  if (doc.contents === null || (isScalar(doc.contents) && doc.contents.value === null)) {
    // Only comments: keep them and add the minimal skeleton below.
    const nl = eol(t);
    t = t + (t.endsWith('\n') ? '' : nl) + `version: 1${nl}allow:${nl}`;
    doc = parseDocument(t);
  }
  if (!isMap(doc.contents)) throw new Error('The policy file must be a mapping with "version", "allow" and "deny"; fix it before editing');
  return { text: t, doc, root: doc.contents };
}

function lineStart(t: string, off: number): number {
  return t.lastIndexOf('\n', off - 1) + 1;
}

/** End of the line's content (before "\n" or "\r\n"). */
function lineEnd(t: string, off: number): number {
  const i = t.indexOf('\n', off);
  if (i < 0) return t.length;
  return i > 0 && t[i - 1] === '\r' && i - 1 >= off ? i - 1 : i;
}

/** End of a whole-line span that ends at `off`: just past its newline (or end of text). */
function afterLine(t: string, off: number): number {
  const i = t.indexOf('\n', off);
  return i < 0 ? t.length : i + 1;
}

/** The file's line break style. */
function eol(t: string): string {
  return t.includes('\r\n') ? '\r\n' : '\n';
}

function splice(t: string, start: number, end: number, insert: string): string {
  return t.slice(0, start) + insert + t.slice(end);
}

function findPair(map: any, key: string): any {
  return (map.items as any[]).find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === key);
}

function getList(l: Loaded, list: RuleList): any {
  const pair = findPair(l.root, list);
  return pair ? pair.value : undefined;
}

function getItem(l: Loaded, list: RuleList, index: number): any {
  const seq = getList(l, list);
  if (!isSeq(seq) || !Number.isInteger(index) || index < 0 || index >= seq.items.length) {
    throw new Error(`There is no ${list}[${index}] in the policy file`);
  }
  return seq.items[index];
}

/** For a block sequence item: its dash indentation, content indentation and the offset of its line. */
function itemLayout(t: string, item: any): { dash: string; content: string; start: number } | undefined {
  if (!item || !item.range) return undefined;
  const cs = item.range[0];
  const ls = lineStart(t, cs);
  const m = /^( *)-( +)$/.exec(t.slice(ls, cs));
  if (!m) return undefined;
  return { dash: m[1], content: ' '.repeat(cs - ls), start: ls };
}

function keyIndent(t: string, key: any): string {
  const ls = lineStart(t, key.range[0]);
  return ' '.repeat(key.range[0] - ls);
}

function rerender(doc: Document): EditResult {
  return { text: doc.toString() };
}

// ---------------------------------------------------------------------------------------------------
// Reading entries back (structurally, even when the rest of the file has schema errors)

interface EntryShape {
  key: string;
  disabled: boolean;
}

function entryShape(item: any): EntryShape | undefined {
  if (!isMap(item)) return undefined;
  const hostPair = findPair(item, 'host');
  if (!hostPair || !isScalar(hostPair.value)) return undefined;
  const hp = parseHostPattern(String(hostPair.value.value), { list: 'deny' });
  if ('error' in hp) return undefined;
  const strList = (name: string): string[] | undefined => {
    const p = findPair(item, name);
    if (!p || !isSeq(p.value)) return undefined;
    return (p.value.items as any[]).map((x) => (isScalar(x) ? String(x.value) : ''));
  };
  let methods = strList('methods');
  let paths = strList('paths');
  let tcp: number[] | undefined;
  try {
    methods = methods ? normMethods(methods).sort() : undefined;
    paths = paths ? normPaths(paths).sort() : undefined;
    const t = strList('tcp');
    tcp = t ? normPorts(t.map(Number)) : undefined;
  } catch {
    return undefined;
  }
  const d = findPair(item, 'disabled');
  return { key: JSON.stringify([hp.kind, hp.host, hp.port ?? null, methods ?? null, paths ?? null, tcp ?? null]), disabled: !!(d && isScalar(d.value) && d.value.value === true) };
}

function specKey(spec: AllowSpec, list: RuleList): string {
  const hp = parseHostPattern(hostValue(spec, list), { list: 'deny' });
  if ('error' in hp) throw new Error(hp.error);
  const methods = spec.methods && spec.methods.length > 0 ? normMethods(spec.methods).sort() : null;
  const paths = spec.paths && spec.paths.length > 0 ? normPaths(spec.paths).sort() : null;
  const tcp = list === 'allow' && spec.tcp && spec.tcp.length > 0 ? normPorts(spec.tcp) : null;
  return JSON.stringify([hp.kind, hp.host, hp.port ?? null, methods, paths, tcp]);
}

// ---------------------------------------------------------------------------------------------------
// Core splices

/** Appends an entry (given as a function of dash/content indentation) to a list, creating it if needed. */
function appendEntry(l: Loaded, list: RuleList, render: (dash: string, content: string) => string[], node: () => any): EditResult {
  const t = l.text;
  const pair = findPair(l.root, list);
  if (l.root.flow) {
    const seq = pair && isSeq(pair.value) ? pair.value : undefined;
    if (seq) seq.items.push(l.doc.createNode(node()));
    else l.root.set(list, l.doc.createNode([node()]));
    return rerender(l.doc);
  }
  if (!pair) {
    const firstKey = (l.root.items as any[])[0]?.key;
    const ind = firstKey?.range ? keyIndent(t, firstKey) : '';
    const lines = [`${ind}${list}:`, ...render(ind + '  ', ind + '    ')];
    const nl = eol(t);
    const sep = t.length === 0 || t.endsWith('\n') ? '' : nl;
    return { text: t + sep + lines.join(nl) + nl };
  }
  const seq = pair.value;
  const kInd = keyIndent(t, pair.key);
  if (isSeq(seq) && !seq.flow && seq.items.length > 0) {
    const first = itemLayout(t, seq.items[0]);
    const last: any = seq.items[seq.items.length - 1];
    if (first && last && last.range) {
      const at = lineEnd(t, Math.max(contentEnd(last) - 1, last.range[0]));
      const nl = eol(t);
      return { text: splice(t, at, at, nl + render(first.dash, first.content).join(nl)) };
    }
    seq.items.push(l.doc.createNode(node()));
    return rerender(l.doc);
  }
  const emptyValue = seq === null || seq === undefined || (isScalar(seq) && seq.value === null) || (isSeq(seq) && seq.flow && seq.items.length === 0);
  if (!emptyValue) {
    if (isSeq(seq)) {
      seq.items.push(l.doc.createNode(node()));
      return rerender(l.doc);
    }
    throw new Error(`"${list}" in the policy file is not a list; fix it before editing`);
  }
  // "allow:" / "allow: []" / "allow: ~": drop the explicit empty value, then add lines after the key's line.
  let text = t;
  const colon = text.indexOf(':', pair.key.range[1]);
  if (seq && seq.range && seq.range[1] > seq.range[0]) text = splice(text, colon + 1, seq.range[1], '');
  const at = lineEnd(text, colon);
  const dash = kInd + '  ';
  const nl = eol(text);
  return { text: splice(text, at, at, nl + render(dash, dash + '  ').join(nl)) };
}

/** Sets (or with value undefined, removes) one field of an entry. */
function setField(text: string, list: RuleList, index: number, key: string, value: string | undefined, nodeValue: unknown): string {
  const l = load(text);
  const item = getItem(l, list, index);
  if (!isMap(item)) throw new Error(`${list}[${index}] is not an entry with fields; fix it before editing`);
  const t = l.text;
  const pair = findPair(item, key);
  const astFallback = (): string => {
    if (value === undefined) item.delete(key);
    else item.set(key, l.doc.createNode(nodeValue));
    return l.doc.toString();
  };
  if (item.flow || !item.range) return astFallback();
  if (pair) {
    if (value === undefined) {
      const ks = pair.key.range[0];
      const ls = lineStart(t, ks);
      if (t.slice(ls, ks).trim() !== '') {
        // First field, on the "- " line: pull the next field up onto that line.
        const next = (item.items as any[])[(item.items as any[]).indexOf(pair) + 1];
        if (!next?.key?.range || lineStart(t, next.key.range[0]) === ls) return astFallback();
        return splice(t, ks, next.key.range[0], '');
      }
      const end = pair.value && pair.value.range ? contentEnd(pair.value) : pair.key.range[1];
      return splice(t, ls, afterLine(t, Math.max(end - 1, ks)), '');
    }
    const colon = t.indexOf(':', pair.key.range[1]);
    const end = pair.value && pair.value.range ? contentEnd(pair.value) : colon + 1;
    return splice(t, colon + 1, Math.max(end, colon + 1), ' ' + value);
  }
  if (value === undefined) return t;
  const first = (item.items as any[])[0];
  if (!first?.key?.range) return astFallback();
  const ind = ' '.repeat(first.key.range[0] - lineStart(t, first.key.range[0]));
  const at = lineEnd(t, Math.max(contentEnd(item) - 1, item.range[0]));
  return splice(t, at, at, `${eol(t)}${ind}${key}: ${value}`);
}

function add(text: string | undefined, list: RuleList, spec: AllowSpec): EditResult {
  const l = load(text);
  const want = specKey(spec, list);
  const seq = getList(l, list);
  if (isSeq(seq)) {
    for (let i = 0; i < seq.items.length; i++) {
      const s = entryShape(seq.items[i]);
      if (s && s.key === want) {
        // Already there: re-enable it and bring the flags in line with the request; no duplicate entry.
        let t = l.text;
        if (s.disabled) t = setField(t, list, i, 'disabled', undefined, undefined);
        if (list === 'allow') {
          const item = getItem(load(t), list, i);
          const pv = findPair(item, 'private');
          const cur = !!(pv && isScalar(pv.value) && pv.value.value === true);
          if (spec.private !== undefined && !!spec.private !== cur) t = setField(t, list, i, 'private', spec.private ? 'true' : undefined, true);
          const iv = findPair(getItem(load(t), list, i), 'intercept');
          const curI = !(iv && isScalar(iv.value) && iv.value.value === false);
          if (spec.intercept !== undefined && spec.intercept !== curI) t = setField(t, list, i, 'intercept', spec.intercept ? undefined : 'false', false);
        }
        return { text: t };
      }
    }
  }
  const fields = specFields(spec, list);
  return appendEntry(
    l,
    list,
    (dash, content) => fields.map((f, i) => (i === 0 ? `${dash}-${' '.repeat(Math.max(1, content.length - dash.length - 1))}` : content) + `${f.key}: ${f.value}`),
    () => specObject(spec, list),
  );
}

function specObject(spec: AllowSpec, list: RuleList): Record<string, unknown> {
  const o: Record<string, unknown> = { host: hostValue(spec, list) };
  if (spec.methods && spec.methods.length > 0) o.methods = normMethods(spec.methods);
  if (spec.paths && spec.paths.length > 0) o.paths = normPaths(spec.paths);
  if (list === 'allow' && spec.tcp && spec.tcp.length > 0) o.tcp = normPorts(spec.tcp);
  if (list === 'allow' && spec.private) o.private = true;
  if (list === 'allow' && spec.intercept === false) o.intercept = false;
  return o;
}

// ---------------------------------------------------------------------------------------------------
// Public edits

/** Adds an allow entry; returns the text unchanged when an equivalent entry exists (re-enabling it if disabled). */
export function addAllow(text: string | undefined, spec: AllowSpec): EditResult {
  return add(text, 'allow', spec);
}

/** Adds a deny entry (host, optional methods/paths); no duplicate when an equivalent one exists. */
export function addDeny(text: string | undefined, spec: AllowSpec): EditResult {
  return add(text, 'deny', spec);
}

/** Removes list[index] (its lines only; comments around it stay). */
export function removeEntry(text: string | undefined, list: RuleList, index: number): EditResult {
  const l = load(text);
  const item = getItem(l, list, index);
  const seq = getList(l, list);
  const lay = itemLayout(l.text, item);
  if (seq.flow || !lay) {
    seq.items.splice(index, 1);
    return rerender(l.doc);
  }
  const end = afterLine(l.text, Math.max(contentEnd(item) - 1, item.range[0]));
  return { text: splice(l.text, lay.start, end, '') };
}

/**
 * Rewrites list[index] to match `spec`: host, methods and paths are set or removed (undefined methods/paths
 * = any); for allow entries private/intercept change only when the spec sets them. Other fields (auth,
 * disabled) and comments stay.
 */
export function updateEntry(text: string | undefined, list: RuleList, index: number, spec: AllowSpec): EditResult {
  let t = load(text).text;
  getItem(load(t), list, index);
  const fields = specFields(spec, list);
  const get = (k: string) => fields.find((f) => f.key === k)?.value;
  const obj = specObject(spec, list);
  const keys = ['host', 'methods', 'paths'];
  // Flags change only when the spec says so: an edit of the host must not silently drop "private: true".
  if (list === 'allow' && spec.private !== undefined) keys.push('private');
  if (list === 'allow' && spec.intercept !== undefined) keys.push('intercept');
  for (const k of keys) t = setField(t, list, index, k, get(k), obj[k]);
  return { text: t };
}

/** Disables (adds "disabled: true") or re-enables (removes the field) list[index]. */
export function setDisabled(text: string | undefined, list: RuleList, index: number, disabled: boolean): EditResult {
  return { text: setField(load(text).text, list, index, 'disabled', disabled ? 'true' : undefined, true) };
}

/** Moves list[index] to the end of the other list (allow <-> deny), keeping its lines and comments. */
export function moveEntry(text: string | undefined, from: RuleList, index: number): EditResult {
  const to: RuleList = from === 'allow' ? 'deny' : 'allow';
  const l = load(text);
  const item = getItem(l, from, index);
  const seq = getList(l, from);
  const lay = itemLayout(l.text, item);
  if (seq.flow || !lay || !isMap(item) || item.flow) {
    seq.items.splice(index, 1);
    let other = getList(l, to);
    if (!isSeq(other)) {
      other = l.doc.createNode([]);
      l.root.set(to, other);
    }
    (other as any).items.push(item);
    return rerender(l.doc);
  }
  const end = afterLine(l.text, Math.max(contentEnd(item) - 1, lay.start));
  const block = l.text.slice(lay.start, end).replace(/\r?\n$/, '');
  const lines = block.split(/\r?\n/);
  const removed = splice(l.text, lay.start, end, '');
  const l2 = load(removed);
  return appendEntry(
    l2,
    to,
    (dash) => lines.map((ln) => (ln.startsWith(lay.dash) ? dash + ln.slice(lay.dash.length) : ln)),
    () => item.toJSON(),
  );
}
