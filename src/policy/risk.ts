// Risk notes for allow choices (issue 17): hosts where an allow is an exfiltration channel. A curated list,
// kept short on purpose and documented in the README: code/text paste sites, file drops, webhook catchers and
// request bins, and tunnels that expose or reach arbitrary endpoints. Matched on the registrable name and
// below (gist.github.com is listed; github.com is not). Pure.

/** Host (and every name under it) → what an allow there means. */
const UPLOAD_HOSTS: Record<string, string> = {
  // paste and gist sites
  'gist.github.com': 'paste',
  'gist.githubusercontent.com': 'paste',
  'pastebin.com': 'paste',
  'paste.ee': 'paste',
  'hastebin.com': 'paste',
  'dpaste.org': 'paste',
  'dpaste.com': 'paste',
  'ghostbin.com': 'paste',
  'rentry.co': 'paste',
  'paste.rs': 'paste',
  'ix.io': 'paste',
  'sprunge.us': 'paste',
  'termbin.com': 'paste',
  'controlc.com': 'paste',
  'justpaste.it': 'paste',
  // file drops
  'transfer.sh': 'file drop',
  'file.io': 'file drop',
  '0x0.st': 'file drop',
  'temp.sh': 'file drop',
  'catbox.moe': 'file drop',
  'litterbox.catbox.moe': 'file drop',
  'wetransfer.com': 'file drop',
  'gofile.io': 'file drop',
  'anonfiles.com': 'file drop',
  'bashupload.com': 'file drop',
  'oshi.at': 'file drop',
  'uguu.se': 'file drop',
  // webhook catchers and request bins
  'webhook.site': 'webhook catcher',
  'requestbin.com': 'webhook catcher',
  'pipedream.net': 'webhook catcher',
  'requestcatcher.com': 'webhook catcher',
  'beeceptor.com': 'webhook catcher',
  'hookbin.com': 'webhook catcher',
  'interact.sh': 'webhook catcher',
  'oast.fun': 'webhook catcher',
  'oast.pro': 'webhook catcher',
  'burpcollaborator.net': 'webhook catcher',
  'canarytokens.com': 'webhook catcher',
  'discord.com': 'chat webhook',
  'discordapp.com': 'chat webhook',
  'hooks.slack.com': 'chat webhook',
  'api.telegram.org': 'chat bot',
  // tunnels
  'ngrok.io': 'tunnel',
  'ngrok.app': 'tunnel',
  'ngrok-free.app': 'tunnel',
  'trycloudflare.com': 'tunnel',
  'loca.lt': 'tunnel',
  'localtunnel.me': 'tunnel',
  'serveo.net': 'tunnel',
  'localhost.run': 'tunnel',
  'lhr.life': 'tunnel',
  'pagekite.me': 'tunnel',
  'bore.pub': 'tunnel',
};

/** The names the list holds (README, tests). */
export const UPLOAD_HOST_LIST: readonly string[] = Object.keys(UPLOAD_HOSTS);

/** What kind of upload host `host` (canonical, lower-case; "*.x" for a wildcard) is, or undefined. */
export function uploadKind(host: string): string | undefined {
  let h = host.startsWith('*.') ? host.slice(2) : host;
  for (;;) {
    const k = UPLOAD_HOSTS[h];
    if (k) return k;
    const dot = h.indexOf('.');
    if (dot < 0) return undefined;
    h = h.slice(dot + 1);
  }
}

/** The one-line risk note of allowing `host`, when one applies (an allow there lets the agent send data out). */
export function uploadRisk(host: string): string | undefined {
  const k = uploadKind(host);
  return k ? `${host} is a ${k} host: allowing it lets the agent send your code or secrets anywhere; prefer "once" or a short time` : undefined;
}

/**
 * A host name whose labels mix scripts (Latin with Cyrillic or Greek, the usual homograph), in its Unicode
 * form. Pure character-class check: ASCII letters and digits are Latin; a label with letters from two of
 * Latin, Cyrillic, Greek is flagged.
 */
export function mixedScript(unicodeHost: string): boolean {
  for (const label of unicodeHost.split('.')) {
    let latin = false;
    let cyrillic = false;
    let greek = false;
    for (const ch of label) {
      const c = ch.codePointAt(0)!;
      if ((c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0xc0 && c <= 0x24f)) latin = true;
      else if (c >= 0x400 && c <= 0x52f) cyrillic = true;
      else if (c >= 0x370 && c <= 0x3ff) greek = true;
    }
    if (Number(latin) + Number(cyrillic) + Number(greek) > 1) return true;
  }
  return false;
}

/** Which scripts a mixed label combines, in words ("Latin and Cyrillic"). */
function scriptsOf(unicodeHost: string): string[] {
  const found = new Set<string>();
  for (const ch of unicodeHost) {
    const c = ch.codePointAt(0)!;
    if ((c >= 0x61 && c <= 0x7a) || (c >= 0xc0 && c <= 0x24f)) found.add('Latin');
    else if (c >= 0x400 && c <= 0x52f) found.add('Cyrillic');
    else if (c >= 0x370 && c <= 0x3ff) found.add('Greek');
  }
  return ['Latin', 'Cyrillic', 'Greek'].filter((x) => found.has(x));
}

/**
 * The IDN note of a host: its Unicode form next to the ASCII (punycode) one when they differ, and a warning
 * when a label mixes scripts (a homograph such as "аpple.com" with a Cyrillic "а"). `unicode` is the host's
 * Unicode form, decoded by the caller (Node's url.domainToUnicode: this module stays free of Node built-ins).
 */
export function idnNote(ascii: string, unicode: string): string | undefined {
  if (!unicode || unicode === ascii) return undefined;
  const mixed = mixedScript(unicode);
  return `${unicode} is ${ascii} in the form clients send${mixed ? `; it mixes ${scriptsOf(unicode).join(' and ')} letters, as look-alike (homograph) names do: check it is the site you mean` : ''}`;
}
