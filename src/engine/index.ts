// The engine's public surface: the contract types (api.ts), the CageEngine and the shared names.
export * from './api';
export { CageEngine, PROXY_ENV, TELEMETRY_ENV } from './engine';
export type { CageEngineOptions } from './engine';
export {
  DEFAULT_AGENT_IMAGE,
  DEFAULT_PROXY_BASE_IMAGE,
  EGRESS_NETWORK,
  PROXY_ALIAS,
  PROXY_PORT,
  PROXY_URL,
  LABEL,
  LABEL_CAGE,
  LABEL_ROLE,
  LABEL_WORKSPACE,
  AGENT_CA_FILE,
  AGENT_BUNDLE_FILE,
  cageIdFor,
  canonicalWorkspace,
  isCageId,
  names,
} from './names';
export { defaultStateDir } from './state';
export { devcontainerImage, stripJsonc } from './devcontainer';
export { AGENT_ENV_CA, CA_BUNDLE_PATHS } from './images';
export { TERMINAL_ENV, type TerminalSelector } from './terminals';
export { DEFAULT_BLOCKED_URL, DEFAULT_EXTERNAL_NAME, verifySummary } from './verify';
export type { ProxyEvent } from '../policy/events';
export type { AskAnswer, AnswerResult, AskState } from './ask';
export type { PendingGroup, TemporaryEntry } from '../policy';
