// The cage's networks: one internal network per cage (the agent and its proxy), the shared egress network only
// proxies join, and what to say when the engine has no address range left for another network.
import type Docker from 'dockerode';
import { dockerMessage, isNotFound, removeWhenFree, statusOf } from './dockerutil';
import { EGRESS_NETWORK, LABEL } from './names';
import { cageAddressPlan, cageNetworkSpec, egressNetworkSpec } from './specs';

/** The engine could not allocate a subnet for a new network from its address pools. */
export class PoolExhaustedError extends Error {}

/**
 * docker.createNetwork, except that used-up address pools (every network needs a range from them) become a
 * PoolExhaustedError that says so plainly and what to do.
 */
async function createNetwork(docker: Docker, spec: Docker.NetworkCreateOptions): Promise<Docker.Network> {
  try {
    return await docker.createNetwork(spec);
  } catch (e) {
    if (!/non-overlapping IPv4 address pool|address pools have been fully subnetted/i.test(dockerMessage(e))) throw e;
    const ours = await docker.listNetworks({ filters: { label: [`${LABEL}=1`] } }).catch(() => []);
    throw new PoolExhaustedError(
      `Docker has no free address range left for another network (${dockerMessage(e)}). ${ours.length} of its networks belong to Caged Agent. ` +
        'Stop cages you no longer need (Caged Agent: Stop, or "caged-agent down" / "caged-agent gc"), remove other unused networks ("docker network prune"), ' +
        'or give the engine more room with "default-address-pools" in its daemon.json.',
    );
  }
}

/** A cage network, and the proxy's fixed address on it (undefined: the engine assigns one at each start). */
export interface CageNetwork {
  network: Docker.Network;
  proxyIp?: string;
}

/** The internal network, without a host address on its bridge when the engine allows it (see cageNetworkSpec). */
async function createInternal(docker: Docker, id: string, workspace: string, progress: (m: string) => void): Promise<Docker.Network> {
  try {
    return await createNetwork(docker, cageNetworkSpec(id, workspace, true));
  } catch (e) {
    if (statusOf(e) === 409 || e instanceof PoolExhaustedError) throw e;
    progress(`the engine refused a bridge without a host address (${dockerMessage(e)}); the agent may reach services on the engine host`);
    return createNetwork(docker, cageNetworkSpec(id, workspace, false));
  }
}

/**
 * The cage's internal network, with the proxy's address pinned (cageAddressPlan): the engine picks the subnet from
 * its pools for a network created without one; the network is then created again with that subnet laid out, the
 * only way Docker accepts a fixed address. When another network took the subnet in between, this is tried again;
 * an engine that refuses the layout gets the network it picked, with nothing pinned (said in the progress).
 */
export async function createCageNetwork(docker: Docker, id: string, workspace: string, progress: (m: string) => void): Promise<CageNetwork> {
  let why = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const picked = await createInternal(docker, id, workspace, progress);
    const info = await picked.inspect();
    const v4 = (info.IPAM?.Config ?? []).find((c: { Subnet?: string }) => c.Subnet && !c.Subnet.includes(':'));
    const plan = v4?.Subnet ? cageAddressPlan(v4.Subnet, v4.Gateway) : undefined;
    if (!plan) {
      progress(`the proxy's address is not pinned (the cage network got ${v4?.Subnet ?? 'no IPv4 subnet'}): after a restart of the proxy, lookups in the agent may point at its old address`);
      return { network: picked };
    }
    const hostless = info.Options?.['com.docker.network.bridge.inhibit_ipv4'] === 'true';
    await removeNetwork(docker, info.Id);
    try {
      const network = await createNetwork(docker, cageNetworkSpec(id, workspace, hostless, plan));
      return { network, proxyIp: plan.proxyIp };
    } catch (e) {
      if (statusOf(e) === 409) throw e;
      why = dockerMessage(e);
    }
  }
  progress(`the engine refused a fixed address for the proxy (${why}); after a restart of the proxy, lookups in the agent may point at its old address`);
  return { network: await createInternal(docker, id, workspace, progress) };
}

/** Creates the shared egress network when missing (labelled; reused by every cage). */
export async function ensureEgressNetwork(docker: Docker): Promise<void> {
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const info = await docker.getNetwork(EGRESS_NETWORK).inspect();
      if (info.Labels?.[LABEL] !== '1') {
        throw new Error(`a network named ${EGRESS_NETWORK} exists that Caged Agent did not create; remove or rename it`);
      }
      if (info.Internal) throw new Error(`the network ${EGRESS_NETWORK} is internal; it must reach the outside`);
      return;
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
    try {
      await createNetwork(docker, egressNetworkSpec());
      return;
    } catch (e) {
      if (statusOf(e) !== 409) throw e; // created concurrently: inspect again
    }
  }
}

/** Removes a network (true), or finds it gone (false); waits while it still has endpoints right after its containers went. */
export function removeNetwork(docker: Docker, idOrName: string): Promise<boolean> {
  // 403/409 "has active endpoints" right after a container removal: give the engine a moment.
  return removeWhenFree(() => docker.getNetwork(idOrName).remove(), [403, 409], `the network ${idOrName} still has containers attached`);
}
