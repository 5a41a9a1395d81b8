// An error's message for a person (an Error's message, else the value as text). Pure.
export function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
