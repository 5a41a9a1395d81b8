// The agent's mount table, read from inside (/proc/self/mountinfo), against the mounts it was created with: an
// engine that ignores nested mounts or their read-only flag, or a host program that replaced a protected file
// (Docker then drops that mount), shows as a missing or writable mount. Pure.

export interface MountInfoEntry {
  mountPoint: string;
  readOnly: boolean;
}

/** Parses /proc/self/mountinfo (proc(5)): mount point and whether it is read-only. */
export function parseMountInfo(text: string): MountInfoEntry[] {
  const out: MountInfoEntry[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    if (f.length < 6) continue;
    const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    out.push({ mountPoint: unescape(f[4]), readOnly: f[5].split(',').includes('ro') });
  }
  return out;
}

export interface MountCheck {
  /** Expected mount points that are not there (the engine ignored them, or a host program replaced the path). */
  missing: string[];
  /** Protected mount points that are writable. */
  writable: string[];
}

/** Compares the agent's mounts with what the cage was created with (later entries win, as in the kernel's view). */
export function checkMounts(expected: ReadonlyArray<{ target: string; readOnly: boolean }>, mountInfo: MountInfoEntry[]): MountCheck {
  const last = new Map<string, MountInfoEntry>();
  for (const m of mountInfo) last.set(m.mountPoint, m);
  const r: MountCheck = { missing: [], writable: [] };
  for (const e of expected) {
    const m = last.get(e.target);
    if (!m) r.missing.push(e.target);
    else if (e.readOnly && !m.readOnly) r.writable.push(e.target);
  }
  return r;
}
