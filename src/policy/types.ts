// The policy model shared by the proxy, the engine and the editor. Pure data: no I/O here.

/** A 1-based position in the policy file, as editors show it. */
export interface SourcePos {
  line: number;
  col: number;
  endLine: number;
  endCol: number;
}

export interface AuthSpec {
  /** e.g. "Bearer", "token", "Basic". */
  scheme: string;
  /** Secret name; the proxy reads env CAGED_SECRET_<NAME upper-cased>. */
  secret: string;
}

export type RuleList = 'allow' | 'deny';
export type HostKind = 'exact' | 'wildcard' | 'ip';

export interface Rule {
  list: RuleList;
  /** Position of the entry inside its list (0-based); edits address entries by (list, index). */
  index: number;
  /** The host as written in the file (without port), e.g. "*.npmjs.org". */
  hostText: string;
  /**
   * Normalised host: lower-case, no trailing dot; for 'wildcard' the parent domain without "*.";
   * for 'ip' the canonical literal (IPv6 without brackets, compressed, lower-case).
   */
  host: string;
  kind: HostKind;
  /** Explicit port; undefined means the default ports 80 and 443. */
  port?: number;
  /** Upper-case methods; undefined means any method. */
  methods?: string[];
  /** Path globs ("/org/**", "/v1/*"); undefined means any path. */
  paths?: string[];
  auth?: AuthSpec;
  /** false: tunnel without TLS interception (host-level decision only). Default true. */
  intercept: boolean;
  /** true: the host may resolve to a private/loopback/link-local address. Default false. */
  private: boolean;
  /** true: the entry is kept in the file but ignored ("disabled: true"). */
  disabled: boolean;
  /** Set on a temporary allow (never from the file): its id, and when it ends (epoch ms; absent: with the session). */
  temporary?: { id: string; expires?: number };
  /**
   * Raw TCP ports (`tcp: [22]`, allow entries only): the entry lets connections to these ports of the host
   * through, uninspected (host-level decision only), and allows no HTTP. Undefined for an HTTP entry.
   */
  tcp?: number[];
  /** Where the entry is in the file. */
  pos: SourcePos;
}

export interface Policy {
  version: 1;
  /**
   * What happens to a request no rule matches: "deny" (the default) answers 403 at once; "ask" holds it for
   * up to askTimeout seconds while the user is asked (the proxy's hold.ts).
   */
  onUnknown?: 'ask' | 'deny';
  /** Seconds a held request waits for an answer (1-600, default 60); then 403 "no-decision". */
  askTimeout?: number;
  allow: Rule[];
  deny: Rule[];
  /** The `workspace:` section, when the file has one: paths the agent may or may not change. */
  workspace?: WorkspaceRules;
}

/** One entry of `workspace.protect` or `workspace.writable`: a path relative to the workspace folder. */
export interface WorkspacePath {
  /** Normalised: "/" separators, no "./", no trailing "/" (".github/workflows", "Makefile"). */
  path: string;
  /** Written with a trailing "/" or "/**": the entry names a folder. */
  dir: boolean;
  /** As written in the file. */
  text: string;
  pos: SourcePos;
}

export interface WorkspaceRules {
  /** More paths the agent cannot change (read-only inside the cage), on top of the built-in ones. */
  protect: WorkspacePath[];
  /** Built-in protected paths the user lets the agent change: the visible opt-out. */
  writable: WorkspacePath[];
}

export interface PolicyIssue {
  severity: 'error' | 'warning';
  /** Plain words for a user, e.g. "allow[2].host: \"*.com\" would allow a whole public suffix". */
  message: string;
  pos: SourcePos;
}

export interface ParseResult {
  /** Present only when there are no errors. */
  policy?: Policy;
  errors: PolicyIssue[];
  warnings: PolicyIssue[];
  /** Where each top-level key ("version", "allow", "deny", "workspace") is written, when the YAML could be read. */
  keys?: Partial<Record<string, SourcePos>>;
}

/** What the proxy knows about one request. */
export interface RequestInfo {
  /** Host as the client sent it (any case, maybe a trailing dot, maybe an IP literal, IPv6 with or without brackets). */
  host: string;
  port: number;
  /** Upper-case method; undefined when deciding at CONNECT time (host level only). */
  method?: string;
  /** Raw request path (origin-form, may include a query string); undefined at CONNECT time. */
  path?: string;
}

export type ReasonCode =
  | 'allowed'
  | 'no-matching-rule'
  | 'denied-by-rule'
  | 'method-not-allowed'
  | 'path-not-allowed'
  | 'ip-literal'
  | 'bad-path'
  | 'policy-invalid'
  // Decided by the proxy, outside the pure policy engine:
  | 'private-address'
  | 'secret-detected'
  | 'secret-missing'
  | 'insecure-auth'
  | 'method-refused'
  | 'sni-mismatch'
  | 'bad-request'
  | 'upstream-error'
  // A held request (onUnknown: ask) nobody answered within askTimeout, or that could not be held:
  | 'no-decision';

export interface Decision {
  action: 'allow' | 'deny';
  reason: ReasonCode;
  /** The rule that decided (the allow rule that matched, or the deny rule that blocked). */
  rule?: Rule;
  /** One sentence for the agent/user explaining the decision. */
  message: string;
  /** The normalised path the decision was made on (forward this, not the raw one). */
  normalizedPath?: string;
  /** What to put on the upstream request line: normalizedPath plus the original query string ("?a=1"), no fragment. */
  forwardPath?: string;
}

/** A request as the editor shows it: what "Allow ..." quick fixes are built from. */
export interface AllowSpec {
  /** Host pattern to write: "api.example.com", "*.example.com", "10.0.0.5", "[::1]". */
  host: string;
  port?: number;
  methods?: string[];
  paths?: string[];
  private?: boolean;
  intercept?: boolean;
  /** Raw TCP ports: an entry like "- host: github.com\n  tcp: [22]". */
  tcp?: number[];
}
