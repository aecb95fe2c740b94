// The slot's network: a host bridge at 10.213.<slot>.1/24, one network namespace per
// engine joined to it by a veth pair, and iptables rules scoped to the bridge. The host
// may run with FORWARD policy DROP and bridge-nf-call-iptables=1, so traffic between
// engines needs an explicit ACCEPT; traffic between the bridge and any other interface is
// dropped so engines reach nothing but each other and the host's bridge address.
import { readdirSync } from 'node:fs';
import { bridgeAddress, bridgeName, ruleComment, slotPrefix, type EngineLayout } from './layout.js';
import { mustRun, run } from './proc.js';

const NETNS_DIR = '/run/netns';

function rules(slot: number): string[][] {
  const br = bridgeName(slot);
  const tag = ['-m', 'comment', '--comment', ruleComment(slot)];
  return [
    ['INPUT', '-i', br, ...tag, '-j', 'ACCEPT'],
    ['OUTPUT', '-o', br, ...tag, '-j', 'ACCEPT'],
    ['FORWARD', '-i', br, '-o', br, ...tag, '-j', 'ACCEPT'],
    ['FORWARD', '-i', br, '!', '-o', br, ...tag, '-j', 'DROP'],
    ['FORWARD', '!', '-i', br, '-o', br, ...tag, '-j', 'DROP'],
  ];
}

export function createBridge(slot: number): void {
  const br = bridgeName(slot);
  mustRun('ip', ['link', 'add', br, 'type', 'bridge']);
  mustRun('ip', ['addr', 'add', `${bridgeAddress(slot)}/24`, 'dev', br]);
  mustRun('ip', ['link', 'set', br, 'up']);
  // -w: other testbeds (and every dockerd in its own netns) take the xtables lock too.
  for (const rule of rules(slot)) mustRun('iptables', ['-w', '-I', ...rule]);
}

export function createEngineNetwork(engine: EngineLayout): void {
  const { netns, hostVeth, peerVeth, address } = engine;
  const gateway = bridgeAddress(engine.slot);
  mustRun('ip', ['netns', 'add', netns]);
  mustRun('ip', ['link', 'add', hostVeth, 'type', 'veth', 'peer', 'name', peerVeth, 'netns', netns]);
  mustRun('ip', ['link', 'set', hostVeth, 'master', bridgeName(engine.slot), 'up']);
  mustRun('ip', ['-n', netns, 'link', 'set', peerVeth, 'name', 'eth0']);
  mustRun('ip', ['-n', netns, 'addr', 'add', `${address}/24`, 'dev', 'eth0']);
  mustRun('ip', ['-n', netns, 'link', 'set', 'eth0', 'up']);
  mustRun('ip', ['-n', netns, 'link', 'set', 'lo', 'up']);
  // A default route makes the namespace look like an ordinary host (swarm mode picks its
  // advertise address from it); the DROP rules keep the traffic on the bridge.
  mustRun('ip', ['-n', netns, 'route', 'add', 'default', 'via', gateway]);
}

export function netnsPath(name: string): string {
  return `${NETNS_DIR}/${name}`;
}

export function slotNetnses(slot: number): string[] {
  const prefix = slotPrefix(slot);
  try {
    return readdirSync(NETNS_DIR).filter((name) => name.startsWith(prefix));
  } catch {
    return [];
  }
}

export function slotLinks(slot: number): string[] {
  const prefix = slotPrefix(slot);
  const out = run('ip', ['-o', 'link', 'show']).stdout;
  const names: string[] = [];
  for (const line of out.split('\n')) {
    // "12: ss3-h0@if2: <BROADCAST,..." -> "ss3-h0"
    const match = /^\d+:\s+([^:@\s]+)/.exec(line);
    if (match?.[1]?.startsWith(prefix)) names.push(match[1]);
  }
  return names;
}

/** Every iptables rule (as `iptables -S` prints it) tagged with the slot's comment. */
export function slotRules(slot: number): string[] {
  const tag = ruleComment(slot);
  const out = run('iptables', ['-w', '-S']).stdout;
  return out.split('\n').filter((line) => {
    const words = line.split(/\s+/).map((w) => w.replace(/^"|"$/g, ''));
    const at = words.indexOf('--comment');
    return line.startsWith('-A ') && at >= 0 && words[at + 1] === tag;
  });
}

/** Removes the slot's namespaces, links and rules. Returns what it could not remove. */
export function removeSlotNetwork(slot: number): string[] {
  const problems: string[] = [];
  for (const ns of slotNetnses(slot)) {
    const r = run('ip', ['netns', 'del', ns]);
    if (!r.ok) problems.push(`netns ${ns}: ${r.stderr.trim()}`);
  }
  // Host veths vanish with their peer's namespace, but the kernel frees a namespace
  // asynchronously: delete them explicitly, the bridge last.
  const links = slotLinks(slot).sort((a, b) => Number(a === bridgeName(slot)) - Number(b === bridgeName(slot)));
  for (const link of links) {
    const r = run('ip', ['link', 'del', link]);
    if (!r.ok && slotLinks(slot).includes(link)) problems.push(`link ${link}: ${r.stderr.trim()}`);
  }
  for (const rule of slotRules(slot)) {
    const args = rule.split(/\s+/).map((w) => w.replace(/^"|"$/g, ''));
    args[0] = '-D';
    const r = run('iptables', ['-w', ...args]);
    if (!r.ok) problems.push(`iptables ${rule}: ${r.stderr.trim()}`);
  }
  return problems;
}
