// The mesh: one TLS 1.3 listener per node, a WebSocket link to every peer, request/response and one-way
// messages on named channels. Both sides dial; when two links to a peer end up established, both keep the
// one dialed by the lower node id, so they agree without talking about it; the other is retired (drained,
// then closed) so requests already on it still get their answers. The peer set follows the cluster
// membership (setPeers); nodes outside it may be admitted as guests, accepted but never dialed. A node known
// only by its address (a member that a joining node was pointed at) can be sent one request (requestAt).
import { randomBytes } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer, type Server } from "node:https";
import type { Duplex } from "node:stream";
import type { TLSSocket } from "node:tls";
import type { Logger } from "pino";
import { type ClientOptions, WebSocket, WebSocketServer } from "ws";
import { Prng } from "../core/prng.ts";
import type { NodeId } from "../core/types.ts";
import { type MonotonicTicker, SafeEmitter, Ticker } from "../shell/index.ts";
import { ReconnectBackoff } from "./backoff.ts";
import { HandshakeError, PeerUnreachableError, TimeoutError } from "./errors.ts";
import { encodedFrameBytes, isValidChannel } from "./frame.ts";
import { CloseCode, type HandshakeContext, membershipSummarySchema } from "./handshake.ts";
import { answerHttpClientError } from "./http_client_error.ts";
import { resolveMeshLimits } from "./limits.ts";
import { type AddressTarget, Link, type LinkHooks, type LinkRole, type PeerTraffic } from "./link.ts";
import { addressDialTls, type DialTlsOptions, dialTlsOptions, ServerTls } from "./tls.ts";
import type {
  AddressResponse,
  MembershipSummary,
  MeshApi,
  MeshEventMap,
  MeshLimits,
  MeshOptions,
  MeshPeer,
  MessageListener,
  PeerLinkStatus,
  RequestHandler,
  SendResult,
} from "./types.ts";

export const MESH_PATH = "/api/internal/mesh";
/** On close, links get this long to finish their closing handshake before they are dropped. */
const CLOSE_GRACE_MS = 500;
/** The close reason a peer left out by setPeers reads, and the reason of its link:down here. */
const REMOVED_REASON = "removed from the cluster membership";

interface PeerSlot {
  id: NodeId;
  /** host:port we dial; null for a guest admitted by admitUnknown, which is accepted but never dialed. */
  address: string | null;
  /** The established link traffic uses. */
  link: Link | null;
  /** Our outbound attempt, until it is established or fails. */
  dialing: Link | null;
  redialTimer: NodeJS.Timeout | null;
  backoff: ReconnectBackoff;
  sinceMs: number;
  lastError: string | null;
  /** Why the last link or dial failed, handed to callers as the cause of PeerUnreachableError. */
  lastFailure: Error | undefined;
  /** Frames from the peer over any of its links; shared with them. */
  traffic: PeerTraffic;
  /** What the peer announced in the hello of its latest link. */
  membership: MembershipSummary | undefined;
}

/** A node reached at an address: over its slot's link (link null), or over a link of its own. */
interface ReachedNode {
  peer: NodeId;
  link: Link | null;
}

function zeroMask(mask: Uint8Array): void {
  mask.fill(0);
}

export class Mesh implements MeshApi {
  readonly selfId: NodeId;
  private readonly options: MeshOptions;
  private readonly limits: MeshLimits;
  private readonly logger: Logger;
  private readonly handshake: HandshakeContext;
  /** Forked per peer for its reconnect backoff. */
  private readonly rng: Prng;
  private readonly tls: ServerTls;
  private readonly server: Server;
  private readonly wss: WebSocketServer;
  private readonly slots = new Map<NodeId, PeerSlot>();
  private readonly links = new Set<Link>();
  /** Links dialed by requestAt that carry their one request outside any slot; their peer may be unknown. */
  private readonly addressLinks = new Set<Link>();
  private readonly messageListeners = new Map<string, MessageListener[]>();
  private readonly requestHandlers = new Map<string, RequestHandler>();
  private readonly events: SafeEmitter<MeshEventMap>;
  /**
   * One keepalive check of every link per interval, riding along when the agent's timer wakes for anything
   * else: a timer per link woke an idle agent once per peer every interval (bench/idle.ts).
   */
  private readonly keepalive: MonotonicTicker;
  private closing: Promise<void> | null = null;

