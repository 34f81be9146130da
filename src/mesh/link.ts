// One WebSocket to one peer, from hello to close: runs the handshake, then carries frames with a bounded
// send queue, matches request answers, runs request handlers and keeps the link alive with pings.
// The mesh decides which established link survives; a link only reports what happened to it. A losing
// duplicate is retired, not cut: each side sends a retire frame after its last new frame, answers what is
// still running, and the link closes once both sides retired it and nothing is outstanding.
import type { Logger } from "pino";
import type { RawData, WebSocket } from "ws";
import type { NodeId } from "../core/types.ts";
import { BackpressureError, HandshakeError, PeerUnreachableError, ProtocolError } from "./errors.ts";
import {
  decodeFrame,
  encodedFrameBytes,
  encodeFrame,
  encodeFrameFields,
  type Frame,
  FrameKind,
} from "./frame.ts";
import {
  CloseCode,
  evaluateHello,
  evaluateHelloAnswer,
  fitCloseReason,
  type HandshakeContext,
  type HandshakeRefusal,
  helloFrame,
  helloOkFrame,
  helloRefusedFrame,
} from "./handshake.ts";
import { PendingRequests } from "./rpc.ts";
import type { MembershipSummary, MeshLimits, RequestHandler, SendResult } from "./types.ts";

export type LinkRole = "dialer" | "acceptor";
type LinkState = "handshaking" | "established" | "closed";

/** Error messages sent back to a requester are cut here: enough to debug, never a flood. */
const REMOTE_ERROR_CHARS_MAX = 1000;

export interface LinkHooks {
  established(link: Link): void;
  /** `cause` says why when the link failed (HandshakeError, ProtocolError, a socket error). */
  closed(link: Link, reason: string, cause: Error | undefined): void;
  message(from: NodeId, channel: string, payload: Uint8Array): void;
  requestHandler(channel: string): RequestHandler | undefined;
}

/** Frames received from one peer, over whichever link: read by the failure detector once per tick. */
export interface PeerTraffic {
  framesReceived: number;
}

/** A dial to an address whose node id the hello-ok tells (Mesh.requestAt). */
export interface AddressTarget {
  address: string;
  /** The node id the hello-ok must carry, read when it arrives; null: any node of the cluster. */
  expectedPeer(): NodeId | null;
}

export interface LinkOptions {
  ws: WebSocket;
  role: LinkRole;
  /**
   * Dialer: the peer it dialed, or the address it dialed (then the peer is known once established).
   * Acceptor: the authenticated identity (certificate CN or PSK identity).
   */
  peer: NodeId | AddressTarget;
  handshake: HandshakeContext;
  limits: MeshLimits;
  logger: Logger;
  hooks: LinkHooks;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const noPayload = new Uint8Array();
/** ws copies its options into a frame object of its own: one shared object serves every send. */
const binaryMessage = { binary: true } as const;

export class Link {
  readonly role: LinkRole;
  /** The node that opened this link; the mesh keeps the lower node id's link when two exist. */
  readonly dialer: NodeId;
  /** The peer process's random boot id from its hello: tells a restarted peer apart in logs. */
  private peerBootIdValue: string | null = null;
  /** The membership summary the peer's hello or hello-ok announced, if any. */
  private peerMembershipValue: MembershipSummary | undefined;
  /** Resolves once the socket is closed for good. */
  readonly closed: Promise<void>;

  /** null until a link dialed to an address is established. */
  private peerId: NodeId | null;
  private readonly addressTarget: AddressTarget | null;
  private readonly ws: WebSocket;
  private readonly handshake: HandshakeContext;
  private readonly limits: MeshLimits;
  private logger: Logger;
  private readonly hooks: LinkHooks;
  /** Replaced once a link dialed to an address learns its peer: none can be pending before. */
  private requests: PendingRequests;
  /** Counted on every frame of the established link: a plain counter, no callback per frame. */
  private traffic: PeerTraffic = { framesReceived: 0 };
  private state: LinkState = "handshaking";
  private queuedFramesCount = 0;
  private handlersRunning = 0;
  /** Something (a frame or a pong) arrived since the last keepalive check: the link lives, no ping needed. */
  private heardSinceKeepalive = false;
  /** A keepalive ping is out and nothing has come back yet. */
  private awaitingPong = false;
  private socketError: Error | null = null;
  private handshakeTimer: NodeJS.Timeout | null;
  private retireTimer: NodeJS.Timeout | null = null;
  private retiredBySelf = false;
  private retiredByPeer = false;
  private readonly onFrameSent = (): void => {
    this.queuedFramesCount -= 1;
  };

