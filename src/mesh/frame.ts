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

/** What each kind carries; indexed by kind code, undefined for unknown codes. Shared, never copied. */
interface KindShape {
  requestId: boolean;
  channel: boolean;
}
const controlShape: KindShape = { requestId: false, channel: false };
const messageShape: KindShape = { requestId: false, channel: true };
const requestShape: KindShape = { requestId: true, channel: true };
const answerShape: KindShape = { requestId: true, channel: false };
const shapeByCode: (KindShape | undefined)[] = [];
shapeByCode[FrameKind.Hello] = controlShape;
shapeByCode[FrameKind.HelloOk] = controlShape;
shapeByCode[FrameKind.HelloRefused] = controlShape;
shapeByCode[FrameKind.Retire] = controlShape;
shapeByCode[FrameKind.Message] = messageShape;
shapeByCode[FrameKind.Request] = requestShape;
shapeByCode[FrameKind.Response] = answerShape;
shapeByCode[FrameKind.ResponseError] = answerShape;

/**
 * Channel names that passed the pattern: every frame names one of a handful, so a set lookup replaces the
 * regular expression on each send and receive. Bounded, so a peer inventing names cannot grow it.
 */
const checkedChannels = new Set<string>();
const CHECKED_CHANNELS_MAX = 1024;

export function isValidChannel(channel: string): boolean {
  if (checkedChannels.has(channel)) return true;
  const valid = channel.length >= 1 && channel.length <= CHANNEL_BYTES_MAX && channelPattern.test(channel);
  if (valid && checkedChannels.size < CHECKED_CHANNELS_MAX) checkedChannels.add(channel);
  return valid;
}

/** Field checks shared by encode (bugs) and decode (hostile input); null when the frame is well-formed. */
function checkFields(kind: number, requestId: number, channel: string): FrameError | null {
  const shape = shapeByCode[kind];
  if (shape === undefined) return { code: "unknown-kind", message: `unknown frame kind ${kind}` };
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
  return encodeFrameFields(frame.kind, frame.requestId, frame.channel, frame.payload);
}

/** encodeFrame without a Frame object: the link's send path. */
export function encodeFrameFields(
  kind: FrameKind,
  requestId: number,
  channel: string,
  payload: Uint8Array,
): Buffer {
  const problem = checkFields(kind, requestId, channel);
  if (problem !== null) throw new RangeError(`encodeFrame: ${problem.message}`);
  const channelBytes = channel.length;
  const bytes = Buffer.allocUnsafe(FRAME_HEADER_BYTES + channelBytes + payload.byteLength);
  bytes[0] = kind;
  bytes.writeUInt32BE(requestId, 1);
  bytes[5] = channelBytes;
  if (channelBytes > 0) bytes.write(channel, FRAME_HEADER_BYTES, "latin1");
  bytes.set(payload, FRAME_HEADER_BYTES + channelBytes);
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
  const kind = bytes[0] as number;
  if (shapeByCode[kind] === undefined) return fail("unknown-kind", `unknown frame kind ${kind}`);
  const requestId =
    (bytes[1] as number) * 0x100_0000 +
    (((bytes[2] as number) << 16) | ((bytes[3] as number) << 8) | (bytes[4] as number));
  const channelBytes = bytes[5] as number;
  if (channelBytes > CHANNEL_BYTES_MAX)
    return fail("bad-channel", `channel of ${channelBytes} bytes too long`);
  const payloadOffset = FRAME_HEADER_BYTES + channelBytes;
  if (bytes.byteLength < payloadOffset) return fail("truncated", "frame ends inside its channel name");
  const channel = channelBytes === 0 ? "" : latin1(bytes, FRAME_HEADER_BYTES, payloadOffset);
  const problem = checkFields(kind, requestId, channel);
  if (problem !== null) return { ok: false, error: problem };
  return {
    ok: true,
    frame: { kind: kind as FrameKind, requestId, channel, payload: bytes.subarray(payloadOffset) },
  };
}

/** ws hands out Buffers, which build the string natively in one step. */
function latin1(bytes: Uint8Array, start: number, end: number): string {
  const buffer =
    bytes instanceof Buffer ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return buffer.toString("latin1", start, end);
}

function fail(code: FrameErrorCode, message: string): FrameDecodeResult {
  return { ok: false, error: { code, message } };
}
