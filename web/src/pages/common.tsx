import type { StreamStatus } from "../api";

export function StateBadge({ state }: { state: string }) {
  return (
    <span class={`state state-${state}`} data-state={state}>
      {state}
    </span>
  );
}

const LABEL: Record<StreamStatus, string> = { connecting: "connecting…", live: "● live", polling: "polling", ended: "final" };

/** Whether the page follows a live stream or polls. */
export function LiveBadge({ status }: { status: StreamStatus }) {
  return (
    <span class={`live live-${status}`} data-testid="live" data-status={status}>
      {LABEL[status]}
    </span>
  );
}

export function Json({ value }: { value: unknown }) {
  return <pre class="json">{JSON.stringify(value, null, 2)}</pre>;
}
