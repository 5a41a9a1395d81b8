// Names every room must agree on — the proxy, the engine, the CLI and the editor: where the policy file is by
// default, and which environment variable holds the value of the secret an `auth:` rule names. Pure.

/** The policy file, relative to the workspace folder (the `cagedAgent.policyPath` setting and `--policy` move it). */
export const DEFAULT_POLICY_PATH = '.caged/policy.yaml';

/** Prefix of the proxy's secret variables: `auth: { secret: github }` reads CAGED_SECRET_GITHUB. */
export const SECRET_ENV_PREFIX = 'CAGED_SECRET_';

/**
 * The environment variable that carries a secret's value: the name upper-cased, every character other than
 * A-Z, 0-9 and "_" replaced by "_" ("my-token" → CAGED_SECRET_MY_TOKEN). The proxy reads it (and a secrets-file
 * line NAME=VALUE means this variable); the engine and the CLI hand values over under it.
 */
export function secretEnvName(name: string): string {
  return SECRET_ENV_PREFIX + name.toUpperCase().replace(/[^A-Z0-9_]/g, '_');
}
