// The hello exchange that turns an authenticated WebSocket into a mesh link. Pure: the link feeds it
// decoded frames and acts on the verdicts. The dialer sends hello; the acceptor answers hello-ok with the
// chosen protocol version, or hello-refused with a reason and closes. Both may carry the sender's membership
// summary: an optional field, so hellos from older peers without it still pass.
import { z } from "zod";
import type { NodeId } from "../core/types.ts";
import { type Frame, FrameKind } from "./frame.ts";
import { decodeJsonPayload, encodeJsonPayload } from "./json_payload.ts";
import type { MembershipSummary } from "./types.ts";

export const PROTOCOL_VERSION_MIN = 1;
export const PROTOCOL_VERSION_MAX = 1;

/** WebSocket close codes (application range 4000-4999) with the short reason sent alongside. */
export const CloseCode = {
  ProtocolError: 4000,
  VersionMismatch: 4001,
  ClusterMismatch: 4002,
  UnknownNode: 4003,
  IdentityMismatch: 4004,
  HandshakeTimeout: 4005,
  DuplicateLink: 4006,
  ShuttingDown: 4007,
  Refused: 4008,
  /** The peer left the membership: its links are closed and it is no longer dialed. */
  Removed: 4009,
  /** A link opened for one request to an address (Mesh.requestAt) is done with. */
  Answered: 4010,
} as const;
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

const nodeIdSchema = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/);
const version = z.number().int().min(1).max(65_535);

export const membershipSummarySchema = z.strictObject({
  version: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  hash: z
    .string()
    .min(1)
    .max(64)
    .regex(/^[0-9a-f]+$/),
});

export const helloSchema = z.strictObject({
  protocolVersionMin: version,
  protocolVersionMax: version,
  nodeId: nodeIdSchema,
  clusterName: z.string().min(1).max(128),
  /** Random per process start: tells a restarted peer from the old incarnation in logs. */
  bootId: z.string().min(1).max(64),
  membership: membershipSummarySchema.optional(),
});
export type Hello = z.infer<typeof helloSchema>;

export const helloOkSchema = z.strictObject({
  protocolVersion: version,
  nodeId: nodeIdSchema,
  clusterName: z.string().min(1).max(128),
  bootId: z.string().min(1).max(64),
  membership: membershipSummarySchema.optional(),
});
export type HelloOk = z.infer<typeof helloOkSchema>;

export const helloRefusedSchema = z.strictObject({ reason: z.string().max(200) });
export type HelloRefused = z.infer<typeof helloRefusedSchema>;

export interface HandshakeContext {
  selfId: NodeId;
  clusterName: string;
  bootId: string;
  /** Whether a node may link: asked at every hello, so a membership change applies to the next one. */
  admits(id: NodeId, announced: MembershipSummary | undefined): boolean;
  /** The summary our hello or hello-ok announces, read as it is sent; undefined announces none. */
  membership(): MembershipSummary | undefined;
}

export interface HandshakeRefusal {
  code: CloseCode;
  reason: string;
}

export type AcceptVerdict =
  | { ok: true; hello: Hello; reply: HelloOk }
  | { ok: false; refusal: HandshakeRefusal };
export type DialVerdict = { ok: true; helloOk: HelloOk } | { ok: false; refusal: HandshakeRefusal };

export function helloFrame(context: HandshakeContext): Frame {
  const hello: Hello = {
    protocolVersionMin: PROTOCOL_VERSION_MIN,
    protocolVersionMax: PROTOCOL_VERSION_MAX,
    nodeId: context.selfId,
    clusterName: context.clusterName,
    bootId: context.bootId,
    ...membershipField(context),
  };
  return controlFrame(FrameKind.Hello, hello);
}

/** Absent rather than undefined, so an older peer's strict schema never meets the key. */
function membershipField(context: HandshakeContext): { membership?: MembershipSummary } {
  const membership = context.membership();
  return membership === undefined ? {} : { membership };
}

export function helloOkFrame(reply: HelloOk): Frame {
  return controlFrame(FrameKind.HelloOk, reply);
}

export function helloRefusedFrame(refusal: HandshakeRefusal): Frame {
  return controlFrame(FrameKind.HelloRefused, { reason: refusal.reason } satisfies HelloRefused);
}

function controlFrame(kind: FrameKind, body: unknown): Frame {
  return { kind, requestId: 0, channel: "", payload: encodeJsonPayload(body) };
}

