import type { JobEvent } from "../jobs/model";

/**
 * A destination of the outbox. `deliver` sends the events in order and reports progress
 * with the seq of the last event known delivered; it throws when it cannot go on (the
 * drain keeps its cursor there and retries later). At least once: a retry may repeat
 * events after the last reported one.
 */
export interface StatusSink {
  /** Also the name of its cursor in the store. */
  readonly name: string;
  deliver(events: JobEvent[], delivered: (seq: number) => Promise<void>): Promise<void>;
  close?(): Promise<void>;
}
