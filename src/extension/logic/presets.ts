// Agent presets offered by "Start Caged Agent": a command to run in the agent terminal, a base image, and the
// hosts that agent needs for a first start (its API and the registry it installs from). Pure data.

export interface AgentPreset {
  id: 'claude-code' | 'codex' | 'aider' | 'custom';
  label: string;
  description: string;
  /** Default base image (a public image; the user's setting wins). */
  image: string;
  /** Shell command run in the agent terminal; empty means a plain shell. */
  command: string;
  /** Programs the command needs on the image's PATH (checked before the start). */
  requires: string[];
  hosts: { host: string; comment: string }[];
}

export const PRESETS: AgentPreset[] = [
  {
    id: 'claude-code',
    label: 'Claude Code',
    description: 'Anthropic\'s coding agent (installed from npm on first run)',
    image: 'node:20-bookworm',
    command: 'npx -y @anthropic-ai/claude-code',
    requires: ['npx'],
    hosts: [
      { host: 'api.anthropic.com', comment: 'Claude API' },
      { host: 'registry.npmjs.org', comment: 'npm registry (installs the CLI)' },
    ],
  },
  {
    id: 'codex',
    label: 'Codex CLI',
    description: 'OpenAI\'s coding agent (installed from npm on first run)',
    image: 'node:20-bookworm',
    command: 'npx -y @openai/codex',
    requires: ['npx'],
    hosts: [
      { host: 'api.openai.com', comment: 'OpenAI API' },
      { host: 'auth.openai.com', comment: 'sign-in' },
      { host: 'registry.npmjs.org', comment: 'npm registry (installs the CLI)' },
    ],
  },
  {
    id: 'aider',
    label: 'Aider',
    description: 'AI pair programming in your terminal (installed from PyPI on first run)',
    image: 'python:3.12-bookworm',
    command: 'pip install --user --quiet aider-chat && ~/.local/bin/aider',
    requires: ['pip'],
    hosts: [
      { host: 'pypi.org', comment: 'Python package index' },
      { host: 'files.pythonhosted.org', comment: 'Python package downloads' },
      { host: 'api.openai.com', comment: 'OpenAI API (if you use OpenAI models)' },
      { host: 'api.anthropic.com', comment: 'Claude API (if you use Claude models)' },
    ],
  },
  {
    id: 'custom',
    label: 'Custom command',
    description: 'Any CLI: you give the image and the command',
    image: 'node:20-bookworm',
    command: '',
    requires: [],
    hosts: [],
  },
];

export function presetById(id: string | undefined): AgentPreset | undefined {
  return PRESETS.find((p) => p.id === id);
}