  constructor(options: LinkOptions) {
    this.ws = options.ws;
    this.role = options.role;
    const peer = options.peer;
    this.peerId = typeof peer === "string" ? peer : null;
    this.addressTarget = typeof peer === "string" ? null : peer;
    if (options.role === "dialer") this.dialer = options.handshake.selfId;
    else if (typeof peer === "string") this.dialer = peer;
    else throw new Error("mesh: an accepted link has no address target");
    this.handshake = options.handshake;
    this.limits = options.limits;
    const subject = typeof peer === "string" ? { peer } : { address: peer.address };
    this.logger = options.logger.child({ ...subject, role: options.role });
    this.hooks = options.hooks;
    this.requests = this.newRequests();
    this.closed = new Promise((resolve) => this.ws.once("close", () => resolve()));
    this.handshakeTimer = setTimeout(() => this.onHandshakeTimeout(), this.limits.handshakeTimeoutMs);
    this.ws.on("open", () => this.onOpen());
    this.ws.on("message", (data, isBinary) => this.onData(data, isBinary));
    this.ws.on("pong", () => {
      this.heardSinceKeepalive = true;
    });
    this.ws.on("error", (error) => {
      this.socketError = error;
    });
    this.ws.on("close", (code, reason) => this.onSocketClose(code, reason));
  }

  /** The peer's node id; read before a link dialed to an address is established, a bug. */
  get peer(): NodeId {
    if (this.peerId === null) throw new Error("mesh: peer of a link to an address read before its hello-ok");
    return this.peerId;
  }

  get peerBootId(): string | null {
    return this.peerBootIdValue;
  }

  get peerMembership(): MembershipSummary | undefined {
    return this.peerMembershipValue;
  }

  /**
   * The mesh hands over its peer's counter once the link is established: only then is the peer's slot
   * sure (a guest's is made at that moment), and frames are counted only from then on.
   */
  countFramesInto(traffic: PeerTraffic): void {
    this.traffic = traffic;
  }

  get inflightRequests(): number {
    return this.requests.size;
  }

  get queuedFrames(): number {
    return this.queuedFramesCount;
  }

  send(channel: string, payload: Uint8Array): SendResult {
    return this.sendFrame(FrameKind.Message, 0, channel, payload);
  }

  request(channel: string, payload: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    if (this.state !== "established") {
      return Promise.reject(new PeerUnreachableError(this.name, "link is not established"));
    }
    const opened = this.requests.open(channel, timeoutMs);
    if (!opened.ok) return Promise.reject(opened.error);
    const result = this.sendFrame(FrameKind.Request, opened.requestId, channel, payload);
    if (result === "backpressure") {
      this.requests.fail(opened.requestId, new BackpressureError(`send queue to ${this.peer} is full`));
    }
    return opened.response;
  }

  /** This link lost to a duplicate: send nothing new, finish what runs, close when both sides are done. */
  retire(): void {
    if (this.state !== "established" || this.retiredBySelf) return;
    this.retiredBySelf = true;
    this.writeBytes(encodeFrameFields(FrameKind.Retire, 0, "", noPayload));
    // A peer that never retires its side cannot hold the link open past one request timeout.
    this.retireTimer = setTimeout(
      () => this.close(CloseCode.DuplicateLink, "duplicate link"),
      this.limits.requestTimeoutMs,
    );
    this.retireTimer.unref();
    this.closeIfDrained();
  }

  /** Closes with a code and reason the peer sees; pending requests fail at once. */
  close(code: CloseCode, reason: string, cause?: Error): void {
    if (this.state === "closed") return;
    this.finish(reason, cause);
    if (this.ws.readyState === this.ws.OPEN) {
      this.ws.close(code, fitCloseReason(reason));
    } else {
      this.ws.terminate();
    }
  }

  /** Drops the socket without a closing handshake (dead peer, shutdown deadline). */
  terminate(reason: string): void {
    this.finish(reason);
    this.ws.terminate();
  }

  private sendFrame(kind: FrameKind, requestId: number, channel: string, payload: Uint8Array): SendResult {
    if (this.state !== "established") return "no-link";
    const frameBytes = encodedFrameBytes(channel, payload.byteLength);
    if (
      this.queuedFramesCount >= this.limits.sendQueueFramesMax ||
      this.ws.bufferedAmount + frameBytes > this.limits.sendQueueBytesMax
    ) {
      return "backpressure";
    }
    this.writeBytes(encodeFrameFields(kind, requestId, channel, payload));
    return "sent";
  }

