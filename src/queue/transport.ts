// How journal entries leave this node and arrive from the others, whatever carries them (DESIGN.md, queue/):
// the journal hands a transport a view of its outbox (sealed batches in recording order) and a way to store
// what arrives; the transport reports how far the outbox is confirmed. At least once, in order per origin:
// a message is acknowledged only after `deliver` resolved (durable here), and anything not acknowledged is
// sent again. De-duplication is the journal's (by entry id, for good).

/** Up to a batch of this node's outbox entries, sealed into one message (src/journal/journal_wire.ts). */
export interface SealedBatch {
  /** The outbox seq of its first and last entry. */
  firstSeq: number;
  lastSeq: number;
  message: Uint8Array;
}

export interface TransportIo {
  /**
   * The next sealed batch of this node's outbox after `seq` (at most `limit` entries), or null: none (with
   * `fullOnly`, also when fewer than `limit` entries follow `seq`: nothing is sealed then).
   */
  outboxAfter(seq: number, limit: number, fullOnly?: boolean): Promise<SealedBatch | null>;
  /** A message of another node: resolves once it is durable here (then it may be acknowledged). */
  deliver(message: Uint8Array): Promise<void>;
  /** The queue holds every entry up to outbox seq `seq` durably: they count as shipped. */
  shipped(seq: number): void;
  /** A cursor of the transport's own, kept durably by the journal (0 before any). */
  cursor(name: string): number;
  setCursor(name: string, seq: number): void;
  dropCursor(name: string): void;
}

export interface JournalTransport {
  readonly kind: string;
  start(io: TransportIo): void;
  /** Entries were recorded: send them soon. */
  recorded(): void;
  /** For GET /api/v1/journal/status: where each destination stands. */
  status(): Record<string, unknown>;
  stop(): Promise<void>;
}
