// The checks `verify` runs from INSIDE the agent container, with the agent's own curl and environment.
import * as crypto from 'node:crypto';
import type { ExecResult, ProtectionStatus, VerifyCheck, VerifyOptions } from './api';
import * as fs from 'node:fs';
import { parsePolicy } from '../policy';
import { PROBE_SUFFIX } from '../policy/events';
import { PROXY_URL } from './names';
import { workspaceChecks } from './verify-workspace';

/** Under PROBE_SUFFIX: the proxy marks its block as a probe (events.ts), so the editor does not show it. */
export const DEFAULT_BLOCKED_URL = `https://blocked${PROBE_SUFFIX}/`;
/** A public name: if the cage leaked DNS it would resolve. The agent's forwarders answer nothing. */
export const DEFAULT_EXTERNAL_NAME = 'example.com';

export interface VerifyContext {
  exec: (cmd: string[], timeoutMs: number) => Promise<ExecResult>;
  /** The proxy's address on the cage network: what the cage's DNS answers for every name. */
  proxyIp?: string;
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

  // 2. Lookups are answered by the proxy: an outside name resolves to the proxy's own cage address (nothing is
  //    forwarded, so a lookup carries nothing out and brings nothing the agent chose back).
  checks.push(await dnsCheck(ctx, opts.externalName ?? DEFAULT_EXTERNAL_NAME));

  // 3. The proxy answers.
  {
    const r = await ctx.exec(['curl', '--noproxy', '*', '-sS', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '5', `${PROXY_URL}/__caged/health`], 15_000);
    const code = Number(r.stdout.trim());
    const ok = code > 0;
    checks.push({ name: 'the proxy answers', ok, detail: ok ? `${PROXY_URL} answered HTTP ${code}` : `${PROXY_URL} did not answer: ${curlError(r)}` });
  }

  // 4. A blocked host gets 403 with the reason header; 5. an allowed URL succeeds with a certificate from the
  //    cage CA, using the agent's own trust store. Each through the proxy settings, then as a client that
  //    ignores them (transparent capture: the same policy, the same 403).
  for (const direct of [false, true]) {
    if (direct && !ctx.proxyIp) continue; // a cage started without the proxy's DNS cannot catch such clients
    checks.push(await blockedCheck(ctx, opts.blockedUrl ?? DEFAULT_BLOCKED_URL, direct));
    checks.push(await allowedCheck(ctx, opts.allowedUrl, direct));
  }

  // 6. Raw TCP: a port a tcp rule allows connects (and stays open: the proxy reached the host; checked when the
  //    policy has such a rule, or --tcp names one); a port no rule names and the proxy does not watch does not
  //    connect at all.
  if (ctx.proxyIp) checks.push(...(await tcpChecks(ctx, opts.tcpTarget)));
  return checks;
}

async function dnsCheck(ctx: VerifyContext, name: string): Promise<VerifyCheck> {
  // A port nothing listens on (no request, so no block event in the editor): curl names the address it tries.
  const r = await ctx.exec(['curl', '--noproxy', '*', '-v', '-sS', '--connect-timeout', '3', '--max-time', '8', `telnet://${name}:${UNLISTED_TCP_PORT}`], 20_000);
  const got = /Trying \[?([0-9a-fA-F.:]+?)\]?:\d+/.exec(r.stderr)?.[1] ?? '';
  const what = 'lookups are answered by the proxy';
  if (!ctx.proxyIp) {
    // A cage without the proxy's DNS (older start): no lookup of an outside name may succeed at all.
    const ok = r.exitCode === CURL_RESOLVE || (r.exitCode === CURL_TIMEOUT && /resolv/i.test(r.stderr));
    return { name: what, ok, detail: ok ? `"${name}" does not resolve inside the cage (${curlError(r)})` : `"${name}" resolved inside the cage or something else happened: ${curlError(r)}` };
  }
  const ok = got === ctx.proxyIp;
  return {
    name: what,
    ok,
    detail: ok
      ? `"${name}" resolves to the proxy (${got}) and nowhere else: nothing is forwarded outside`
      : r.exitCode === CURL_RESOLVE
        ? `"${name}" does not resolve: clients that ignore the proxy settings cannot be caught (${curlError(r)})`
        : `"${name}" resolved to ${got || 'nothing'}, not the proxy (${ctx.proxyIp}): ${curlError(r)}`,
  };
}