  private constructor(options: MeshOptions) {
    this.selfId = options.selfId;
    this.options = options;
    this.limits = resolveMeshLimits(options.limits);
    this.logger = options.logger;
    this.events = new SafeEmitter(options.logger);
    this.keepalive = (options.ticker ?? new Ticker()).every(
      this.limits.keepaliveIntervalMs,
      () => this.checkKeepalives(),
      { ridesAlong: true },
    );
    this.rng = new Prng(randomBytes(8).toString("hex"));
    for (const [id, address] of peerAddresses(options.peers, options.selfId))
      this.slots.set(id, this.newSlot(id, address));
    this.handshake = {
      selfId: options.selfId,
      clusterName: options.clusterName,
      bootId: randomBytes(8).toString("hex"),
      admits: (id, announced) => this.admits(id, announced),
      membership: () => this.announcedMembership(),
    };
    this.tls = new ServerTls(options.security);
    // A socket that never finishes TLS is dropped as fast as one that never says hello.
    this.server = createServer({ ...this.tls.options(), handshakeTimeout: this.limits.handshakeTimeoutMs });
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: this.limits.frameBytesMax,
      perMessageDeflate: false,
    });
    this.server.on("request", (req, res) => this.onHttpRequest(req, res));
    this.server.on("upgrade", (req, socket, head) => this.onUpgrade(req, socket, head));
    this.server.on("clientError", answerHttpClientError);
    this.server.on("tlsClientError", (error: NodeJS.ErrnoException, socket: TLSSocket) => {
      this.logger.warn(
        { reason: error.code ?? error.message, remoteAddress: socket.remoteAddress },
        "mesh tls handshake failed",
      );
    });
  }

  /** Listens, then dials every peer. Rejects if the port cannot be bound. */
  static async start(options: MeshOptions): Promise<Mesh> {
    const mesh = new Mesh(options);
    await new Promise<void>((resolve, reject) => {
      mesh.server.once("error", reject);
      mesh.server.listen(options.listenPort, options.listenHost, () => {
        mesh.server.off("error", reject);
        resolve();
      });
    });
    mesh.server.on("error", (error) => mesh.logger.error({ err: error }, "mesh listener error"));
    const { port } = mesh.address();
    mesh.logger.info({ host: options.listenHost, port, peers: [...mesh.slots.keys()] }, "mesh listening");
    for (const slot of mesh.slots.values()) mesh.dial(slot);
    mesh.keepalive.start();
    return mesh;
  }

  address(): { host: string; port: number } {
    const address = this.server.address();
    if (address === null || typeof address === "string") throw new Error("mesh: listener is not bound");
    return { host: address.address, port: address.port };
  }

  /**
   * A link that lived through a partition may be stalled after it heals: TCP retransmits what it sent into
   * the partition with exponential back-off, so that direction can stay silent for about as long as the
   * partition lasted, until the keepalive gives up on it. A fresh connection starts without that back-off.
   * Only the preferred dialer (the lower node id) can renew, because only its link replaces the current
   * one; the higher id's copy is left to the keepalive. The current link keeps serving until the new one is
   * up, then retires; "link:renewed" follows. A link up since `upBeforeMs` or later is new already: kept.
   */
  renew(peer: NodeId, upBeforeMs: number): boolean {
    const slot = this.slots.get(peer);
    if (slot === undefined || this.closing !== null || slot.link === null || slot.dialing !== null)
      return false;
    if (slot.address === null || slot.sinceMs >= upBeforeMs) return false;
    if (lowerNodeId(this.selfId, peer) !== this.selfId) return false;
    this.logger.info({ peer }, "mesh link renewing");
    this.startDial(slot, slot.address);
    return true;
  }

  setPeers(peers: readonly MeshPeer[]): void {
    const next = peerAddresses(peers, this.selfId);
    if (this.closing !== null) return;
    const downs: NodeId[] = [];
    for (const slot of [...this.slots.values()]) {
      if (!next.has(slot.id) && this.removePeer(slot)) downs.push(slot.id);
    }
    for (const [id, address] of next) {
      const slot = this.slots.get(id);
      if (slot === undefined) this.addPeer(id, address);
      else if (slot.address !== address) this.movePeer(slot, address);
    }
    // After every slot is settled, so a listener sees the new set whatever it calls.
    for (const peer of downs) this.events.emit("link:down", peer, REMOVED_REASON);
  }

  send(peer: NodeId, channel: string, payload: Uint8Array): SendResult {
    this.assertSendable(channel, payload);
    const link = this.slots.get(peer)?.link ?? null;
    return link === null ? "no-link" : link.send(channel, payload);
  }

  request(
    peer: NodeId,
    channel: string,
    payload: Uint8Array,
    options?: { timeoutMs?: number },
  ): Promise<Uint8Array> {
    try {
      this.assertSendable(channel, payload);
    } catch (error) {
      return Promise.reject(error);
    }
    const slot = this.slots.get(peer);
    if (slot === undefined) return Promise.reject(new PeerUnreachableError(peer, "not a configured peer"));
    if (slot.link === null) {
      const error = new PeerUnreachableError(peer, slot.lastError ?? "no link", { cause: slot.lastFailure });
      return Promise.reject(error);
    }
    return slot.link.request(channel, payload, options?.timeoutMs ?? this.limits.requestTimeoutMs);
  }

  /**
   * One request to the node at `address`, whose id is not known in advance (a node joining a cluster asks
   * the member it was pointed at). Dials once with the usual TLS and hello; the id is what they prove: the
   * CN of a node certificate from the cluster CA, matching the hello-ok (mtls), or the hello-ok's (psk). The
   * far end takes us as a peer or through its admitUnknown, as any dial. A peer linked at that very address
   * is asked over its link. A new link to a node we hold a slot for (reached by another spelling of its
   * address) goes to that slot and the duplicate-link rule like any dialed link, because the far end has
   * already applied the rule to it: both ends keep the same link. Otherwise the new link carries this one
   * request and is closed: no slot is made, since a guest made here would outlive the request for nothing.
   * Rejects with PeerUnreachableError (its peer is the address) when the address cannot be reached,
   * HandshakeError with the reason when TLS, the upgrade or the hello fail (not a member, another cluster, a
   * certificate not from our CA), TimeoutError past timeoutMs (the dial included), RemoteError from the handler.
   */
  async requestAt(
    address: string,
    channel: string,
    payload: Uint8Array,
    options?: { timeoutMs?: number },
  ): Promise<AddressResponse> {
    this.assertSendable(channel, payload);
    const timeoutMs = options?.timeoutMs ?? this.limits.requestTimeoutMs;
    const deadlineMs = Date.now() + timeoutMs;
    let peer: NodeId | null = null;
    try {
      const reached = this.linkedPeerAt(address) ?? (await this.dialAddress(address, timeoutMs));
      peer = reached.peer;
      const remaining = { timeoutMs: Math.max(1, deadlineMs - Date.now()) };
      const response =
        reached.link === null
          ? await this.request(peer, channel, payload, remaining)
          : await requestOnce(reached.link, channel, payload, remaining.timeoutMs);
      this.logger.info({ address, peer, channel }, "mesh request to an address answered");
      return { peer, response };
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      this.logger.info({ address, peer, channel, reason }, "mesh request to an address failed");
      throw error;
    }
  }

  /** Returns the unsubscribe: a stopped capability leaves no listener behind. */
  onMessage(channel: string, listener: MessageListener): () => void {
    if (!isValidChannel(channel))
      throw new RangeError(`mesh: invalid channel name ${JSON.stringify(channel)}`);
    // Copy on write: a listener that unsubscribes during a delivery does not disturb the loop.
    this.messageListeners.set(channel, [...(this.messageListeners.get(channel) ?? []), listener]);
    return () => {
      const rest = (this.messageListeners.get(channel) ?? []).filter((l) => l !== listener);
      if (rest.length > 0) this.messageListeners.set(channel, rest);
      else this.messageListeners.delete(channel);
    };
  }

  /** Returns the unsubscribe; the channel is then free for another handler. */
  onRequest(channel: string, handler: RequestHandler): () => void {
    if (!isValidChannel(channel))
      throw new RangeError(`mesh: invalid channel name ${JSON.stringify(channel)}`);
    if (this.requestHandlers.has(channel))
      throw new RangeError(`mesh: channel ${channel} already has a handler`);
    this.requestHandlers.set(channel, handler);
    return () => {
      if (this.requestHandlers.get(channel) === handler) this.requestHandlers.delete(channel);
    };
  }

  framesReceived(peer: NodeId): number {
    return this.slots.get(peer)?.traffic.framesReceived ?? 0;
  }

  peers(): PeerLinkStatus[] {
    return [...this.slots.values()].map((slot) => ({
      id: slot.id,
      address: slot.address ?? "",
      connected: slot.link !== null,
      dialer: slot.link?.dialer ?? null,
      sinceMs: slot.sinceMs,
      lastError: slot.lastError,
      inflightRequests: slot.link?.inflightRequests ?? 0,
      queuedFrames: slot.link?.queuedFrames ?? 0,
      ...(slot.membership === undefined ? {} : { membership: slot.membership }),
    }));
  }

  on<E extends keyof MeshEventMap>(event: E, listener: (...args: MeshEventMap[E]) => void): () => void {
    return this.events.on(event, listener);
  }

  /** Closes links (pending requests fail with PeerUnreachableError), stops redials and the listener. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.keepalive.stop();
    for (const slot of this.slots.values()) this.clearRedial(slot);
    const links = [...this.links, ...this.addressLinks];
    for (const link of links) link.close(CloseCode.ShuttingDown, "mesh closing");
    const serverClosed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    let graceTimer: NodeJS.Timeout | undefined;
    const grace = new Promise<void>((resolve) => {
      graceTimer = setTimeout(resolve, CLOSE_GRACE_MS);
    });
    await Promise.race([Promise.all(links.map((link) => link.closed)), grace]);
    clearTimeout(graceTimer);
    for (const link of links) link.terminate("mesh closing");
    this.wss.close();
    await serverClosed;
    this.logger.info("mesh closed");
  }

  private checkKeepalives(): void {
    for (const link of this.links) link.checkKeepalive();
    for (const link of this.addressLinks) link.checkKeepalive();
  }

  private assertSendable(channel: string, payload: Uint8Array): void {
    if (!isValidChannel(channel))
      throw new RangeError(`mesh: invalid channel name ${JSON.stringify(channel)}`);
    const frameBytes = encodedFrameBytes(channel, payload.byteLength);
    if (frameBytes > this.limits.frameBytesMax) {
      throw new RangeError(
        `mesh: frame of ${frameBytes} bytes exceeds frameBytesMax ${this.limits.frameBytesMax}`,
      );
    }
  }

  private newSlot(id: NodeId, address: string | null): PeerSlot {
    const backoff = new ReconnectBackoff({
      delayMsMin: this.limits.reconnectDelayMsMin,
      delayMsMax: this.limits.reconnectDelayMsMax,
      rng: this.rng.fork(id),
    });
    return {
      id,
      address,
      link: null,
      dialing: null,
      redialTimer: null,
      backoff,
      sinceMs: Date.now(),
      lastError: null,
      lastFailure: undefined,
      traffic: { framesReceived: 0 },
      membership: undefined,
    };
  }

  /** A peer may always link; any other node only while admitUnknown says so, asked at each of its hellos. */
  private admits(id: NodeId, announced: MembershipSummary | undefined): boolean {
    if ((this.slots.get(id)?.address ?? null) !== null) return true;
    return this.admitsGuest(id, announced);
  }

  private admitsGuest(id: NodeId, announced?: MembershipSummary): boolean {
    const admitUnknown = this.options.admitUnknown;
    if (admitUnknown === undefined) return false;
    try {
      return admitUnknown(id, announced);
    } catch (error) {
      this.logger.error({ peer: id, err: error }, "mesh admitUnknown threw: node refused");
      return false;
    }
  }

  /**
   * The summary from options.membership, schema-checked: peers would refuse a hello with a bad one. Only
   * the two fields are taken, so a richer object (the election's summary) can be handed over as it is.
   */
  private announcedMembership(): MembershipSummary | undefined {
    const summary = this.options.membership?.();
    if (summary === undefined) return undefined;
    const parsed = membershipSummarySchema.safeParse({ version: summary.version, hash: summary.hash });
    if (parsed.success) return parsed.data;
    this.logger.error(
      { summary, reason: parsed.error.message },
      "mesh membership summary invalid: not announced",
    );
    return undefined;
  }

  private addPeer(id: NodeId, address: string): void {
    this.slots.set(id, this.newSlot(id, address));
    this.logger.info({ peer: id, address }, "mesh peer added");
    this.dial(this.slots.get(id) as PeerSlot);
  }

  /** A new address for a peer, or a first one for a guest; a live link stays, a waiting redial goes now. */
  private movePeer(slot: PeerSlot, address: string): void {
    const previous = slot.address;
    slot.address = address;
    if (previous === null)
      this.logger.info({ peer: slot.id, address, connected: slot.link !== null }, "mesh peer added");
    else this.logger.info({ peer: slot.id, address, previousAddress: previous }, "mesh peer address changed");
    if (slot.link !== null) return;
    slot.backoff.reset();
    this.clearRedial(slot);
    this.dial(slot);
  }

  /**
   * A peer left out of the set: dropped with its links, unless admitUnknown still admits it; then it stays
   * as a guest (its link, if any, too) and is no longer dialed. True when a link to it went down.
   */
  private removePeer(slot: PeerSlot): boolean {
    this.clearRedial(slot);
    if (this.admitsGuest(slot.id)) {
      if (slot.address !== null) {
        this.logger.info(
          { peer: slot.id, address: slot.address },
          "mesh peer removed, still admitted as a guest",
        );
        slot.address = null;
      }
      return false;
    }
    // Dropped first, so the closes below find no slot to redial.
    this.slots.delete(slot.id);
    const wasUp = slot.link !== null;
    for (const link of [...this.links]) {
      if (link.peer === slot.id) link.close(CloseCode.Removed, REMOVED_REASON);
    }
    this.logger.info({ peer: slot.id, address: slot.address ?? "", connected: wasUp }, "mesh peer removed");
    return wasUp;
  }

  private dial(slot: PeerSlot): void {
    if (this.closing !== null || slot.link !== null || slot.dialing !== null || slot.address === null) return;
    this.startDial(slot, slot.address);
  }

  private startDial(slot: PeerSlot, address: string): void {
    const ws = this.openSocket(address, dialTlsOptions(this.options.security, this.selfId, slot.id));
    slot.dialing = this.adopt(ws, "dialer", slot.id);
  }

  private openSocket(address: string, tlsOptions: DialTlsOptions): WebSocket {
    // @types/ws declares checkServerIdentity as returning boolean; ws hands it to tls.connect, which
    // expects Error | undefined, so the node:tls type is the right one.
    const wsOptions = {
      ...tlsOptions,
      // RFC 6455 masks client frames so that a browser's script cannot feed chosen bytes to proxies on the
      // path; a mesh link is TLS between two agents, so the mask is all zeros, which ws skips on both ends
      // instead of XORing every byte sent and received (about 2 % of a writing node's CPU under load).
      generateMask: zeroMask,
      perMessageDeflate: false,
      maxPayload: this.limits.frameBytesMax,
      handshakeTimeout: this.limits.handshakeTimeoutMs,
      followRedirects: false,
    } as unknown as ClientOptions;
    return new WebSocket(`wss://${address}${MESH_PATH}`, wsOptions);
  }

  private adopt(ws: WebSocket, role: LinkRole, peer: NodeId): Link {
    const link = this.newLink(ws, role, peer, {
      established: (established) => this.onLinkEstablished(established),
      closed: (closed, reason, cause) => this.onLinkClosed(closed, reason, cause),
    });
    this.links.add(link);
    return link;
  }

  private newLink(
    ws: WebSocket,
    role: LinkRole,
    peer: NodeId | AddressTarget,
    lifecycle: Pick<LinkHooks, "established" | "closed">,
  ): Link {
    return new Link({
      ws,
      role,
      peer,
      handshake: this.handshake,
      limits: this.limits,
      logger: this.logger,
      hooks: {
        ...lifecycle,
        message: (from, channel, payload) => this.deliverMessage(from, channel, payload),
        requestHandler: (channel) => this.requestHandlers.get(channel),
      },
    });
  }

  private linkedPeerAt(address: string): ReachedNode | null {
    for (const slot of this.slots.values()) {
      if (slot.address === address && slot.link !== null) return { peer: slot.id, link: null };
    }
    return null;
  }

  /** Dials `address` once for requestAt; settles when the link is established or fails. */
  private dialAddress(address: string, timeoutMs: number): Promise<ReachedNode> {
    if (this.closing !== null) return Promise.reject(new PeerUnreachableError(address, "mesh closing"));
    const tls = addressDialTls(this.options.security, this.selfId);
    const ws = this.openSocket(address, tls.options);
    return new Promise((resolve, reject) => {
      let toSlot = false;
      const link = this.newLink(
        ws,
        "dialer",
        { address, expectedPeer: tls.expectedPeer },
        {
          established: (established) => {
            clearTimeout(timer);
            toSlot = this.closing === null && this.slots.has(established.peer);
            if (toSlot) {
              this.addressLinks.delete(established);
              this.links.add(established);
              this.onLinkEstablished(established);
            } else if (this.closing !== null) {
              established.close(CloseCode.ShuttingDown, "mesh closing");
              return;
            }
            resolve({ peer: established.peer, link: toSlot ? null : established });
          },
          closed: (closed, reason, cause) => {
            clearTimeout(timer);
            if (toSlot) {
              this.onLinkClosed(closed, reason, cause);
              return;
            }
            this.addressLinks.delete(closed);
            reject(addressDialError(address, reason, cause, this.closing !== null));
          },
        },
      );
      this.addressLinks.add(link);
      // Rejected first, so the close below finds the promise settled with the timeout.
      const timer = setTimeout(() => {
        reject(new TimeoutError(`dial of ${address} timed out after ${timeoutMs} ms`, timeoutMs));
        link.close(CloseCode.HandshakeTimeout, "request timed out");
      }, timeoutMs);
    });
  }

  private onLinkEstablished(link: Link): void {
    const slot = this.slots.get(link.peer) ?? this.addGuest(link);
    link.countFramesInto(slot.traffic);
    slot.membership = link.peerMembership;
    if (slot.dialing === link) slot.dialing = null;
    if (this.closing !== null) {
      link.close(CloseCode.ShuttingDown, "mesh closing");
      return;
    }
    const current = slot.link;
    if (current !== null && !this.prefers(link, current)) {
      link.retire();
      return;
    }
    slot.link = link;
    slot.backoff.reset();
    this.clearRedial(slot);
    if (current !== null) {
      this.logger.info({ peer: link.peer, dialer: link.dialer }, "mesh link replaced duplicate");
      current.retire();
      this.events.emit("link:renewed", link.peer);
      return;
    }
    slot.sinceMs = Date.now();
    const fields = { peer: link.peer, dialer: link.dialer, peerBootId: link.peerBootId };
    this.logger.info({ ...fields, peerMembership: link.peerMembership }, "mesh link up");
    this.events.emit("link:up", link.peer);
  }

  /**
   * A node without a slot passed its hello just now, so admitUnknown admitted it (the hello and this call
   * run in one turn); we dial only slots, so the link is an accepted one.
   */
  private addGuest(link: Link): PeerSlot {
    if (link.role !== "acceptor") throw new Error(`mesh: dialed link to ${link.peer}, which has no slot`);
    const slot = this.newSlot(link.peer, null);
    this.slots.set(link.peer, slot);
    this.logger.info({ peer: link.peer }, "mesh guest admitted");
    return slot;
  }

  /** Of two established links to one peer: the lower node id's dial wins; from the same dialer, the newer. */
  private prefers(candidate: Link, current: Link): boolean {
    if (candidate.dialer === current.dialer) return true;
    return candidate.dialer === lowerNodeId(this.selfId, candidate.peer);
  }

  private onLinkClosed(link: Link, reason: string, cause: Error | undefined): void {
    this.links.delete(link);
    const slot = this.slots.get(link.peer);
    if (slot === undefined) return;
    if (slot.dialing === link || slot.link === link) slot.lastFailure = cause;
    if (slot.dialing === link) {
      slot.dialing = null;
      this.noteDialFailure(slot, reason);
    } else if (slot.link === link) {
      slot.link = null;
      slot.sinceMs = Date.now();
      slot.lastError = reason;
      this.logger.warn({ peer: link.peer, reason }, "mesh link down");
      this.events.emit("link:down", link.peer, reason);
    } else {
      return;
    }
    if (slot.link === null) this.scheduleRedial(slot);
  }

  /** The first failure of a kind is a warning; the same failure on every retry is only debug noise. */
  private noteDialFailure(slot: PeerSlot, reason: string): void {
    const repeated = slot.lastError === reason;
    slot.lastError = reason;
    if (slot.link !== null) return;
    const fields = { peer: slot.id, address: slot.address, reason };
    if (repeated) this.logger.debug(fields, "mesh dial failed");
    else this.logger.warn(fields, "mesh dial failed");
  }

  private scheduleRedial(slot: PeerSlot): void {
    if (this.closing !== null || slot.redialTimer !== null || slot.dialing !== null) return;
    if (slot.address === null) return;
    const delayMs = slot.backoff.nextDelayMs();
    slot.redialTimer = setTimeout(() => {
      slot.redialTimer = null;
      this.dial(slot);
    }, delayMs);
  }

  private clearRedial(slot: PeerSlot): void {
    if (slot.redialTimer !== null) clearTimeout(slot.redialTimer);
    slot.redialTimer = null;
  }

  private deliverMessage(from: NodeId, channel: string, payload: Uint8Array): void {
    const listeners = this.messageListeners.get(channel);
    if (listeners === undefined) {
      this.logger.debug({ peer: from, channel }, "mesh message for a channel without listener");
      return;
    }
    for (const listener of listeners) {
      try {
        listener(from, payload);
      } catch (error) {
        this.logger.error({ peer: from, channel, err: error }, "mesh message listener threw");
      }
    }
  }

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const tlsSocket = req.socket as TLSSocket;
    if (this.closing !== null) {
      socket.destroy();
      return;
    }
    if (pathOf(req) !== MESH_PATH) {
      rejectUpgrade(socket, 404, "Not Found");
      return;
    }
    const identity = this.tls.identity(tlsSocket);
    if (identity === null || !this.tls.isNodeCredential(tlsSocket)) {
      this.logger.warn(
        {
          identity: identity?.name ?? null,
          remoteAddress: tlsSocket.remoteAddress,
          reason: "not a node credential",
        },
        "mesh upgrade refused",
      );
      rejectUpgrade(socket, 403, "Forbidden");
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.adopt(ws, "acceptor", identity.name));
  }

  private onHttpRequest(req: IncomingMessage, res: ServerResponse): void {
    const identity = this.tls.identity(req.socket as TLSSocket);
    if (identity === null) {
      sendJsonError(res, 401, "unauthenticated", "no authenticated identity on this connection");
      return;
    }
    const handler = this.options.httpHandler;
    if (handler === undefined) {
      sendJsonError(res, 404, "not_found", `no handler for ${pathOf(req)}`);
      return;
    }
    try {
      handler(req, res, identity);
    } catch (error) {
      this.logger.error({ err: error, path: pathOf(req) }, "http handler threw");
      if (!res.headersSent) sendJsonError(res, 500, "internal", "internal error");
      else res.destroy();
    }
  }
}

