// How a rule is named. ruleLabel() is its place in the file ("allow[3]"), for people: it shifts when entries
// are added or moved. entryKey() is its content, for programs: the proxy's events carry it (`ruleKey`) so the
// editor can find the rule that decided in its own, possibly newer, parse of the file, and the parser uses it
// to find duplicate entries. Compare keys; never parse them.
import type { Rule } from './types';

/** "allow[3]" / "deny[0]": how events, diagnostics and messages name a rule for people. */
export function ruleLabel(rule: Pick<Rule, 'list' | 'index' | 'temporary'>): string {
  // A temporary allow is not in the file: it is named by its id ("temporary t-3f2a").
  if (rule.temporary) return `temporary ${rule.temporary.id}`;
  return `${rule.list}[${rule.index}]`;
}

/**
 * A stable key of what an entry matches: its list, host pattern and port, methods and paths (each set in a
 * fixed order), e.g. "allow *.example.com:8443 GET,HEAD /v1/** /v2/*" or "deny gist.github.com * *". Fields
 * that do not change what the entry matches (auth, intercept, private, disabled, comments, its position) are
 * not in it, so the key survives those edits. Two entries with the same key are duplicates.
 */
export function entryKey(rule: Pick<Rule, 'list' | 'kind' | 'host' | 'port' | 'methods' | 'paths' | 'tcp'>): string {
  const host = rule.kind === 'wildcard' ? `*.${rule.host}` : rule.host.includes(':') ? `[${rule.host}]` : rule.host;
  const methods = rule.methods ? [...rule.methods].sort().join(',') : '*';
  // Normalised globs start with "/" and never contain a space: "*" and the separators cannot be confused with them.
  const paths = rule.paths ? [...rule.paths].sort().join(' ') : '*';
  // A raw TCP entry: "allow github.com tcp 22,2222" (it matches ports, not requests).
  if (rule.tcp) return `${rule.list} ${host} tcp ${[...rule.tcp].sort((a, b) => a - b).join(',')}`;
  return `${rule.list} ${host}${rule.port === undefined ? '' : `:${rule.port}`} ${methods} ${paths}`;
}