  /** Writes without the queue bound: hello frames and the ones already admitted by sendFrame. */
  private writeBytes(bytes: Uint8Array): void {
    this.queuedFramesCount += 1;
    this.ws.send(bytes, binaryMessage, this.onFrameSent);
  }

  private writeFrame(frame: Frame): void {
    this.writeBytes(encodeFrame(frame));
  }

  private onOpen(): void {
    if (this.role === "dialer" && this.state === "handshaking") this.writeFrame(helloFrame(this.handshake));
  }

  private onData(data: RawData, isBinary: boolean): void {
    if (this.state === "closed") return;
    if (!isBinary) {
      this.refuse({ code: CloseCode.ProtocolError, reason: "text frame" });
      return;
    }
    // Buffers are used as they are (no copy); ws only hands out arrays or ArrayBuffers if asked to.
    const bytes = Array.isArray(data)
      ? Buffer.concat(data)
      : data instanceof ArrayBuffer
        ? new Uint8Array(data)
        : data;
    const decoded = decodeFrame(bytes, this.limits.frameBytesMax);
    if (!decoded.ok) {
      this.refuse({ code: CloseCode.ProtocolError, reason: `bad frame: ${decoded.error.message}` });
      return;
    }
    if (this.state === "handshaking") {
      this.onHandshakeFrame(decoded.frame);
    } else {
      this.onLinkFrame(decoded.frame);
    }
  }

  private onHandshakeFrame(frame: Frame): void {
    if (this.role === "acceptor") {
      const verdict = evaluateHello(frame, this.peer, this.handshake);
      if (!verdict.ok) {
        this.writeFrame(helloRefusedFrame(verdict.refusal));
        this.refuse(verdict.refusal);
        return;
      }
      this.writeFrame(helloOkFrame(verdict.reply));
      this.establish(verdict.hello);
      return;
    }
    const expected = this.addressTarget === null ? this.peer : this.addressTarget.expectedPeer();
    const verdict = evaluateHelloAnswer(frame, expected, this.handshake);
    if (!verdict.ok) {
      this.refuse(verdict.refusal);
      return;
    }
    this.establish(verdict.helloOk);
  }

  private establish(peerHello: {
    nodeId: NodeId;
    bootId: string;
    membership?: MembershipSummary | undefined;
  }): void {
    this.clearHandshakeTimer();
    if (this.peerId === null) {
      this.peerId = peerHello.nodeId;
      this.logger = this.logger.child({ peer: peerHello.nodeId });
      this.requests = this.newRequests();
    }
    this.state = "established";
    this.peerBootIdValue = peerHello.bootId;
    this.peerMembershipValue = peerHello.membership;
    this.hooks.established(this);
  }

  private onLinkFrame(frame: Frame): void {
    this.traffic.framesReceived += 1;
    this.heardSinceKeepalive = true;
    switch (frame.kind) {
      case FrameKind.Message:
        this.hooks.message(this.peer, frame.channel, frame.payload);
        return;
      case FrameKind.Request:
        this.runRequest(frame.requestId, frame.channel, frame.payload);
        return;
      case FrameKind.Response:
        if (!this.requests.resolve(frame.requestId, frame.payload)) this.logLateAnswer(frame.requestId);
        return;
      case FrameKind.ResponseError:
        if (!this.requests.rejectRemote(frame.requestId, decoder.decode(frame.payload))) {
          this.logLateAnswer(frame.requestId);
        }
        return;
      case FrameKind.Retire:
        this.retiredByPeer = true;
        this.closeIfDrained();
        return;
      case FrameKind.Hello:
      case FrameKind.HelloOk:
      case FrameKind.HelloRefused:
        this.refuse({ code: CloseCode.ProtocolError, reason: "hello frame on an established link" });
        return;
    }
  }

  private runRequest(requestId: number, channel: string, payload: Uint8Array): void {
    const handler = this.hooks.requestHandler(channel);
    if (handler === undefined) {
      this.answerError(requestId, `no handler for channel ${channel}`);
      return;
    }
    if (this.handlersRunning >= this.limits.inflightRequestsMax) {
      this.answerError(requestId, "peer busy: too many requests in flight");
      return;
    }
    let result: Promise<Uint8Array> | Uint8Array;
    try {
      result = handler(this.peer, payload);
    } catch (error) {
      this.answerError(requestId, errorMessage(error));
      return;
    }
    // Synchronous handlers answer without a promise turn: the common case for small lookups.
    if (result instanceof Uint8Array) {
      this.answer(FrameKind.Response, requestId, result);
      return;
    }
    this.handlersRunning += 1;
    result.then(
      (response) => {
        this.handlersRunning -= 1;
        this.answer(FrameKind.Response, requestId, response);
        this.closeIfDrained();
      },
      (error: unknown) => {
        this.handlersRunning -= 1;
        this.answerError(requestId, errorMessage(error));
        this.closeIfDrained();
      },
    );
  }

