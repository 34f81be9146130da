// An in-memory stand-in for the mesh: send, onMessage, request and onRequest, link events, the per-peer
// count of frames received, between nodes of one process. Delivery is asynchronous (setImmediate), like a socket, so a
// send never re-enters the receiver inside the sender's call. Links are explicit; a muted node keeps its
// links but everything it sends is lost (a hung process whose TCP connections stay open).
import type { NodeId } from "../../src/core/types.ts";
import { PeerUnreachableError, RemoteError, TimeoutError } from "../../src/mesh/index.ts";
import type {
  MeshApi,
  MeshEventMap,
  MessageListener,
  PeerLinkStatus,
  RequestHandler,
  SendResult,
} from "../../src/mesh/types.ts";

export type MemoryMeshApi = Pick<
  MeshApi,
  "selfId" | "send" | "onMessage" | "request" | "onRequest" | "on" | "peers" | "framesReceived"
>;

/** MeshApi's default request timeout (src/mesh/limits.ts). */
const requestTimeoutMsDefault = 5000;

type EventListeners = { [E in keyof MeshEventMap]: Array<(...args: MeshEventMap[E]) => void> };

interface MemoryNode {
  messageListeners: Map<string, MessageListener[]>;
  requestHandlers: Map<string, RequestHandler>;
  /** Messages delivered to this node, by sender. */
  framesReceived: Map<NodeId, number>;
  eventListeners: EventListeners;
}

function linkKey(a: NodeId, b: NodeId): string {
  return a < b ? `${a}\u0000${b}` : `${b}\u0000${a}`;
}

export class MemoryNetwork {
  private readonly nodes = new Map<NodeId, MemoryNode>();
  private readonly links = new Set<string>();
  private readonly muted = new Set<NodeId>();
  private readonly inFlight = new Set<NodeJS.Immediate>();
  private readonly sends = new Map<string, number>();
  private closed = false;

  /** Adds a node with no links yet. */
  join(selfId: NodeId): MemoryMeshApi {
    if (this.nodes.has(selfId)) throw new Error(`node ${selfId} already joined`);
    const node: MemoryNode = {
      messageListeners: new Map(),
      requestHandlers: new Map(),
      framesReceived: new Map(),
      eventListeners: { "link:up": [], "link:down": [], "link:renewed": [] },
    };
    this.nodes.set(selfId, node);
    return {
      selfId,
      send: (peer, channel, payload) => this.send(selfId, peer, channel, payload),
      onMessage: (channel, listener) => {
        node.messageListeners.set(channel, [...(node.messageListeners.get(channel) ?? []), listener]);
        return () => {
          const rest = (node.messageListeners.get(channel) ?? []).filter((l) => l !== listener);
          node.messageListeners.set(channel, rest);
        };
      },
      request: (peer, channel, payload, options) =>
        this.request(selfId, peer, channel, payload, options?.timeoutMs ?? requestTimeoutMsDefault),
      onRequest: (channel, handler) => {
        node.requestHandlers.set(channel, handler);
        return () => {
          if (node.requestHandlers.get(channel) === handler) node.requestHandlers.delete(channel);
        };
      },
      on: (event, listener) => {
        const listeners = node.eventListeners[event];
        listeners.push(listener);
        return () => {
          const index = listeners.indexOf(listener);
          if (index >= 0) listeners.splice(index, 1);
        };
      },
      peers: () => this.linkStatuses(selfId),
      framesReceived: (peer) => node.framesReceived.get(peer) ?? 0,
    } satisfies MemoryMeshApi;
  }

  /** The link view MeshApi.peers() gives: every other joined node, connected or not. */
  private linkStatuses(selfId: NodeId): PeerLinkStatus[] {
    return [...this.nodes.keys()]
      .filter((id) => id !== selfId)
      .map((id) => {
        const connected = this.links.has(linkKey(selfId, id));
        return {
          id,
          address: `memory:${id}`,
          connected,
          dialer: connected ? (selfId < id ? selfId : id) : null,
          sinceMs: 0,
          lastError: null,
          inflightRequests: 0,
          queuedFrames: 0,
        };
      });
  }

  /** Links every pair of joined nodes that is not linked yet. */
  connectAll(): void {
    const ids = [...this.nodes.keys()];
    for (const [index, a] of ids.entries()) {
      for (const b of ids.slice(index + 1)) this.connect(a, b);
    }
  }

