// The human status text of a container ("Up 5 minutes", "Exited (0) 2 hours ago"), as
// the engine would write it now. A cached list entry's Status was written when it was
// read; served later it would freeze ("Up 3 seconds" for a minute), so it is computed
// again from the cached state at serve time.

/** Docker's human duration ("Less than a second", "About a minute", "3 days"). */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < 1) return 'Less than a second';
  if (seconds === 1) return '1 second';
  if (seconds < 60) return `${seconds} seconds`;
  const minutes = Math.floor(seconds / 60);
  if (minutes === 1) return 'About a minute';
  if (minutes < 60) return `${minutes} minutes`;
  const hours = Math.round(ms / 3_600_000);
  if (hours === 1) return 'About an hour';
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 7 * 2) return `${Math.floor(hours / 24)} days`;
  if (hours < 24 * 30 * 2) return `${Math.floor(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24 / 30)} months`;
  return `${Math.floor(ms / 3_600_000 / 24 / 365)} years`;
}

export interface ContainerStateView {
  Status: string;
  Running: boolean;
  Paused?: boolean;
  Restarting?: boolean;
  Dead?: boolean;
  RemovalInProgress?: boolean;
  ExitCode?: number;
  StartedAt?: string;
  FinishedAt?: string;
  Health?: { Status: string };
}

const zeroTime = /^0001-01-01/;

function since(iso: string | undefined, now: number): number {
  if (!iso || zeroTime.test(iso)) return 0;
  return Math.max(0, now - Date.parse(iso));
}

export function statusText(state: ContainerStateView, now = Date.now()): string {
  if (state.Running) {
    if (state.Paused) return `Up ${humanDuration(since(state.StartedAt, now))} (Paused)`;
    if (state.Restarting) return `Restarting (${state.ExitCode ?? 0}) ${humanDuration(since(state.FinishedAt, now))} ago`;
    const health = state.Health?.Status;
    const suffix = health === 'healthy' ? ' (healthy)' : health === 'unhealthy' ? ' (unhealthy)' : health === 'starting' ? ' (health: starting)' : '';
    return `Up ${humanDuration(since(state.StartedAt, now))}${suffix}`;
  }
  if (state.RemovalInProgress) return 'Removal In Progress';
  if (state.Dead) return 'Dead';
  if (!state.StartedAt || zeroTime.test(state.StartedAt)) return 'Created';
  if (!state.FinishedAt || zeroTime.test(state.FinishedAt)) return '';
  return `Exited (${state.ExitCode ?? 0}) ${humanDuration(since(state.FinishedAt, now))} ago`;
}
