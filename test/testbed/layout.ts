// Every name and address a slot uses, derived from the slot number alone, so that a
// later process can find and remove what a dead one left behind. Interface names stay
// within Linux's 15 characters ("ss254-h199" is 10).
import { checkSlot, childPath, slotDir } from './paths.js';

export const ENGINE_PORT = 2375;
/** Where an engine listens when the testbed runs it with --tlsverify (Docker's TLS convention). */
export const ENGINE_TLS_PORT = 2376;
export const REGISTRY_PORT = 5000;
/** Engine addresses are .11, .12, ...: at most 200 engines keeps them below .255. */
export const MAX_ENGINES = 200;

/** Prefix shared by every netns and link of a slot; the '-' keeps slot 3 apart from 30. */
export function slotPrefix(slot: number): string {
  return `ss${checkSlot(slot)}-`;
}

export function bridgeName(slot: number): string {
  return `${slotPrefix(slot)}br`;
}

export function bridgeAddress(slot: number): string {
  return `10.213.${checkSlot(slot)}.1`;
}

/** Comment on every iptables rule of the slot: how cleanup finds them again. */
export function ruleComment(slot: number): string {
  return `swarmshift-tb${checkSlot(slot)}`;
}

/** Parent cgroup of the slot's containers (one per engine below it, under the prefix). */
export function cgroupPrefix(slot: number): string {
  return `swarmshift-tb${checkSlot(slot)}-`;
}

export interface EngineLayout {
  readonly slot: number;
  readonly index: number;
  /** Hostname inside the engine's UTS namespace; the Name in `docker info`. */
  readonly name: string;
  readonly netns: string;
  /** Host end of the veth pair, enslaved to the bridge. */
  readonly hostVeth: string;
  /** Engine end before it is moved into the netns and renamed eth0. */
  readonly peerVeth: string;
  readonly address: string;
  readonly cgroupParent: string;
  readonly dir: string;
}

export function engineLayout(slot: number, index: number): EngineLayout {
  if (!Number.isInteger(index) || index < 0 || index >= MAX_ENGINES) throw new Error(`testbed: invalid engine index ${index}`);
  const prefix = slotPrefix(slot);
  return {
    slot,
    index,
    // Names are 1-based like the address suffix: engine 0 is tb3-node1 at 10.213.3.11.
    name: `tb${slot}-node${index + 1}`,
    netns: `${prefix}e${index}`,
    hostVeth: `${prefix}h${index}`,
    peerVeth: `${prefix}p${index}`,
    address: `10.213.${slot}.${11 + index}`,
    cgroupParent: `/${cgroupPrefix(slot)}e${index}`,
    dir: childPath(slotDir(slot), `engine${index}`),
  };
}