  connect(a: NodeId, b: NodeId): void {
    if (this.links.has(linkKey(a, b))) return;
    this.links.add(linkKey(a, b));
    for (const l of this.node(a).eventListeners["link:up"]) l(b);
    for (const l of this.node(b).eventListeners["link:up"]) l(a);
  }

  disconnect(a: NodeId, b: NodeId, reason = "disconnected by test"): void {
    if (!this.links.delete(linkKey(a, b))) return;
    for (const l of this.node(a).eventListeners["link:down"]) l(b, reason);
    for (const l of this.node(b).eventListeners["link:down"]) l(a, reason);
  }

  /** While muted, everything the node sends reports "sent" and is lost. */
  setMuted(id: NodeId, muted: boolean): void {
    if (muted) this.muted.add(id);
    else this.muted.delete(id);
  }

  /** How many times `from` called send() towards `to` on `channel`, whatever the result. */
  sendCount(from: NodeId, to: NodeId, channel: string): number {
    return this.sends.get(`${from}>${to}>${channel}`) ?? 0;
  }

  /** Drops every message still in flight and refuses new ones. */
  close(): void {
    this.closed = true;
    for (const immediate of this.inFlight) clearImmediate(immediate);
    this.inFlight.clear();
  }

  private send(from: NodeId, to: NodeId, channel: string, payload: Uint8Array): SendResult {
    const key = `${from}>${to}>${channel}`;
    this.sends.set(key, (this.sends.get(key) ?? 0) + 1);
    if (this.closed || !this.links.has(linkKey(from, to))) return "no-link";
    if (this.muted.has(from)) return "sent";
    const copy = payload.slice();
    const immediate = setImmediate(() => {
      this.inFlight.delete(immediate);
      // The link may have gone down while the message was in flight.
      if (!this.links.has(linkKey(from, to))) return;
      const receiver = this.node(to);
      receiver.framesReceived.set(from, (receiver.framesReceived.get(from) ?? 0) + 1);
      for (const listener of this.node(to).messageListeners.get(channel) ?? []) listener(from, copy);
    });
    this.inFlight.add(immediate);
    return "sent";
  }

  /**
   * A request answered by the peer's handler for the channel, both ways as asynchronous as a send. A muted
   * side's messages are lost, so its requests (or the answers to them) time out; no link rejects at once.
   */
  private request(
    from: NodeId,
    to: NodeId,
    channel: string,
    payload: Uint8Array,
    timeoutMs: number,
  ): Promise<Uint8Array> {
    const key = `${from}>${to}>${channel}`;
    this.sends.set(key, (this.sends.get(key) ?? 0) + 1);
    if (this.closed || !this.links.has(linkKey(from, to))) {
      return Promise.reject(new PeerUnreachableError(to, "no link"));
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new TimeoutError(`request to ${to} on ${channel} timed out`, timeoutMs)),
        timeoutMs,
      );
      const settle = (settleWith: () => void): void => {
        clearTimeout(timer);
        settleWith();
      };
      if (this.muted.has(from)) return;
      const copy = payload.slice();
      this.deliver(() => {
        const receiver = this.node(to);
        receiver.framesReceived.set(from, (receiver.framesReceived.get(from) ?? 0) + 1);
        const handler = receiver.requestHandlers.get(channel);
        const answered = Promise.resolve().then(() => {
          if (handler === undefined) throw new Error(`no handler for ${channel}`);
          return handler(from, copy);
        });
        const answer = (settleWith: () => void): void => {
          if (this.muted.has(to)) return;
          this.deliver(() => {
            const requester = this.node(from);
            requester.framesReceived.set(to, (requester.framesReceived.get(to) ?? 0) + 1);
            settle(settleWith);
          });
        };
        answered.then(
          (response) => answer(() => resolve(response.slice())),
          (error: Error) => answer(() => reject(new RemoteError(to, error.message))),
        );
      });
    });
  }

  /** Runs `action` on a later turn, like bytes through a socket; dropped when the network closes. */
  private deliver(action: () => void): void {
    if (this.closed) return;
    const immediate = setImmediate(() => {
      this.inFlight.delete(immediate);
      action();
    });
    this.inFlight.add(immediate);
  }

  private node(id: NodeId): MemoryNode {
    const node = this.nodes.get(id);
    if (!node) throw new Error(`node ${id} has not joined`);
    return node;
  }
}
