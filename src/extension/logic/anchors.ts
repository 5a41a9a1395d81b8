// Where each block group's diagnostic goes, so that every group has a line of its own and the quick-fix menu on
// that line lists only that group's fixes. A block that a rule decided (a deny entry, an allow entry whose
// methods, paths or private opt-in refused it) sits on that rule's entry in the policy file. A block that matched
// no rule has no line of its own in the file: it gets one in the read-only "Blocked requests" document (one line
// per host:port), and the policy file keeps one summary Problem on its `allow:` key pointing there. Pure: no vscode.
import type { Policy, SourcePos } from '../../policy/types';
import { blockMessage, type BlockGroup } from './blocks';
import { ruleOfEvent } from './fixes';

export interface BlockLayout {
  /** Groups a rule decided, with the rule entry's position in the policy file. */
  onRule: Array<{ group: BlockGroup; pos: SourcePos }>;
  /** Groups that matched no rule, in the order of the Blocked requests document (line = BLOCKED_DOC_HEADER.length + index). */
  unmatched: BlockGroup[];
}

export const BLOCKED_DOC_HEADER = [
  '# Requests the cage blocked that no rule of the policy matches, one host:port per line.',
  '# Put the cursor on a line and press Ctrl+. (Cmd+. on macOS) for the fixes of that host.',
  '',
];

export function layoutBlocks(groups: BlockGroup[], policy: Policy | undefined): BlockLayout {
  const out: BlockLayout = { onRule: [], unmatched: [] };
  for (const g of groups) {
    const rule = g.last.ruleKey !== undefined || g.last.rule ? ruleOfEvent(policy, g.last) : undefined;
    if (rule) out.onRule.push({ group: g, pos: rule.pos });
    else out.unmatched.push(g);
  }
  // Oldest first: a new host adds a line at the end, the lines of the others stay where they were.
  out.unmatched.sort((a, b) => a.firstSeen - b.firstSeen || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return out;
}

/** The Blocked requests document's text for the unmatched groups of a layout. */
export function blockedDocumentText(unmatched: BlockGroup[]): string {
  const lines = unmatched.length ? unmatched.map((g) => blockMessage(g)) : ['(nothing blocked that no rule matches)'];
  return [...BLOCKED_DOC_HEADER, ...lines, ''].join('\n');
}

/** The summary Problem on the policy file's `allow:` key. */
export function unmatchedSummary(unmatched: BlockGroup[]): string {
  const names = unmatched.map((g) => g.host);
  const shown = names.slice(0, 3).join(', ') + (names.length > 3 ? ` and ${names.length - 3} more` : '');
  return `Caged agent blocked ${unmatched.length === 1 ? '1 host' : `${unmatched.length} hosts`} that no rule matches: ${shown}. Their fixes are in Blocked requests.`;
}
