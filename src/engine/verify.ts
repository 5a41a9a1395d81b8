// The checks `verify` runs from INSIDE the agent container, with the agent's own curl and environment.
import * as crypto from 'node:crypto';
import type { ExecResult, ProtectionStatus, VerifyCheck, VerifyOptions } from './api';
import { PROBE_SUFFIX } from '../policy/events';
import { PROXY_URL } from './names';
import { workspaceChecks } from './verify-workspace';

/** Under PROBE_SUFFIX: the proxy marks its block as a probe (events.ts), so the editor does not show it. */
export const DEFAULT_BLOCKED_URL = `https://blocked${PROBE_SUFFIX}/`;
/** A public name: if the cage leaked DNS it would resolve. The agent's forwarders answer nothing. */
export const DEFAULT_EXTERNAL_NAME = 'example.com';

export interface VerifyContext {
  exec: (cmd: string[], timeoutMs: number) => Promise<ExecResult>;
  /** The proxy's address on the egress network: a listening socket outside the cage. */
  proxyEgressIp?: string;
  /** The egress network's gateway (the engine host's side). */
  egressGateway?: string;
  /** The cage network's gateway address (should belong to nothing). */
  internalGateway?: string;
  /** The cage CA certificate (PEM). */
  caPem?: string;
  options: VerifyOptions;
  /** Where the workspace is inside the agent, and its protection checked now (or why it could not be). */
  workspace?: { inContainer: string; status?: ProtectionStatus; error?: string };
}

// curl exit codes (man curl).
const CURL_RESOLVE = 6;
const CURL_CONNECT = 7;
const CURL_TIMEOUT = 28;

function firstLine(s: string): string {
  return s.split('\n').map((l) => l.trim()).filter(Boolean).filter((l) => !l.startsWith('*') && !l.startsWith('>') && !l.startsWith('<'))[0] ?? '';
}

function curlError(r: ExecResult): string {
  const m = /curl: \(\d+\)[^\n]*/.exec(r.stderr);
  return m ? m[0] : firstLine(r.stderr) || `exit ${r.exitCode}`;
}

export async function runVerify(ctx: VerifyContext): Promise<VerifyCheck[]> {
  const checks = await networkChecks(ctx);
  if (ctx.workspace) checks.push(...(await workspaceChecks(ctx.exec, ctx.workspace)));
  return checks;
}

/** "12 passed, 2 skipped" / "1 failed, 11 passed": a skipped check is not counted as passed. */
export function verifySummary(checks: VerifyCheck[]): string {
  const failed = checks.filter((c) => !c.ok).length;
  const skipped = checks.filter((c) => c.ok && c.skipped).length;
  const passed = checks.length - failed - skipped;
  return [failed ? `${failed} failed` : '', `${passed} passed`, skipped ? `${skipped} skipped` : ''].filter(Boolean).join(', ');
}

