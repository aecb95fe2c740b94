import type { ContainerStateView } from './status.js';

// The parts of Docker Engine API objects that swarmshift reads. Every object keeps the
// fields it was given (index signature), so what we pass back to clients is what the
// engine said, plus what we add.

export interface PortSummary {
  IP?: string;
  PrivatePort: number;
  PublicPort?: number;
  Type: string;
}

export interface ContainerSummary {
  Id: string;
  Names: string[];
  Image: string;
  ImageID: string;
  Created: number;
  State: string;
  Status: string;
  Ports: PortSummary[];
  Labels: Record<string, string> | null;
  HostConfig?: { NetworkMode?: string };
  NetworkSettings?: { Networks?: Record<string, { NetworkID?: string }> };
  Mounts?: Array<{ Name?: string; Source?: string; Destination?: string }>;
  [key: string]: unknown;
}

export interface PortBinding {
  HostIp?: string;
  HostPort?: string;
  [key: string]: unknown;
}

export interface ContainerInspect {
  Id: string;
  Name: string;
  Created: string;
  State: ContainerStateView;
  Config: { Image: string; Labels: Record<string, string> | null; Env: string[] | null; ExposedPorts?: Record<string, unknown> | null };
  HostConfig: {
    CpuShares?: number;
    Memory?: number;
    NetworkMode?: string;
    PortBindings?: Record<string, PortBinding[] | null> | null;
    [key: string]: unknown;
  };
  Image: string;
  NetworkSettings?: {
    Ports?: Record<string, PortBinding[] | null> | null;
    Networks?: Record<string, { NetworkID?: string }>;
  };
  [key: string]: unknown;
}

export interface ImageSummary {
  Id: string;
  RepoTags: string[] | null;
  RepoDigests: string[] | null;
  Created: number;
  Size: number;
  [key: string]: unknown;
}

export interface EngineInfo {
  ID: string;
  Name: string;
  NCPU: number;
  MemTotal: number;
  Driver: string;
  KernelVersion: string;
  OperatingSystem: string;
  OSType: string;
  Architecture: string;
  ServerVersion: string;
  Labels: string[] | null;
  ExecutionDriver?: string;
  [key: string]: unknown;
}

export interface EngineVersion {
  Version: string;
  ApiVersion: string;
  MinAPIVersion?: string;
  GitCommit?: string;
  GoVersion?: string;
  Os: string;
  Arch: string;
  KernelVersion?: string;
  [key: string]: unknown;
}

export interface NetworkResource {
  Id: string;
  Name: string;
  Scope: string;
  Driver: string;
  [key: string]: unknown;
}

export interface VolumeResource {
  Name: string;
  Driver: string;
  Scope?: string;
  Mountpoint?: string;
  [key: string]: unknown;
}

export interface EngineEvent {
  Type?: string;
  Action?: string;
  status?: string;
  id?: string;
  from?: string;
  Actor?: { ID: string; Attributes?: Record<string, string> };
  time?: number;
  timeNano?: number;
  [key: string]: unknown;
}
