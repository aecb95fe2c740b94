// port: a host port can be held by one container per node.
//
// Bridge mode (anything but --net=host) asks for HostConfig.PortBindings;
// host mode asks for every ExposedPorts entry on all interfaces. A request
// conflicts with a port a container on the node already holds when the port
// number and protocol are the same and the addresses overlap (equal, or
// either of them all interfaces). Every container counts: an exited
// container keeps its binding until it is removed, and a pending create
// holds its ports from the moment it was placed (two `compose scale` creates
// racing for port 80 must not land on the same node).
//
// Classic compared bridge bindings without their protocol; here 53/udp and
// 53/tcp do not conflict, as on a real engine. Classic also checked host-mode
// requests only against other host-mode containers and bridge requests only
// against bindings; here both kinds are checked against every held port,
// since the engine would refuse either conflict at start.

import type { ContainerSpec, Filter, PortProtocol, PublishedPort, SchedNode } from '../types.js';

export const portFilter: Filter = {
  filter(spec, nodes) {
    let candidates = [...nodes];
    for (const request of requestedPorts(spec)) {
      candidates = candidates.filter((node) => canBind(node, request));
      if (candidates.length === 0) {
        const reason =
          request.mode === 'host'
            ? `unable to find a node with port ${request.label} available in the Host mode`
            : `unable to find a node with port ${request.label} available`;
        return { ok: false, reason };
      }
    }
    return { ok: true, nodes: candidates };
  },
  conditions(spec) {
    return {
      ok: true,
      items: requestedPorts(spec).map((r) => `port ${r.label} (${r.mode === 'host' ? 'Host' : 'Bridge'} mode)`),
    };
  },
};

interface PortRequest {
  mode: 'host' | 'bridge';
  /** How classic named it: "80/tcp" in host mode, the HostPort in bridge mode. */
  label: string;
  hostIp: string;
  /** Candidate host ports; the engine takes any free one of a range. */
  ports: number[];
  protocol: PortProtocol;
}

export function requestedPorts(spec: ContainerSpec): PortRequest[] {
  const host = spec.config.HostConfig ?? {};
  const requests: PortRequest[] = [];
  if (host.NetworkMode === 'host') {
    for (const key of Object.keys(spec.config.ExposedPorts ?? {})) {
      const { ports, protocol } = parsePortKey(key);
      if (ports.length > 0) requests.push({ mode: 'host', label: key, hostIp: '', ports, protocol });
    }
    return requests;
  }
  for (const [key, bindings] of Object.entries(host.PortBindings ?? {})) {
    const { protocol } = parsePortKey(key);
    for (const binding of bindings ?? []) {
      const hostPort = binding.HostPort ?? '';
      const ports = parsePortRange(hostPort);
      // Without a host port the engine picks a free one: nothing to conflict with.
      if (ports.length === 0) continue;
      requests.push({ mode: 'bridge', label: hostPort, hostIp: binding.HostIp ?? '', ports, protocol });
    }
  }
  return requests;
}

function canBind(node: SchedNode, request: PortRequest): boolean {
  const held = node.containers.flatMap((c) => c.publishedPorts);
  return request.ports.some((port) => !held.some((p) => conflicts(p, request, port)));
}

function conflicts(held: PublishedPort, request: PortRequest, port: number): boolean {
  return (
    held.hostPort === port &&
    held.protocol === request.protocol &&
    (held.hostIp === request.hostIp || isAllInterfaces(held.hostIp) || isAllInterfaces(request.hostIp))
  );
}

function isAllInterfaces(ip: string): boolean {
  const address = ip.replace(/^\[|\]$/g, '');
  if (address === '' || address === '0.0.0.0') return true;
  if (!address.includes(':')) return false;
  // IPv6 unspecified in any spelling ("::", "0:0::0", ...), or IPv4-mapped 0.0.0.0.
  return /^[0:]+$/.test(address) || /^::ffff:0\.0\.0\.0$/i.test(address);
}

/** "80/udp" -> port 80, udp; "80" -> tcp; "8000-8002/tcp" -> 8000..8002. */
function parsePortKey(key: string): { ports: number[]; protocol: PortProtocol } {
  const slash = key.indexOf('/');
  const portText = slash < 0 ? key : key.slice(0, slash);
  const protocolText = slash < 0 ? 'tcp' : key.slice(slash + 1).toLowerCase();
  return { ports: parsePortRange(portText), protocol: toProtocol(protocolText) };
}

function toProtocol(text: string): PortProtocol {
  switch (text) {
    case 'udp':
    case 'sctp':
      return text;
    default:
      return 'tcp';
  }
}

function parsePortRange(text: string): number[] {
  const match = /^(\d+)(?:-(\d+))?$/.exec(text.trim());
  if (match === null) return [];
  const first = Number(match[1]);
  const last = match[2] === undefined ? first : Number(match[2]);
  if (first < 1 || last > 65535 || last < first) return [];
  const ports: number[] = [];
  for (let p = first; p <= last; p++) ports.push(p);
  return ports;
}
