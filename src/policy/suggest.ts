// Typo suggestions for the policy's field names ("hots" → "host"), and the unknown-field error built on them.
// Pure.

/** Edit distance where swapping two neighbouring letters counts as one edit ("hots" -> "host"). */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

/** The closest known name, if it is close enough to be a plausible typo. */
export function suggest(word: string, known: readonly string[]): string | undefined {
  const w = word.toLowerCase();
  if (w.length > 40) return undefined;
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of known) {
    const d = editDistance(w, k);
    if (d < bestD) {
      bestD = d;
      best = k;
    }
  }
  return best !== undefined && bestD <= (best.length <= 3 ? 1 : 2) && bestD < w.length ? best : undefined;
}

/**
 * The error for an unknown field `name` at `where` ("allow[2]", "allow[2].auth", "" for the top level): a
 * pointer for the two fields people reach for ("port", "url"), else the closest known name or the list of them.
 */
export function unknownFieldMessage(where: string, name: string, known: readonly string[]): string {
  const prefix = where ? `${where}: ` : '';
  if (name === 'port') return `${prefix}unknown field "port" — write the port in the host, like "host: example.com:8443"`;
  if (name === 'url') return `${prefix}unknown field "url" — write the host under "host:" and the path under "paths:"`;
  const s = suggest(name, known);
  return `${prefix}unknown field ${JSON.stringify(name)}` + (s ? ` — did you mean "${s}"?` : ` (known fields: ${known.join(', ')})`);
}
