// The workspace protection as the agent sees it: its own mount table (read from inside) against the mounts it was
// created with, and the protected paths' content against the start. An engine that ignores nested mounts or their
// read-only flag, or a program on the host that replaces a protected file (Docker then drops that mount), shows here.
import type Docker from 'dockerode';
import * as path from 'node:path';
import type { ProtectionStatus } from './api';
import { dockerMessage } from './dockerutil';
import { execIn } from './exec';
import { LABEL_WORKSPACE } from './names';
import { checkMounts, parseMountInfo } from './mountinfo';
import { changedSinceStart } from './protect-scan';
import { protectionOf } from './specs';

type Expected = Array<{ target: string; readOnly: boolean }>;

function expectedMounts(info: Docker.ContainerInspectInfo): Expected {
  return ((info.HostConfig.Mounts ?? []) as Array<{ Target: string; ReadOnly?: boolean }>).map((m) => ({ target: m.Target, readOnly: !!m.ReadOnly }));
}

/** The agent's mount table against the expected mounts (cat /proc/self/mountinfo, as root). */
async function readMounts(agent: Docker.Container, expected: Expected): Promise<ReturnType<typeof checkMounts> | { unreadable: string }> {
  const r = await execIn(agent, ['cat', '/proc/self/mountinfo'], { user: '0', timeoutMs: 10_000 }).catch((e) => ({ exitCode: -1, stdout: '', stderr: dockerMessage(e) }));
  if (r.exitCode !== 0) return { unreadable: (r.stderr || r.stdout).trim().split('\n')[0] || `exit ${r.exitCode}` };
  return checkMounts(expected, parseMountInfo(r.stdout));
}

/**
 * Right after the agent started: the engine must really have applied the read-only mounts. Returns the problems
 * (empty: all in place) or why the table could not be read; `readOnly` counts the read-only mounts checked.
 */
export async function agentMountProblems(agent: Docker.Container): Promise<{ bad: string[]; readOnly: number } | { unreadable: string }> {
  const expected = expectedMounts(await agent.inspect());
  const r = await readMounts(agent, expected);
  if ('unreadable' in r) return r;
  return { bad: [...r.missing.map((m) => `${m} is not mounted`), ...r.writable.map((m) => `${m} is writable`)], readOnly: expected.filter((m) => m.readOnly).length };
}

/** The workspace protection of a running cage, checked now: see CageEngine.checkProtection. */
export async function checkProtection(agent: Docker.Container, cageId: string): Promise<ProtectionStatus> {
  const info = await agent.inspect();
  const protection = protectionOf(info.Config.Labels ?? {});
  if (!protection) throw new Error(`Cage ${cageId} was started without workspace protection records (started by an older version); restart it.`);
  const workspace = info.Config.Labels?.[LABEL_WORKSPACE] ?? '';
  const mounts = (info.HostConfig.Mounts ?? []) as Array<{ Source: string; Target: string }>;
  const mountPaths: Record<string, string> = {};
  for (const m of mounts) {
    const rel = path.relative(workspace, m.Source);
    mountPaths[m.Target] = rel === '' ? '.' : !rel.startsWith('..') && !path.isAbsolute(rel) ? rel.split(path.sep).join('/') : m.Source;
  }
  const r = await readMounts(agent, expectedMounts(info));
  return {
    protection,
    ...('unreadable' in r ? { unreadable: r.unreadable } : { mounts: r }),
    changed: changedSinceStart(workspace, protection),
    mountPaths,
  };
}