  private newRequests(): PendingRequests {
    return new PendingRequests({
      peer: this.name,
      inflightMax: this.limits.inflightRequestsMax,
      onEmpty: () => this.closeIfDrained(),
    });
  }

  /** The peer, or the address dialed while the peer is not known yet. */
  private get name(): string {
    return this.peerId ?? (this.addressTarget as AddressTarget).address;
  }

  private closeIfDrained(): void {
    if (!this.retiredBySelf || !this.retiredByPeer || this.state !== "established") return;
    if (this.requests.size > 0 || this.handlersRunning > 0) return;
    this.close(CloseCode.DuplicateLink, "duplicate link");
  }

  private answerError(requestId: number, message: string): void {
    const payload = encoder.encode(message.slice(0, REMOTE_ERROR_CHARS_MAX));
    this.answer(FrameKind.ResponseError, requestId, payload);
  }

  private answer(kind: FrameKind, requestId: number, payload: Uint8Array): void {
    if (payload.byteLength + encodedFrameBytes("", 0) > this.limits.frameBytesMax) {
      this.logger.warn({ requestId, reason: "response too large" }, "mesh answer dropped");
      this.answerError(requestId, "response exceeds frameBytesMax");
      return;
    }
    const result = this.sendFrame(kind, requestId, "", payload);
    if (result !== "sent") {
      // The requester times out; buffering past the bound would trade a timeout for unbounded memory.
      this.logger.warn({ requestId, reason: result }, "mesh answer dropped");
    }
  }

  private logLateAnswer(requestId: number): void {
    this.logger.debug({ requestId }, "mesh answer for a request no longer pending");
  }

  /**
   * The mesh checks every link once per keepalive interval. A link that carried frames since the last check
   * needs no ping (idle clusters send heartbeats every few hundred ms, so pings would only add messages). A
   * silent one is pinged; one still silent at the next check (no frame, no pong) is dead.
   */
  checkKeepalive(): void {
    if (this.state !== "established") return;
    if (this.heardSinceKeepalive) {
      this.heardSinceKeepalive = false;
      this.awaitingPong = false;
      return;
    }
    if (this.awaitingPong) {
      this.logger.warn({ reason: "no pong within keepalive interval" }, "mesh link dead");
      this.terminate("keepalive timeout");
      return;
    }
    this.awaitingPong = true;
    this.ws.ping();
  }

  private onHandshakeTimeout(): void {
    this.handshakeTimer = null;
    if (this.state !== "handshaking") return;
    this.refuse({ code: CloseCode.HandshakeTimeout, reason: "handshake timeout" });
  }

  /** Closes for a protocol or handshake failure, with the reason logged once. */
  private refuse(refusal: HandshakeRefusal): void {
    this.logger.warn({ reason: refusal.reason, closeCode: refusal.code }, "mesh link refused");
    const cause =
      refusal.code === CloseCode.ProtocolError
        ? new ProtocolError(refusal.reason)
        : new HandshakeError(refusal.reason);
    this.close(refusal.code, refusal.reason, cause);
  }

  private onSocketClose(code: number, reason: Buffer): void {
    // Dial failures and lost links are logged by the mesh; an accepted socket failing its hello is not.
    if (this.socketError !== null && this.role === "acceptor" && this.state === "handshaking") {
      this.logger.warn({ reason: this.socketError.message, closeCode: code }, "mesh link socket error");
    }
    const text = reason.toString("utf8");
    const detail = this.socketError?.message ?? (text === "" ? `code ${code}` : `${code} ${text}`);
    this.finish(`closed: ${detail}`, this.socketError ?? undefined);
  }

  /** Runs once: stops timers, fails pending requests and reports to the mesh. */
  private finish(reason: string, cause?: Error): void {
    if (this.state === "closed") return;
    this.state = "closed";
    this.clearHandshakeTimer();
    if (this.retireTimer !== null) clearTimeout(this.retireTimer);
    this.retireTimer = null;
    this.requests.rejectAll(new PeerUnreachableError(this.name, reason, { cause }));
    this.hooks.closed(this, reason, cause);
  }

  private clearHandshakeTimer(): void {
    if (this.handshakeTimer !== null) clearTimeout(this.handshakeTimer);
    this.handshakeTimer = null;
  }
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
