// The default journal transport: entries travel over Tandem's own links, nothing else to run. Each node
// sends its outbox to every peer itself, from a cursor kept per peer (transport_cursors "peer:<id>"): a
// batch at a time while batches are not full (the entries recorded during a round trip make the next one:
// a seal and an open cost an X25519 exchange each, per batch), at most one batch that is not full per
// `batchGapMs` (entries recorded a few at a time leave together: each batch costs a seal, an open and an
// fsync'd delivery on the peer, whatever its size), and with a backlog of full batches up to
// `meshInFlightMax` in flight per peer (the next sent before the last is answered). The peer answers a
// batch only after it is durable on its side, and the cursor moves through a batch only once it and every
// batch before it are answered. A batch not answered (a peer down, a link cut, a timeout) stops the
// sending; once the others in flight settled, everything after the cursor is sent again after a backoff:
// at least once, in recording order per lane (a receiver may store two batches in flight in either order;
// the lanes apply by keySeq). An entry counts as shipped once every peer that runs the journal holds it (a
// peer whose agent has no journal answers "no handler" and is asked again every `offRecheckMs`).
import type { Logger } from "pino";
import type { NodeId } from "../core/types.ts";
import { encodeJsonPayload, type MeshApi, RemoteError } from "../mesh/index.ts";
import { Backoff, batchGapMs, ErrorNote } from "./outbox_publisher.ts";
import type { JournalTransport, TransportIo } from "./transport.ts";

export const JOURNAL_CHANNEL = "journal";

/** Entries per request: one sealed batch (src/journal/journal_wire.ts batchEntriesMax). */
export const meshBatchMax = 256;
/** Batches sent to one peer and not yet answered, at most. */
export const meshInFlightMax = 4;
const requestTimeoutMs = 10_000;
const offRecheckMs = 30_000;
/** 256 entries of up to 1 MiB of data each could exceed a mesh frame; such a batch is refused and retried. */
const batchBytesMax = 16 * 1024 * 1024;

export interface MeshTransportOptions {
  mesh: Pick<MeshApi, "request" | "onRequest" | "on">;
  peers: readonly NodeId[];
  logger: Logger;
  /** batchGapMs by default (tests shorten or lengthen it). */
  batchGapMs?: number;
}

/** A batch sent and not yet through the cursor. */
interface InFlight {
  lastSeq: number;
  state: "sent" | "answered" | "failed";
}

interface PeerShipper {
  id: NodeId;
  /** Every entry through this seq is durable on the peer. */
  cursor: number;
  /** The last seq sent (cursor when nothing is in flight). */
  sentThrough: number;
  /** In the order sent. */
  inFlight: InFlight[];
  /** A batch failed: nothing more is sent until every batch in flight settled, then a backoff. */
  failure: unknown;
  /** Bumped when sending starts over from the cursor: a batch read before then is not sent. */
  restarts: number;
  /** The send loop runs (reading and sealing the outbox). */
  filling: boolean;
  /** Woken while filling: look at the outbox once more before going idle. */
  again: boolean;
  /** Answered "no handler": its agent runs no journal; not counted for shipped. */
  off: boolean;
  backoff: Backoff;
  timer: ReturnType<typeof setTimeout> | null;
  /** When the last batch was sent (performance.now()), and the wake-up for what waits out the gap. */
  sentAtMs: number;
  gapTimer: ReturnType<typeof setTimeout> | null;
  /** Its delivery failures, logged once per reason (with the peer's id). */
  errors: ErrorNote;
}

export class MeshTransport implements JournalTransport {
  readonly kind = "mesh";
  private readonly options: MeshTransportOptions;
  private readonly peers = new Map<NodeId, PeerShipper>();
  private io: TransportIo | null = null;
  private readonly unsubscribes: Array<() => void> = [];
  private stopped = false;

  constructor(options: MeshTransportOptions) {
    this.options = options;
  }

  start(io: TransportIo): void {
    this.io = io;
    this.unsubscribes.push(
      this.options.mesh.onRequest(JOURNAL_CHANNEL, (from, payload) => this.receive(from, payload)),
      this.options.mesh.on("link:up", (peer) => this.wake(peer)),
    );
    this.setPeers(this.options.peers);
  }