/** The link's one request; then it is closed, answered or not. */
async function requestOnce(link: Link, channel: string, payload: Uint8Array, timeoutMs: number) {
  try {
    return await link.request(channel, payload, timeoutMs);
  } finally {
    link.close(CloseCode.Answered, "request answered");
  }
}

/**
 * Why a dial to an address failed before its hello-ok: the network (a system error: refused, unreachable,
 * reset) or anything TLS, the upgrade or the hello refused, with its reason.
 */
function addressDialError(
  address: string,
  reason: string,
  cause: Error | undefined,
  closing: boolean,
): Error {
  const syscall = (cause as NodeJS.ErrnoException | undefined)?.syscall;
  if (closing || typeof syscall === "string") return new PeerUnreachableError(address, reason, { cause });
  return new HandshakeError(`handshake with ${address} failed: ${reason}`, { cause });
}

/** Plain code-unit order, the same on every node. */
function lowerNodeId(a: NodeId, b: NodeId): NodeId {
  if (a < b) return a;
  return b;
}

function pathOf(req: IncomingMessage): string {
  const url = req.url ?? "/";
  const query = url.indexOf("?");
  return query === -1 ? url : url.slice(0, query);
}

function rejectUpgrade(socket: Duplex, status: number, text: string): void {
  socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}

function sendJsonError(res: ServerResponse, status: number, code: string, message: string): void {
  const body = JSON.stringify({ error: { code, message } });
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
  res.end(body);
}

/** Peer id to address, self left out; an id listed twice or an empty address is a bug in the caller. */
function peerAddresses(peers: readonly MeshPeer[], selfId: NodeId): Map<NodeId, string> {
  const addresses = new Map<NodeId, string>();
  for (const peer of peers) {
    if (peer.id === selfId) continue;
    if (addresses.has(peer.id)) throw new RangeError(`mesh: peer ${peer.id} listed twice`);
    if (peer.address === "") throw new RangeError(`mesh: peer ${peer.id} has no address`);
    addresses.set(peer.id, peer.address);
  }
  return addresses;
}
