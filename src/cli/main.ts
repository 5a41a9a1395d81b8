// `caged-agent`: the command line over the same engine the extension uses (bundled to dist/cli.js).
// One file per group of commands: cage.ts, policy.ts, ask.ts; args.ts and common.ts are what they share.
import { DEFAULT_AGENT_IMAGE, DEFAULT_PROXY_BASE_IMAGE } from '../engine';
import { err, parseArgs, UsageError, type Args } from './args';
import { cmdAllow, cmdReload } from './policy';
import { cmdDeny, cmdPending, cmdRevoke } from './ask';
import { cmdDoctor, cmdDown, cmdEvents, cmdGc, cmdShell, cmdStatus, cmdUp, cmdVerify } from './cage';

const HELP = `Usage: caged-agent <command> [options]

Runs an AI coding agent in a Docker container whose only way out is an egress proxy enforcing
a default-deny policy (.caged/policy.yaml in the workspace).

Commands:
  up [--workspace DIR] [--image IMAGE] [--policy FILE] [--proxy-base-image IMAGE]
     [--upstream-ca FILE] [--upstream-proxy URL] [--secret NAME]...
                      start the cage for DIR (default: the current folder). Progress goes to
                      stderr; the cage id is the last line of stdout. Exits 0 once the agent runs.
                      --secret NAME passes $CAGED_SECRET_NAME from this environment to the proxy
                      only (for policy entries with auth: {secret: NAME}).
  down [CAGE] [--images]
                      stop the cage and remove its containers, network and volume (idempotent);
                      --images: also its agent image (it embeds the cage's CA; a restart rebuilds it)
  status [--json]     list cages, their health and their temporary allows and denies
  verify [CAGE] [--allowed-url URL] [--blocked-url URL] [--external-name NAME] [--tcp HOST:PORT] [--json]
                      run the isolation checks from inside the agent; exits 0 only if all pass
  allow HOST [--once | --for DURATION | --session] [--private] [--path GLOB]... [--method M]...
     [--policy FILE] [--cage CAGE]
                      answer the requests waiting for HOST and allow it: --once (only those waiting,
                      nothing added), --for 30s/15m/1h or --session (until the cage stops): a
                      temporary allow, kept out of the policy file. Without one of them: add HOST to
                      the policy's allow list (comments kept) and reload the proxy
  deny HOST [CAGE] [--once]
                      refuse the requests waiting for HOST with 403 and deny it until the cage stops
                      (--once: only the waiting ones)
  revoke HOST|ID [CAGE]
                      end a temporary allow or deny
  pending [CAGE] [--json]
                      list the requests waiting for an answer (policy onUnknown: ask) and the
                      temporary allows and denies in force
  reload [CAGE]       push the cage's policy file to its proxy again
  events [CAGE] [--json] [--since SECONDS]
                      follow the proxy's allow/block/pending events, one line each (Ctrl-C stops)
  shell [CAGE] [-- CMD...]
                      open an interactive shell (or run CMD) in the agent container
  gc [--images]       remove leftovers: proxies without an agent, empty cage networks, unused
                      volumes (--images: also cached images no container uses). Labelled objects only.
  doctor [--image IMAGE] [--proxy-base-image IMAGE]
                      check the Docker engine, its version and known caveats, and the images

CAGE is a cage id (ca-XXXXXXXXXX) or a workspace folder; default: the cage of the current folder.

Environment: DOCKER_HOST (engine address), CAGED_AGENT_STATE_DIR (default $XDG_STATE_HOME/caged-agent
or ~/.local/state/caged-agent: the per-cage CA, key file mode 600), CAGED_AGENT_PROXY_BASE_IMAGE
(default ${DEFAULT_PROXY_BASE_IMAGE}), CAGED_AGENT_IMAGE (default: devcontainer.json image, else
${DEFAULT_AGENT_IMAGE}).`;

const COMMANDS: Record<string, (a: Args) => Promise<number>> = {
  up: cmdUp,
  down: cmdDown,
  status: cmdStatus,
  verify: cmdVerify,
  allow: cmdAllow,
  deny: cmdDeny,
  revoke: cmdRevoke,
  pending: cmdPending,
  reload: cmdReload,
  events: cmdEvents,
  shell: cmdShell,
  gc: cmdGc,
  doctor: cmdDoctor,
};

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    process.stdout.write(HELP + '\n');
    return cmd ? 0 : 2;
  }
  if (cmd === '--version') {
    process.stdout.write('caged-agent 0.1.0\n');
    return 0;
  }
  const fn = COMMANDS[cmd];
  if (!fn) {
    err(`caged-agent: unknown command "${cmd}"\n\n${HELP}`);
    return 2;
  }
  try {
    const args = parseArgs(rest);
    if (args.flags.has('--help') || args.flags.has('-h')) {
      process.stdout.write(HELP + '\n');
      return 0;
    }
    return await fn(args);
  } catch (e) {
    if (e instanceof UsageError) {
      err(`caged-agent ${cmd}: ${e.message} (see caged-agent --help)`);
      return 2;
    }
    err(`caged-agent ${cmd}: ${(e as Error).message}`);
    return 1;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    // Exit explicitly: the Docker client keeps sockets alive and event/shell streams hold the loop open.
    // Writes to a pipe are asynchronous: let stdout and stderr drain first, or piped output is lost.
    async (code) => {
      await Promise.all([process.stdout, process.stderr].map((s) => new Promise<void>((r) => s.write('', () => r()))));
      process.exit(code);
    },
    (e) => {
      err(`caged-agent: ${(e as Error).message}`);
      process.exit(1);
    },
  );
}
