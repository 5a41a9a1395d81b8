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
