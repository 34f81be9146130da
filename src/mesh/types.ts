// The mesh's public contract: what src/cluster and later capabilities program against.
// Implementation: mesh.ts (links, dial/accept, dedupe, reconnect), link.ts, frame.ts, handshake.ts, rpc.ts.

import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "pino";
import type { NodeId } from "../core/types.ts";
import type { Ticker } from "../shell/index.ts";

/** How links authenticate. Both modes are TLS 1.3; nothing home-made. */
export type MeshSecurity =
  | {
      mode: "mtls";
      /** PEM of the cluster CA: the only issuer trusted for peers and API clients. */
      caCertPem: string;
      /** This node's certificate (CN = node id) and key, PEM. */
      certPem: string;
      keyPem: string;
    }
  | {
      mode: "psk";
      /** The cluster's shared secret (>= 32 bytes). The PSK identity is the node id. */
      key: Buffer;
    };

export interface MeshPeer {
  id: NodeId;
  /** host:port that this node dials. */
  address: string;
}

/**
 * What a node announces of its cluster membership in every hello: the committed version and a hash of the
 * member list (lowercase hex, at most 64 characters), so two nodes see at link up whether they agree.
 */
export interface MembershipSummary {
  version: number;
  hash: string;
}

export interface MeshLimits {
  /** Largest frame accepted or sent (bytes); larger ones close the link with a logged reason. */
  frameBytesMax: number;
  /** Frames queued per link while the socket is busy; past it, send() reports "backpressure". */
  sendQueueFramesMax: number;
  /** Bytes queued per link (ws bufferedAmount + our queue); past it, send() reports "backpressure". */
  sendQueueBytesMax: number;
  /** Outstanding requests per link; past it, request() rejects with BackpressureError. */
  inflightRequestsMax: number;
  /** Default request timeout. */
  requestTimeoutMs: number;
  /** Handshake must finish within this, or the socket is closed. */
  handshakeTimeoutMs: number;
  /** Reconnect backoff with full jitter between these bounds. */
  reconnectDelayMsMin: number;
  reconnectDelayMsMax: number;
  /**
   * Checked this often: a link that received nothing since the last check gets a ws ping, and one that still
   * received nothing (no frame, no pong) by the next check is terminated.
   */
  keepaliveIntervalMs: number;
}

/** Authenticated identity of an HTTP client on the TLS port: the certificate CN or the PSK identity. */
export interface ClientIdentity {
  kind: "certificate" | "psk";
  name: string;
}

/** Non-mesh HTTP requests on the TLS port (the API) are handed to this, already authenticated. */
export type TlsHttpHandler = (req: IncomingMessage, res: ServerResponse, identity: ClientIdentity) => void;

export interface MeshOptions {
  selfId: NodeId;
  /** Peers with different cluster names refuse each other at the hello. */
  clusterName: string;
  listenHost: string;
  /** 0 picks a free port (tests); read the actual one from address(). */
  listenPort: number;
  /** The peers at start; setPeers replaces them. */
  peers: readonly MeshPeer[];
  security: MeshSecurity;
  logger: Logger;
  limits?: Partial<MeshLimits>;
  httpHandler?: TlsHttpHandler;
  /**
   * Asked at the hello of a node that is not a peer: true accepts its link (a joining node has no
   * membership yet and must accept the leader's). Such a guest gets a slot without an address: it is
   * never dialed, only accepted, and asked about again at each of its hellos; it stays listed until a
   * setPeers leaves it out while this refuses it. `announced`: the membership summary in its hello (a node
   * ahead of us may lead a list we do not hold yet). Default: refuse every node that is not a peer.
   */
  admitUnknown?: (id: NodeId, announced?: MembershipSummary) => boolean;
  /** Read at every hello, so each link announces the current summary; undefined (or absent) announces none. */
  membership?: () => MembershipSummary | undefined;
  /** The agent's shared ticker, which runs the keepalive checks; one of the mesh's own by default. */
  ticker?: Ticker;
}

/** A one-way message handler for a channel. Runs on the event loop; must not throw. */
export type MessageListener = (from: NodeId, payload: Uint8Array) => void;

/** A request handler for a channel; its resolved bytes are the response, a rejection an error reply. */
export type RequestHandler = (from: NodeId, payload: Uint8Array) => Promise<Uint8Array> | Uint8Array;

export type SendResult = "sent" | "no-link" | "backpressure";

export interface PeerLinkStatus {
  id: NodeId;
  /** "" for a guest admitted by admitUnknown: accepted, never dialed. */
  address: string;
  connected: boolean;
  /** Who dialed the surviving link. */
  dialer: NodeId | null;
  /** Date.now() when the current link came up, or when it went down. */
  sinceMs: number;
  lastError: string | null;
  inflightRequests: number;
  queuedFrames: number;
  /** What the peer announced in the hello of its latest link; absent if it announced none (older peers). */
  membership?: MembershipSummary;
}

export interface MeshEventMap {
  "link:up": [peer: NodeId];
  "link:down": [peer: NodeId, reason: string];
  /** A new link to the peer replaced the current one (the peer stayed reachable throughout). */
  "link:renewed": [peer: NodeId];
}

/** The answer of a node reached by its address, and who it is. */
export interface AddressResponse {
  peer: NodeId;
  response: Uint8Array;
}

/** The surface of Mesh (mesh.ts) that the rest of Tandem uses. */
export interface MeshApi {
  readonly selfId: NodeId;
  address(): { host: string; port: number };
  send(peer: NodeId, channel: string, payload: Uint8Array): SendResult;
  request(
    peer: NodeId,
    channel: string,
    payload: Uint8Array,
    options?: { timeoutMs?: number },
  ): Promise<Uint8Array>;
  /**
   * One request to the node listening at `address` (host:port), whose id is not known in advance, as a
   * node joining with `--join` asks a member; see Mesh.requestAt for the link it uses and the errors.
   */
  requestAt(
    address: string,
    channel: string,
    payload: Uint8Array,
    options?: { timeoutMs?: number },
  ): Promise<AddressResponse>;
  /** Subscriptions return their unsubscribe. */
  onMessage(channel: string, listener: MessageListener): () => void;
  onRequest(channel: string, handler: RequestHandler): () => void;
  /** Every slot: the peers and the guests admitted by admitUnknown. */
  peers(): PeerLinkStatus[];
  /**
   * Replaces the peer set (self is skipped). New peers are dialed; a changed address is used by the next
   * dial (a connected link stays); a peer left out is dropped and its links closed, unless admitUnknown
   * still admits it: then it stays as a guest, accepted but no longer dialed. The same set changes nothing.
   * Throws RangeError for an id listed twice or an empty address (a bug in the caller).
   */
  setPeers(peers: readonly MeshPeer[]): void;
  /**
   * Frames received from `peer` since the mesh started, over any link: evidence that it lives. A counter,
   * so a failure detector reads it once per tick instead of being called per frame; compare readings.
   */
  framesReceived(peer: NodeId): number;
  /**
   * Dials a fresh link to replace the current one if that one is up since before `upBeforeMs` (epoch ms) and
   * may be stalled; see Mesh.renew. True when a dial started.
   */
  renew(peer: NodeId, upBeforeMs: number): boolean;
  on<E extends keyof MeshEventMap>(event: E, listener: (...args: MeshEventMap[E]) => void): () => void;
  close(): Promise<void>;
}
