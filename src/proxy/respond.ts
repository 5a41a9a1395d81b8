// What the proxy answers itself: blocks (403 with X-Caged-Agent-Block and a body that says what, why and how
// to allow it), upstream failures (502 with X-Caged-Agent-Error), protocol errors. Text only; the callers write it.
import { DEFAULT_POLICY_PATH } from '../policy';
import { redact } from './dlp';
import type { Block } from './gate';

/** Names the reason of every block the proxy answers (the agent's tools and the engine's verify read it). */
export const BLOCK_HEADER = 'X-Caged-Agent-Block';
/** Marks a 502 the proxy made itself (the upstream could not be reached or answered badly). */
export const ERROR_HEADER = 'X-Caged-Agent-Error';

/** A complete HTTP/1.1 response with a plain-text body, as one string. */
export function textResponse(status: number, statusText: string, headers: Array<[string, string]>, body: string, close: boolean, headOnly = false): string {
  let head = `HTTP/1.1 ${status} ${statusText}\r\n`;
  for (const [k, v] of headers) head += `${k}: ${v}\r\n`;
  head += `Content-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n`;
  if (close) head += 'Connection: close\r\n';
  return head + '\r\n' + (headOnly ? '' : body);
}

/** The body of a block: what was blocked, the reason code, the sentence that says why and what to do. */
export function blockText(what: string, reason: string, message: string): string {
  return (
    `Caged Agent blocked ${what}\n` +
    `Reason: ${reason}\n` +
    `${message}\n` +
    `This is the cage's network policy, not a network failure. The user can allow it from the editor ` +
    `(Caged Agent: Allow... on the block notification) or by editing ${DEFAULT_POLICY_PATH}.\n`
  );
}

/**
 * The 403 for a block. `what` names the request ("GET https://host/path", "CONNECT host:port"); what it and the
 * message show of the request is redacted (see dlp.ts).
 */
export function blockResponse(what: string, b: Block, close: boolean, headOnly = false): string {
  return textResponse(403, 'Forbidden', [[BLOCK_HEADER, b.reason], ['Cache-Control', 'no-store']], blockText(redact(what), b.reason, redact(b.message)), close, headOnly);
}

/** The 502 the proxy answers when the upstream could not be reached or sent something invalid. */
export function upstreamErrorResponse(body: string, close: boolean): string {
  return textResponse(502, 'Bad Gateway', [[ERROR_HEADER, 'upstream-error']], body, close);
}