/** curl as the agent would run it: through the proxy variables, or (`direct`) ignoring them. */
function agentCurl(direct: boolean, args: string[]): string[] {
  return direct ? ['curl', '--noproxy', '*', ...args] : ['curl', ...args];
}

function clientKind(direct: boolean): string {
  return direct ? ' (a client that ignores the proxy settings)' : '';
}

async function blockedCheck(ctx: VerifyContext, url: string, direct: boolean): Promise<VerifyCheck> {
  const r = await ctx.exec(agentCurl(direct, ['-sS', '-o', '/dev/null', '-D', '-', '--max-time', '10', url]), 20_000);
  const header = /^x-caged-agent-block:\s*(\S+)/im.exec(r.stdout);
  const got403 = /^HTTP\/[\d.]+ 403/m.test(r.stdout);
  const ok = got403 && !!header;
  return {
    name: `a blocked host gets 403${clientKind(direct)}`,
    ok,
    detail: ok ? `${url} was refused with 403, reason "${header![1]}"` : `${url}: expected 403 with X-Caged-Agent-Block, got ${firstLine(r.stdout) || curlError(r)}`,
  };
}

async function allowedCheck(ctx: VerifyContext, url: string | undefined, direct: boolean): Promise<VerifyCheck> {
  const name = `an allowed URL succeeds${clientKind(direct)}`;
  if (!url) return { name, ok: true, skipped: true, detail: 'skipped: no allowed URL given (e.g. --allowed-url https://host-your-policy-allows/)' };
  const r = await ctx.exec(agentCurl(direct, ['-sS', '-v', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '20', url]), 30_000);
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
  return { name, ok, detail };
}

/** A port no rule names and the proxy does not watch (tcp.ts WATCHED_TCP_PORTS): nothing listens there. */
export const UNLISTED_TCP_PORT = 7;

/** Raw TCP from the agent with curl's telnet:// (a plain TCP connection, stdin empty), for at most 4 s. */
function rawTcp(ctx: VerifyContext, hostPort: string): Promise<ExecResult> {
  return ctx.exec(['curl', '--noproxy', '*', '-v', '-sS', '--max-time', '4', `telnet://${hostPort}`], 15_000);
}

async function tcpChecks(ctx: VerifyContext, target: string | undefined): Promise<VerifyCheck[]> {
  const out: VerifyCheck[] = [];
  const ruleName = "a raw TCP rule's port connects";
  if (target) {
    const r = await rawTcp(ctx, target);
    // Held open until curl's own time-out, or bytes came back (a banner, an echo): the proxy reached the host.
    // Closed at once with nothing: the proxy refused it (its block event says why).
    const ok = /Connected to/.test(r.stderr) && (r.exitCode === CURL_TIMEOUT || r.stdout.length > 0);
    out.push({
      name: ruleName,
      ok,
      detail: ok
        ? `${target} connected through the proxy${r.stdout.length ? ` and answered (${r.stdout.length} bytes)` : ' and stayed open'}`
        : r.exitCode === CURL_CONNECT
          ? `${target} did not connect (${curlError(r)}): no listener for that port; check the rule's "tcp" ports`
          : `${target} was closed by the proxy: see its block event (${curlError(r)})`,
    });
  }
  const unlisted = `verify-unlisted.caged-agent.invalid:${UNLISTED_TCP_PORT}`;
  const u = await rawTcp(ctx, unlisted);
  const refused = u.exitCode === CURL_CONNECT || u.exitCode === CURL_RESOLVE;
  out.push({
    name: 'an unlisted TCP port does not connect',
    ok: refused,
    detail: refused ? `${unlisted} did not connect, as it must (${curlError(u)})` : `${unlisted} connected: something answers a port no rule names (${curlError(u)})`,
  });
  return out;
}

/** The first raw TCP rule of the policy file that names one host (HOST:PORT), for the "connects" check; or none. */
export function tcpTargetOf(policyPath: string | undefined): string | undefined {
  if (!policyPath) return undefined;
  let text: string;
  try {
    text = fs.readFileSync(policyPath, 'utf8');
  } catch {
    return undefined;
  }
  const r = parsePolicy(text).policy?.allow.find((x) => x.tcp && !x.disabled && x.kind === 'exact');
  return r ? `${r.host}:${r.tcp![0]}` : undefined;
}
