// What the editor says about a policy push that did not succeed, by what is known of the proxy's state: it
// refused the text and kept its previous policy, it refused it and blocks everything, or it did not answer in
// time (then it may have loaded the text or not: say so, never "kept its previous policy"). Pure.

export interface PushFailure {
  message: string;
  inForce?: 'previous' | 'none' | 'unknown';
}

export function pushFailureReport(r: PushFailure): { log: string; notice: string } {
  switch (r.inForce) {
    case 'unknown':
      return {
        log: `the proxy did not confirm the policy, so it may or may not be in force: ${r.message}`,
        notice: `Caged Agent: the proxy did not confirm the new policy; it may or may not be in force (save the file again to retry) — ${r.message}`,
      };
    case 'none':
      return { log: `proxy rejected the policy and blocks everything: ${r.message}`, notice: `Caged Agent: the proxy rejected the policy — ${r.message}` };
    default:
      return { log: `proxy kept its previous policy: ${r.message}`, notice: `Caged Agent: the proxy rejected the policy — ${r.message}` };
  }
}

/**
 * The tail of an edit's status message, by what the proxy answered to the push the edit caused: " — proxy
 * reloaded" only when it confirmed the new text; undefined when the push failed (its warning says why, and no
 * success message may hide it).
 */
export function editNote(cageRuns: boolean, push: (PushFailure & { ok: boolean }) | undefined): string | undefined {
  if (!cageRuns || !push) return '';
  return push.ok ? ' — proxy reloaded' : undefined;
}

/** The status bar's word on the policy the proxy runs, when it is not the file's (undefined: it is, or unknown). */
export function proxyPolicyWarning(v: (PushFailure & { ok: boolean }) | undefined): { text: string; tooltip: string } | undefined {
  if (!v || v.ok) return undefined;
  switch (v.inForce) {
    case 'none':
      return { text: 'no policy', tooltip: `The proxy has no valid policy and blocks everything: ${v.message}` };
    case 'unknown':
      return { text: 'policy unconfirmed', tooltip: `The proxy did not confirm the saved policy; it may or may not be in force: ${v.message}` };
    default:
      return { text: 'previous policy', tooltip: `The proxy refused the saved policy; the previous policy stays in force: ${v.message}` };
  }
}
