// Binary frames on the mesh WebSocket. Layout (big-endian):
//   u8 kind | u32 requestId | u8 channelBytes | channel (ASCII) | payload (opaque, rest of the message)
// decodeFrame validates every field and never throws: peer bytes are hostile until proven otherwise.

export const FrameKind = {
  Hello: 1,
  HelloOk: 2,
  HelloRefused: 3,
  /** The sender sends nothing new on this link (a duplicate); it closes once both sides drained it. */
  Retire: 4,
  Message: 16,
  Request: 17,
  Response: 18,
  ResponseError: 19,
} as const;
export type FrameKind = (typeof FrameKind)[keyof typeof FrameKind];

export const FRAME_HEADER_BYTES = 6;
export const CHANNEL_BYTES_MAX = 64;
export const REQUEST_ID_MAX = 0xffff_ffff;

/** Channel names: short, printable, stable (e.g. "election", "store.digest"). */
const channelPattern = /^[A-Za-z0-9][A-Za-z0-9._:/-]*$/;

export interface Frame {
  kind: FrameKind;
  /** 0 for control frames and one-way messages; 1..REQUEST_ID_MAX for requests and their answers. */
  requestId: number;
  /** "" for control frames and answers; a channel name for messages and requests. */
  channel: string;
  payload: Uint8Array;
}

export type FrameErrorCode =
  | "truncated"
  | "oversize"
  | "unknown-kind"
  | "bad-channel"
  | "bad-request-id"
  | "unexpected-channel";

export interface FrameError {
  code: FrameErrorCode;
  message: string;
}

export type FrameDecodeResult = { ok: true; frame: Frame } | { ok: false; error: FrameError };

const kindByCode = new Map<number, FrameKind>(Object.values(FrameKind).map((kind) => [kind, kind]));

/** What each kind carries: a request id, a channel name, both or neither. */
function kindShape(kind: FrameKind): { requestId: boolean; channel: boolean } {
  switch (kind) {
    case FrameKind.Hello:
    case FrameKind.HelloOk:
    case FrameKind.HelloRefused:
    case FrameKind.Retire:
      return { requestId: false, channel: false };
    case FrameKind.Message:
      return { requestId: false, channel: true };
    case FrameKind.Request:
      return { requestId: true, channel: true };
    case FrameKind.Response:
    case FrameKind.ResponseError:
      return { requestId: true, channel: false };
  }
}

export function isValidChannel(channel: string): boolean {
  return channel.length >= 1 && channel.length <= CHANNEL_BYTES_MAX && channelPattern.test(channel);
}

/** Field checks shared by encode (bugs) and decode (hostile input); null when the frame is well-formed. */
function checkFields(kind: FrameKind, requestId: number, channel: string): FrameError | null {
  const shape = kindShape(kind);
  const requestIdOk = shape.requestId
    ? Number.isInteger(requestId) && requestId >= 1 && requestId <= REQUEST_ID_MAX
    : requestId === 0;
  if (!requestIdOk)
    return { code: "bad-request-id", message: `request id ${requestId} invalid for kind ${kind}` };
  if (!shape.channel) {
    return channel === "" ? null : { code: "unexpected-channel", message: `kind ${kind} carries no channel` };
  }
  return isValidChannel(channel) ? null : { code: "bad-channel", message: "invalid channel name" };
}

export function encodedFrameBytes(channel: string, payloadBytes: number): number {
  return FRAME_HEADER_BYTES + channel.length + payloadBytes;
}

/** Encodes a frame; throws RangeError on a malformed frame, which is a bug in the caller. */
export function encodeFrame(frame: Frame): Buffer {
  const problem = checkFields(frame.kind, frame.requestId, frame.channel);
  if (problem !== null) throw new RangeError(`encodeFrame: ${problem.message}`);
  const channelBytes = frame.channel.length;
  const bytes = Buffer.allocUnsafe(encodedFrameBytes(frame.channel, frame.payload.byteLength));
  bytes.writeUInt8(frame.kind, 0);
  bytes.writeUInt32BE(frame.requestId, 1);
  bytes.writeUInt8(channelBytes, 5);
  bytes.write(frame.channel, FRAME_HEADER_BYTES, "latin1");
  bytes.set(frame.payload, FRAME_HEADER_BYTES + channelBytes);
  return bytes;
}

/** Decodes one WebSocket binary message. The payload is a view into `bytes`, not a copy. */
export function decodeFrame(bytes: Uint8Array, frameBytesMax: number): FrameDecodeResult {
  if (bytes.byteLength > frameBytesMax) {
    return fail("oversize", `frame of ${bytes.byteLength} bytes exceeds ${frameBytesMax}`);
  }
  if (bytes.byteLength < FRAME_HEADER_BYTES) {
    return fail("truncated", `frame of ${bytes.byteLength} bytes is shorter than its header`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const kind = kindByCode.get(view.getUint8(0));
  if (kind === undefined) return fail("unknown-kind", `unknown frame kind ${view.getUint8(0)}`);
  const requestId = view.getUint32(1);
  const channelBytes = view.getUint8(5);
  if (channelBytes > CHANNEL_BYTES_MAX)
    return fail("bad-channel", `channel of ${channelBytes} bytes too long`);
  const payloadOffset = FRAME_HEADER_BYTES + channelBytes;
  if (bytes.byteLength < payloadOffset) return fail("truncated", "frame ends inside its channel name");
  let channel = "";
  for (let i = FRAME_HEADER_BYTES; i < payloadOffset; i++) channel += String.fromCharCode(bytes[i] as number);
  const problem = checkFields(kind, requestId, channel);
  if (problem !== null) return { ok: false, error: problem };
  return { ok: true, frame: { kind, requestId, channel, payload: bytes.subarray(payloadOffset) } };
}

function fail(code: FrameErrorCode, message: string): FrameDecodeResult {
  return { ok: false, error: { code, message } };
}
