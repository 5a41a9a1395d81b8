// Loading a policy into a running proxy and reading its verdict: the text goes into the proxy's config volume
// (works with remote engines), SIGHUP makes the proxy reload it, and the proxy's policy-loaded / policy-error
// event on its log (followed through proxyLog.ts) is the answer. Also the verdict on the policy a new proxy
// started with.
import type Docker from 'dockerode';
import type { PolicyErrorEvent, PolicyLoadedEvent, ProxyEvent } from '../policy/events';
import { policyHash } from '../shared/policyHash';
import type { PolicyPushResult } from './api';
import { PROXY_CONFIG_DIR } from './names';
import type { ProxyLogs } from './proxyLog';
import { policyFile } from './specs';
import { createTar } from './tar';

export function verdictOf(ev: PolicyLoadedEvent | PolicyErrorEvent): PolicyPushResult {
  if (ev.type === 'policy-loaded') {
    return { ok: true, message: `${ev.allow} allow and ${ev.deny} deny rule${ev.deny === 1 ? '' : 's'} in force` };
  }
  return {
    ok: false,
    message: ev.message + (ev.keptPrevious ? ' (the previous policy stays in force)' : ' (everything is blocked)'),
    line: ev.line,
    col: ev.col,
    inForce: ev.keptPrevious ? 'previous' : 'none',
  };
}

/** A verdict being waited for: the proxy's log is followed from the moment watchVerdict resolves. */
interface PendingVerdict {
  /** The verdict, or 'timeout' / 'ended' (the log ended: the proxy stopped). */
  result(timeoutMs: number): Promise<PolicyPushResult | 'timeout' | 'ended'>;
  stop(): void;
}

async function watchVerdict(logs: ProxyLogs, proxy: Docker.Container, pick: (e: ProxyEvent) => PolicyPushResult | undefined, fromStart: boolean): Promise<PendingVerdict> {
  let found: PolicyPushResult | 'ended' | undefined;
  let wake: (() => void) | undefined;
  const settle = (r: PolicyPushResult | 'ended') => {
    if (found) return;
    found = r;
    wake?.();
  };
  const sub = await logs.subscribe(proxy, {
    onEvent: (e) => {
      const v = pick(e);
      if (v) settle(v);
    },
    onEnd: () => settle('ended'),
  }, { fromStart });
  return {
    result: (timeoutMs) => new Promise((resolve) => {
      if (found) return resolve(found);
      const timer = setTimeout(() => resolve(found ?? 'timeout'), timeoutMs);
      wake = () => { clearTimeout(timer); resolve(found!); };
    }),
    stop: () => sub.stop(),
  };
}

/**
 * Copies the policy text into the proxy and signals a reload; resolves with the proxy's verdict (policy-loaded
 * with this text's hash, or policy-error with line/column), or says within how long it did not come.
 */
export async function pushPolicy(logs: ProxyLogs, proxy: Docker.Container, text: string, timeoutMs: number): Promise<PolicyPushResult> {
  const hash = policyHash(text);
  // Followed before signalling, so the verdict cannot be missed.
  const pending = await watchVerdict(logs, proxy, (ev) => (ev.type === 'policy-error' || (ev.type === 'policy-loaded' && ev.hash === hash) ? verdictOf(ev) : undefined), false);
  try {
    await proxy.putArchive(await createTar([policyFile(text)]), { path: PROXY_CONFIG_DIR });
    await proxy.kill({ signal: 'SIGHUP' });
    const r = await pending.result(timeoutMs);
    if (r === 'timeout') return { ok: false, inForce: 'unknown', message: `the proxy did not confirm the new policy within ${Math.round(timeoutMs / 1000)} s` };
    if (r === 'ended') return { ok: false, inForce: 'unknown', message: 'the proxy stopped before it confirmed the new policy' };
    return r;
  } finally {
    pending.stop();
  }
}

/** Follows a just-started proxy's log from its start, for its verdict on the policy it started with. */
export async function watchStartupVerdict(logs: ProxyLogs, proxy: Docker.Container): Promise<PendingVerdict> {
  return watchVerdict(logs, proxy, (ev) => (ev.type === 'policy-loaded' || ev.type === 'policy-error' ? verdictOf(ev) : undefined), true);
}

/** The startup verdict once the proxy is healthy (it reports on its policy before it serves). */
export async function startupVerdict(pending: PendingVerdict, hadPolicy: boolean, policyPath: string): Promise<PolicyPushResult> {
  const r = await pending.result(5000);
  if (typeof r === 'object') return r;
  return hadPolicy
    ? { ok: false, inForce: 'unknown', message: 'the proxy did not report on the policy' }
    : { ok: false, inForce: 'none', message: `no policy file at ${policyPath}: everything is blocked until one is written` };
}
