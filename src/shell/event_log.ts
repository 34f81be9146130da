// What happened on this node, for operators (GET /api/v1/events, `tandem events`): leader changes,
// placement decisions, driver runs, health verdicts, drains. A bounded ring in memory: the last
// `capacity` events, each with an id `<node>.<boot>:<seq>` (boot: this process's start, so ids of an
// earlier run of the agent are never taken for this one's), and listeners woken by each new event.
import { SeqRing } from "./seq_ring.ts";

export interface TandemEvent {
  id: string;
  seq: number;
  /** ISO time. */
  time: string;
  /** leader, placement, driver, health, drain. */
  kind: string;
  [field: string]: unknown;
}

export class EventLog {
  private readonly prefix: string;
  private readonly events: SeqRing<TandemEvent>;
  private readonly listeners = new Set<() => void>();

  constructor(nodeId: string, capacity = 1_000, bootMs = Date.now()) {
    this.events = new SeqRing(capacity);
    this.prefix = `${nodeId}.${bootMs}`;
  }

  emit(kind: string, fields: Record<string, unknown>): void {
    this.events.push((seq) => ({
      ...fields,
      id: `${this.prefix}:${seq}`,
      seq,
      time: new Date().toISOString(),
      kind,
    }));
    for (const listener of this.listeners) listener();
  }

  /** The seq an id of this run names, or null (another node, an earlier run, malformed). */
  seqOf(id: string): number | null {
    const match = /^(.+):(\d{1,15})$/.exec(id);
    return match !== null && match[1] === this.prefix ? Number(match[2]) : null;
  }

  /** Events after `seq` still kept, oldest first; `lost` when some after it are gone already. */
  after(seq: number): { events: TandemEvent[]; lost: boolean } {
    const { items, lost } = this.events.after(seq);
    return { events: items, lost };
  }

  /** Calls `listener` after every new event; returns the unsubscribe. */
  onEvent(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