  /** The cluster's members changed: ship to these peers; a peer gone is forgotten with its cursor. */
  setPeers(peers: readonly NodeId[]): void {
    const io = this.io;
    if (io === null) return;
    for (const [id, peer] of this.peers) {
      if (peers.includes(id)) continue;
      clearTimers(peer);
      this.peers.delete(id);
      io.dropCursor(cursorName(id));
    }
    for (const id of peers) {
      if (this.peers.has(id)) continue;
      const cursor = io.cursor(cursorName(id));
      this.peers.set(id, {
        id,
        cursor,
        sentThrough: cursor,
        inFlight: [],
        failure: null,
        restarts: 0,
        filling: false,
        again: false,
        off: false,
        backoff: new Backoff(),
        timer: null,
        sentAtMs: Number.NEGATIVE_INFINITY,
        gapTimer: null,
        errors: new ErrorNote(this.options.logger.child({ peer: id })),
      });
    }
    this.reportShipped();
    for (const id of peers) this.wake(id);
  }

  recorded(): void {
    for (const id of this.peers.keys()) this.wake(id);
  }

  status(): Record<string, unknown> {
    const peers: Record<string, unknown> = {};
    for (const peer of this.peers.values()) {
      peers[peer.id] = {
        cursor: peer.cursor,
        inFlight: peer.inFlight.length,
        runsJournal: !peer.off,
        lastError: peer.errors.last,
      };
    }
    return { peers };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const unsubscribe of this.unsubscribes.splice(0)) unsubscribe();
    for (const peer of this.peers.values()) clearTimers(peer);
  }

  /**
   * Sends to `id` now, unless `meshInFlightMax` batches are in flight, a failure settles or a backoff runs
   * (within the gap after the last batch, only a full one).
   */
  private wake(id: NodeId): void {
    const peer = this.peers.get(id);
    if (peer === undefined || peer.timer !== null || this.stopped) return;
    if (peer.filling) peer.again = true;
    else void this.send(peer);
  }

  /** Still a peer, with no failure settling and no backoff running. */
  private sending(peer: PeerShipper): boolean {
    return !this.stopped && this.peers.get(peer.id) === peer && peer.failure === null && peer.timer === null;
  }

  /** Sends the outbox after `sentThrough`, a batch at a time, while fewer than meshInFlightMax are out. */
  private async send(peer: PeerShipper): Promise<void> {
    const io = this.io;
    if (io === null) return;
    peer.filling = true;
    try {
      while (this.sending(peer) && peer.inFlight.length < meshInFlightMax) {
        peer.again = false;
        const restarts = peer.restarts;
        // Behind a batch in flight, or within the gap after the last one, only a full one goes: a small one
        // waits and grows meanwhile.
        const gapLeftMs = peer.sentAtMs + (this.options.batchGapMs ?? batchGapMs) - performance.now();
        const fullOnly = peer.inFlight.length > 0 || gapLeftMs > 0;
        // A large entry makes a small batch: the batch must fit in a mesh frame.
        let limit = meshBatchMax;
        let batch = await io.outboxAfter(peer.sentThrough, limit, fullOnly);
        while (batch !== null && batch.message.length > batchBytesMax && limit > 1) {
          limit = Math.max(1, Math.floor(limit / 4));
          batch = await io.outboxAfter(peer.sentThrough, limit, fullOnly);
        }
        if (!this.sending(peer) || peer.restarts !== restarts) return;
        if (batch === null) {
          if (peer.again) continue;
          // What the gap held back goes when it ends (nothing in flight would wake this peer).
          if (peer.inFlight.length === 0 && gapLeftMs > 0 && peer.gapTimer === null) {
            peer.gapTimer = setTimeout(() => {
              peer.gapTimer = null;
              this.wake(peer.id);
            }, gapLeftMs);
            peer.gapTimer.unref();
          }
          return;
        }
        peer.sentAtMs = performance.now();
        const sent: InFlight = { lastSeq: batch.lastSeq, state: "sent" };
        peer.inFlight.push(sent);
        peer.sentThrough = batch.lastSeq;
        this.options.mesh
          .request(peer.id, JOURNAL_CHANNEL, batch.message, { timeoutMs: requestTimeoutMs })
          .then(
            () => this.answered(peer, sent),
            (error: unknown) => this.settleFailure(peer, sent, error),
          )
          // Storing the cursor failed (the disk): start over from the last one stored, after a backoff.
          .catch((error: unknown) => this.settleFailure(peer, null, error));
      }
    } catch (error) {
      this.settleFailure(peer, null, error);
    } finally {
      peer.filling = false;
    }
  }

  /** `sent` is durable on the peer: the cursor moves through every answered batch at the front. */
  private answered(peer: PeerShipper, sent: InFlight): void {
    if (this.stopped || this.peers.get(peer.id) !== peer) return;
    sent.state = "answered";
    let moved = false;
    while (peer.inFlight[0]?.state === "answered") {
      peer.cursor = (peer.inFlight.shift() as InFlight).lastSeq;
      moved = true;
    }
    if (moved && peer.failure === null) {
      peer.off = false;
      peer.backoff.reset();
      peer.errors.last = null;
    }
    if (moved) {
      this.io?.setCursor(cursorName(peer.id), peer.cursor);
      this.reportShipped();
    }
    if (peer.failure !== null) this.settleFailure(peer, null, peer.failure);
    else this.wake(peer.id);
  }

  /**
   * A batch failed (`sent`), or reading the outbox did (null): sending stops; once nothing is in flight any
   * more, it starts over from the cursor after a backoff (what was answered past a failed batch is sent
   * again, and dropped by id there).
   */
  private settleFailure(peer: PeerShipper, sent: InFlight | null, error: unknown): void {
    if (this.stopped || this.peers.get(peer.id) !== peer) return;
    if (sent !== null) sent.state = "failed";
    if (peer.failure === null) peer.failure = error;
    if (peer.inFlight.some((batch) => batch.state === "sent")) return;
    const failure = peer.failure;
    peer.inFlight = [];
    peer.sentThrough = peer.cursor;
    peer.restarts += 1;
    peer.failure = null;
    this.failed(peer, failure);
  }

  private failed(peer: PeerShipper, error: unknown): void {
    const reason = error instanceof Error ? error.message : String(error);
    const noJournal = error instanceof RemoteError && /no handler for channel/.test(reason);
    if (noJournal !== peer.off) {
      peer.off = noJournal;
      this.reportShipped();
    }
    peer.errors.note(noJournal ? "peer runs no journal" : "journal batch not delivered", error);
    if (this.stopped) return;
    peer.timer = setTimeout(
      () => {
        peer.timer = null;
        this.wake(peer.id);
      },
      noJournal ? offRecheckMs : peer.backoff.next(),
    );
    peer.timer.unref();
  }

  /** Shipped: what every peer running the journal holds (everything, with no such peer). */
  private reportShipped(): void {
    const io = this.io;
    if (io === null) return;
    let through = Number.MAX_SAFE_INTEGER;
    for (const peer of this.peers.values()) if (!peer.off) through = Math.min(through, peer.cursor);
    if (through > 0) io.shipped(through);
  }

  /** A sealed batch from `from`: made durable here, then the answer (the acknowledgement). */
  private async receive(from: NodeId, payload: Uint8Array): Promise<Uint8Array> {
    const io = this.io;
    if (io === null || payload.length > batchBytesMax) {
      const reason = io === null ? "not started" : `${payload.length} bytes exceeds ${batchBytesMax}`;
      this.options.logger.warn({ peer: from, reason }, "dropped journal batch");
      throw new Error(`journal batch refused: ${reason}`);
    }
    await io.deliver(payload);
    return encodeJsonPayload({ ok: true });
  }
}

function clearTimers(peer: PeerShipper): void {
  if (peer.timer !== null) clearTimeout(peer.timer);
  if (peer.gapTimer !== null) clearTimeout(peer.gapTimer);
}

function cursorName(peer: NodeId): string {
  return `peer:${peer}`;
}
