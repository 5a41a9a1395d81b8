// Held requests and temporary entries: pending, the scoped answers of allow, deny, revoke (through the proxy's
// control channel, acknowledged).
import { type AskAnswer } from '../engine';
import { formatRemaining, parseDuration } from '../policy';
import { checkFlags, err, flag, UsageError, type Args } from './args';
import { formatTemporary, makeEngine, resolveCage } from './common';
export async function cmdPending(a: Args): Promise<number> {
  checkFlags(a, ['--json']);
  const engine = makeEngine();
  const id = await resolveCage(engine, a.positional[0]);
  const s = await engine.pending(id);
  if (flag(a, '--json')) {
    process.stdout.write(JSON.stringify(s, null, 2) + '\n');
    return 0;
  }
  const now = Date.now();
  if (!s.pending.length) process.stdout.write('no request is waiting for an answer\n');
  for (const g of s.pending) process.stdout.write(`${g.host}:${g.port}  ${g.count} waiting, first ${g.method} ${g.path}, gives up in ${formatRemaining(g.until - now)}\n`);
  for (const e of s.temporary) process.stdout.write(`temporary ${formatTemporary(e, now)}\n`);
  return 0;
}

/** allow --once / --for / --session, and deny: an answer through the proxy's control channel. */
export async function answerHeld(a: Args, answer: AskAnswer, cageArg: string | undefined): Promise<number> {
  const engine = makeEngine();
  const id = await resolveCage(engine, cageArg);
  const r = await engine.answer(id, answer);
  err(r.ok ? r.message : `the proxy did not take it: ${r.message}`);
  return r.ok ? 0 : 1;
}

export function scopeOf(a: Args): { scope: 'once' | 'session' | 'for'; forMs?: number } | undefined {
  const once = !!flag(a, '--once');
  const session = !!flag(a, '--session');
  const dur = flag(a, '--for');
  if (Number(once) + Number(session) + Number(dur !== undefined) > 1) throw new UsageError('give one of --once, --for DURATION and --session');
  if (once) return { scope: 'once' };
  if (session) return { scope: 'session' };
  if (dur === undefined) return undefined;
  const forMs = parseDuration(dur);
  if (!forMs) throw new UsageError(`--for needs a duration like 30s, 15m or 1h, not "${dur}"`);
  return { scope: 'for', forMs };
}

export async function cmdDeny(a: Args): Promise<number> {
  checkFlags(a, ['--once']);
  const host = a.positional[0];
  if (!host) throw new UsageError('deny needs a HOST');
  return answerHeld(a, { host, decision: 'deny', scope: flag(a, '--once') ? 'once' : 'session' }, a.positional[1]);
}

export async function cmdRevoke(a: Args): Promise<number> {
  checkFlags(a, []);
  const what = a.positional[0];
  if (!what) throw new UsageError('revoke needs a HOST or an entry id');
  const engine = makeEngine();
  const r = await engine.revoke(await resolveCage(engine, a.positional[1]), what);
  err(r.message);
  return r.ok ? 0 : 1;
}
