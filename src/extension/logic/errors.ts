// An error's message for a person (an Error's message, else the value as text). Pure.
export function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** How a Doctor check shows: a warning is a warning (not a failure), whatever its ok. */
export function doctorMark(c: { ok: boolean; warning?: boolean }): { icon: string; word: string } {
  if (c.warning) return { icon: '$(warning)', word: 'WARN' };
  return c.ok ? { icon: '$(pass)', word: 'OK  ' } : { icon: '$(error)', word: 'FAIL' };
}

/** The buttons of a failed start, by the step that failed: the next step that fits first, Show Log last. */
export function startErrorActions(step: string | undefined): string[] {
  if (step === 'engine') return ['Run Doctor', 'Retry', 'Show Log'];
  if (step === 'agent-image' || step === 'proxy-image') return ['Open Settings', 'Retry', 'Show Log'];
  return ['Retry', 'Run Doctor', 'Show Log'];
}