async function networkChecks(ctx: VerifyContext): Promise<VerifyCheck[]> {
  const checks: VerifyCheck[] = [];
  const opts = ctx.options;

  const version = await ctx.exec(['curl', '--version'], 15_000).catch((e) => ({ exitCode: -1, stdout: '', stderr: String(e?.message ?? e) }));
  if (version.exitCode !== 0) {
    checks.push({
      name: 'curl in the agent',
      ok: false,
      detail: `The agent image has no working curl (${firstLine(version.stderr || version.stdout) || `exit ${version.exitCode}`}), so the checks cannot run from inside the cage. Use an agent image with curl, or install it in the image.`,
    });
    return checks;
  }

  // 1. No direct connection to the outside: the proxy's own egress-side address is a listening socket
  //    outside the cage; the gateways are the engine host. "Connection refused" means the packets got
  //    there (the host's TCP stack answered), so only a timeout or "no route" counts as isolated.
  const targets: Array<[string, string]> = [];
  if (ctx.proxyEgressIp) targets.push([`http://${ctx.proxyEgressIp}:3128/`, "the proxy's outside address"]);
  if (ctx.egressGateway) targets.push([`http://${ctx.egressGateway}:80/`, 'the egress gateway (engine host)']);
  if (ctx.internalGateway) targets.push([`http://${ctx.internalGateway}:80/`, "the cage network's gateway (engine host)"]);
  if (!targets.length) {
    checks.push({ name: 'no direct connection to the outside', ok: false, detail: 'could not find the egress network addresses to test against' });
  }
  const results = await Promise.all(targets.map(([url]) =>
    ctx.exec(['curl', '-v', '--noproxy', '*', '-sS', '-o', '/dev/null', '--connect-timeout', '3', '--max-time', '5', url], 15_000)));
  targets.forEach(([url, what], i) => {
    const r = results[i];
    const why = /connect to \S+ port \d+ failed: ([^\n]+)/.exec(r.stderr)?.[1]?.trim();
    const refused = /refused/i.test(why ?? '');
    const blocked = (r.exitCode === CURL_CONNECT && !refused) || r.exitCode === CURL_TIMEOUT;
    checks.push({
      name: `no direct connection to ${what}`,
      ok: blocked,
      detail: blocked
        ? `${url} without the proxy failed as it must (${why ?? curlError(r)})`
        : refused
          ? `${url} refused the connection: the host behind it is reachable from the agent`
          : r.exitCode === 0 || r.exitCode === 22 || r.exitCode === 52 || r.exitCode === 56
            ? `${url} answered without the proxy: the cage leaks`
            : `unexpected result connecting to ${url}: ${curlError(r)}`,
    });
  });

  // 2. External DNS lookups fail.
  const name = opts.externalName ?? DEFAULT_EXTERNAL_NAME;
  {
    const r = await ctx.exec(['curl', '--noproxy', '*', '-sS', '-o', '/dev/null', '--connect-timeout', '3', '--max-time', '8', `http://${name}/`], 20_000);
    const ok = r.exitCode === CURL_RESOLVE || (r.exitCode === CURL_TIMEOUT && /resolv/i.test(r.stderr));
    checks.push({
      name: 'external DNS lookup fails',
      ok,
      detail: ok ? `"${name}" does not resolve inside the cage (${curlError(r)})` : `"${name}" resolved inside the cage or something else happened: ${curlError(r)}`,
    });
  }

  // 3. The proxy answers.
  {
    const r = await ctx.exec(['curl', '--noproxy', '*', '-sS', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '5', `${PROXY_URL}/__caged/health`], 15_000);
    const code = Number(r.stdout.trim());
    const ok = code > 0;
    checks.push({ name: 'the proxy answers', ok, detail: ok ? `${PROXY_URL} answered HTTP ${code}` : `${PROXY_URL} did not answer: ${curlError(r)}` });
  }

  // 4. A blocked host gets 403 with the reason header.
  {
    const url = opts.blockedUrl ?? DEFAULT_BLOCKED_URL;
    const r = await ctx.exec(['curl', '-sS', '-o', '/dev/null', '-D', '-', '--max-time', '10', url], 20_000);
    const header = /^x-caged-agent-block:\s*(\S+)/im.exec(r.stdout);
    const got403 = /^HTTP\/[\d.]+ 403/m.test(r.stdout);
    const ok = got403 && !!header;
    checks.push({
      name: 'a blocked host gets 403',
      ok,
      detail: ok
        ? `${url} was refused with 403, reason "${header![1]}"`
        : `${url}: expected 403 with X-Caged-Agent-Block, got ${firstLine(r.stdout) || curlError(r)}`,
    });
  }

  // 5. An allowed URL succeeds with a certificate from the cage CA, using the agent's own trust store.
  if (!opts.allowedUrl) {
    checks.push({ name: 'an allowed URL succeeds', ok: true, skipped: true, detail: 'skipped: no allowed URL given (e.g. --allowed-url https://host-your-policy-allows/)' });
  } else {
    const url = opts.allowedUrl;
    const r = await ctx.exec(['curl', '-sS', '-v', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '20', url], 30_000);
    const code = Number(r.stdout.trim());
    const issuer = /^\*\s+issuer:\s*(.+)$/m.exec(r.stderr)?.[1]?.trim() ?? '';
    let caCn = '';
    if (ctx.caPem) {
      try {
        caCn = /CN=([^\n,]+)/.exec(new crypto.X509Certificate(ctx.caPem).subject)?.[1]?.trim() ?? '';
      } catch {}
    }
    const https = url.startsWith('https:');
    const fromCage = !https || (!!caCn && issuer.includes(caCn));
    const ok = r.exitCode === 0 && code > 0 && code < 400 && fromCage;
    let detail: string;
    if (r.exitCode !== 0) detail = `${url} failed: ${curlError(r)}`;
    else if (code >= 400) detail = `${url} answered HTTP ${code}`;
    else if (!fromCage) detail = `${url} answered HTTP ${code}, but its certificate was issued by "${issuer}", not the cage CA "${caCn}"`;
    else detail = `${url} answered HTTP ${code}${https ? ` with a certificate issued by the cage CA (${issuer})` : ''}, trusted by the agent's own trust store`;
    checks.push({ name: 'an allowed URL succeeds', ok, detail });
  }
  return checks;
}
