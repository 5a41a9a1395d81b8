// Public surface of the pure policy core (no I/O): parse/validate, decide, edit, quick-fix choices.
export * from './types';
export * from './events';
export { canonicalHost, isIpLiteral, classifyAddress, isPublicSuffix, hostForDisplay, splitHostPort } from './host';
export type { CanonicalHost, AddressClass, HostForm, HostPortSplit } from './host';
export { normalizePath, compileGlob, splitTarget } from './path';
export type { CompiledGlob } from './path';
export { parsePolicy, parseWorkspaceRules } from './parse';
export { parseHostPattern } from './hostPattern';
export { HTTP_METHODS } from './entry';
export { parseWorkspacePath, workspacePathCovers } from './workspace';
export type { HostPattern } from './hostPattern';
export { decide, compilePolicy } from './decide';
export { addAllow, addDeny, removeEntry, updateEntry, setDisabled, moveEntry, starterPolicy } from './edit';
export type { EditResult, StarterOptions } from './edit';
export { allowChoices } from './choices';
export type { AllowChoice, BlockedRequest } from './choices';
export { ruleLabel, entryKey } from './ruleId';
export { DEFAULT_POLICY_PATH, SECRET_ENV_PREFIX, secretEnvName } from './names';
