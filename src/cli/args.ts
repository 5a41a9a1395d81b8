// The command line's arguments: flags and positionals, the usage error, stderr.

export interface Args {
  positional: string[];
  flags: Map<string, string[]>;
  rest: string[];
}

export const BOOLEAN = new Set(['--json', '--private', '--images', '--help', '-h', '--version', '--once', '--session']);

export function parseArgs(argv: string[]): Args {
  const a: Args = { positional: [], flags: new Map(), rest: [] };
  for (let i = 0; i < argv.length; i++) {
    let s = argv[i];
    if (s === '--') { a.rest = argv.slice(i + 1); break; }
    if (s.startsWith('-') && s !== '-') {
      let value: string | undefined;
      const eq = s.indexOf('=');
      if (s.startsWith('--') && eq > 0) { value = s.slice(eq + 1); s = s.slice(0, eq); }
      if (BOOLEAN.has(s)) value = value ?? 'true';
      else if (value === undefined) {
        value = argv[++i];
        if (value === undefined) throw new UsageError(`${s} needs a value`);
      }
      a.flags.set(s, [...(a.flags.get(s) ?? []), value]);
    } else a.positional.push(s);
  }
  return a;
}

export class UsageError extends Error {}

export function flag(a: Args, name: string): string | undefined {
  const v = a.flags.get(name);
  return v ? v[v.length - 1] : undefined;
}

export function checkFlags(a: Args, allowed: string[]): void {
  for (const k of a.flags.keys()) if (!allowed.includes(k)) throw new UsageError(`unknown option ${k}`);
}

export function err(s: string): void {
  process.stderr.write(s + '\n');
}