/** Acceptor side: `identity` is the authenticated name (certificate CN or PSK identity). */
export function evaluateHello(frame: Frame, identity: string, context: HandshakeContext): AcceptVerdict {
  if (frame.kind !== FrameKind.Hello)
    return refuse(CloseCode.ProtocolError, `expected hello, got kind ${frame.kind}`);
  const parsed = decodeJsonPayload(frame.payload, helloSchema);
  if (!parsed.ok) return refuse(CloseCode.ProtocolError, `invalid hello: ${parsed.reason}`);
  const hello = parsed.value;
  const chosen = Math.min(hello.protocolVersionMax, PROTOCOL_VERSION_MAX);
  if (chosen < Math.max(hello.protocolVersionMin, PROTOCOL_VERSION_MIN)) {
    return refuse(
      CloseCode.VersionMismatch,
      `no common protocol version: peer ${hello.protocolVersionMin}-${hello.protocolVersionMax}, ` +
        `self ${PROTOCOL_VERSION_MIN}-${PROTOCOL_VERSION_MAX}`,
    );
  }
  if (hello.clusterName !== context.clusterName)
    return refuse(CloseCode.ClusterMismatch, "cluster name differs");
  if (hello.nodeId !== identity)
    return refuse(CloseCode.IdentityMismatch, "hello node id differs from identity");
  if (hello.nodeId === context.selfId || !context.admits(hello.nodeId, hello.membership))
    return refuse(CloseCode.UnknownNode, notMemberReason(hello.nodeId, context));
  const reply: HelloOk = {
    protocolVersion: chosen,
    nodeId: context.selfId,
    clusterName: context.clusterName,
    bootId: context.bootId,
    ...membershipField(context),
  };
  return { ok: true, hello, reply };
}

/** The refused node logs this: with our membership version, it can tell it was removed from that one. */
function notMemberReason(id: NodeId, context: HandshakeContext): string {
  const membership = context.membership();
  const of = membership === undefined ? "" : ` of membership v${membership.version}`;
  return `node ${id} is not a member${of}`;
}

/**
 * Dialer side: the answer must come from the peer we dialed, in our cluster, at a version we speak.
 * `dialedPeer` null: a dial to an address with nothing to name the node beforehand (psk), any node answers.
 */
export function evaluateHelloAnswer(
  frame: Frame,
  dialedPeer: NodeId | null,
  context: HandshakeContext,
): DialVerdict {
  if (frame.kind === FrameKind.HelloRefused) {
    const parsed = decodeJsonPayload(frame.payload, helloRefusedSchema);
    const reason = parsed.ok ? parsed.value.reason : "unreadable refusal";
    return refuse(CloseCode.Refused, `refused by peer: ${reason}`);
  }
  if (frame.kind !== FrameKind.HelloOk) {
    return refuse(CloseCode.ProtocolError, `expected hello-ok, got kind ${frame.kind}`);
  }
  const parsed = decodeJsonPayload(frame.payload, helloOkSchema);
  if (!parsed.ok) return refuse(CloseCode.ProtocolError, `invalid hello-ok: ${parsed.reason}`);
  const helloOk = parsed.value;
  if (helloOk.protocolVersion < PROTOCOL_VERSION_MIN || helloOk.protocolVersion > PROTOCOL_VERSION_MAX) {
    return refuse(CloseCode.VersionMismatch, `peer chose unsupported version ${helloOk.protocolVersion}`);
  }
  if (helloOk.clusterName !== context.clusterName)
    return refuse(CloseCode.ClusterMismatch, "cluster name differs");
  if (dialedPeer !== null && helloOk.nodeId !== dialedPeer)
    return refuse(CloseCode.IdentityMismatch, "answer from a different node id");
  return { ok: true, helloOk };
}

/** A WebSocket close reason is at most 123 bytes of UTF-8: ws throws on a longer one. */
export const closeReasonBytesMax = 123;

function refuse(code: CloseCode, reason: string): { ok: false; refusal: HandshakeRefusal } {
  return { ok: false, refusal: { code, reason: fitCloseReason(reason) } };
}

/**
 * Cuts a reason to fit a close frame, on a character boundary; every close of a link goes through it.
 * Reasons may quote the peer (a refusal it sent, an unknown key), so 120 characters can be far more than
 * 123 bytes.
 */
export function fitCloseReason(reason: string): string {
  if (Buffer.byteLength(reason) <= closeReasonBytesMax) return reason;
  const ellipsis = "...";
  let bytes = ellipsis.length;
  let end = 0;
  for (const character of reason) {
    bytes += Buffer.byteLength(character);
    if (bytes > closeReasonBytesMax) break;
    end += character.length;
  }
  return `${reason.slice(0, end)}${ellipsis}`;
}
