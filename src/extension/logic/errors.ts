// An error's message for a person (an Error's message, else the value as text). Pure.
export function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** How a Doctor check shows: a warning is a warning (not a failure), whatever its ok. */
export function doctorMark(c: { ok: boolean; warning?: boolean }): { icon: string; word: string } {
  if (c.warning) return { icon: '$(warning)', word: 'WARN' };
  return c.ok ? { icon: '$(pass)', word: 'OK  ' } : { icon: '$(error)', word: 'FAIL' };
}
