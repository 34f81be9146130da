// Mesh frames: every well-formed frame round-trips; every hostile input is a typed error, never a throw.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Prng } from "../../../src/core/prng.ts";
import {
  CHANNEL_BYTES_MAX,
  decodeFrame,
  encodeFrame,
  encodeFrameFields,
  FRAME_HEADER_BYTES,
  type Frame,
  FrameKind,
  isValidChannel,
} from "../../../src/mesh/frame.ts";

const FRAME_BYTES_MAX = 1024 * 1024;

const samples: Frame[] = [
  { kind: FrameKind.Hello, requestId: 0, channel: "", payload: new TextEncoder().encode('{"nodeId":"n1"}') },
  { kind: FrameKind.HelloOk, requestId: 0, channel: "", payload: new Uint8Array([123, 125]) },
  { kind: FrameKind.HelloRefused, requestId: 0, channel: "", payload: new Uint8Array() },
  { kind: FrameKind.Retire, requestId: 0, channel: "", payload: new Uint8Array() },
  { kind: FrameKind.Message, requestId: 0, channel: "election", payload: new Uint8Array([1, 2, 3]) },
  { kind: FrameKind.Request, requestId: 1, channel: "store.digest/v1", payload: new Uint8Array(300).fill(7) },
  {
    kind: FrameKind.Request,
    requestId: 0xffff_ffff,
    channel: "x".repeat(CHANNEL_BYTES_MAX),
    payload: new Uint8Array(),
  },
  { kind: FrameKind.Response, requestId: 42, channel: "", payload: new Uint8Array([0, 255]) },
  { kind: FrameKind.ResponseError, requestId: 7, channel: "", payload: new TextEncoder().encode("boom") },
];

function decodeNeverThrows(bytes: Uint8Array, frameBytesMax = FRAME_BYTES_MAX) {
  let result: ReturnType<typeof decodeFrame> | undefined;
  assert.doesNotThrow(() => {
    result = decodeFrame(bytes, frameBytesMax);
  });
  assert.ok(result);
  return result;
}

function errorCode(bytes: Uint8Array, frameBytesMax = FRAME_BYTES_MAX): string {
  const result = decodeNeverThrows(bytes, frameBytesMax);
  assert.equal(result.ok, false, "hostile input must not decode");
  return result.ok ? "" : result.error.code;
}

/** A header written by hand, to build frames encodeFrame refuses to produce. */
function rawFrame(kind: number, requestId: number, channel: string, payload: number[] = []): Uint8Array {
  const channelBytes = Buffer.from(channel, "latin1");
  const bytes = Buffer.alloc(FRAME_HEADER_BYTES + channelBytes.length + payload.length);
  bytes.writeUInt8(kind, 0);
  bytes.writeUInt32BE(requestId, 1);
  bytes.writeUInt8(channelBytes.length, 5);
  channelBytes.copy(bytes, FRAME_HEADER_BYTES);
  Buffer.from(payload).copy(bytes, FRAME_HEADER_BYTES + channelBytes.length);
  return bytes;
}

describe("frame: round trip", () => {
  it("frame: round trip: every kind decodes to what was encoded", () => {
    for (const frame of samples) {
      const result = decodeNeverThrows(encodeFrame(frame));
      assert.ok(result.ok, `kind ${frame.kind} decodes`);
      assert.equal(result.frame.kind, frame.kind);
      assert.equal(result.frame.requestId, frame.requestId);
      assert.equal(result.frame.channel, frame.channel);
      assert.deepEqual([...result.frame.payload], [...frame.payload]);
    }
  });

  it("frame: round trip: encodeFrameFields writes what encodeFrame writes; a plain Uint8Array decodes too", () => {
    for (const frame of samples) {
      const bytes = encodeFrameFields(frame.kind, frame.requestId, frame.channel, frame.payload);
      assert.deepEqual(bytes, encodeFrame(frame));
      const result = decodeNeverThrows(new Uint8Array(bytes));
      assert.ok(result.ok);
      assert.equal(result.frame.channel, frame.channel);
    }
    assert.throws(() => encodeFrameFields(FrameKind.Message, 0, "bad channel", new Uint8Array()), RangeError);
  });

  it("frame: round trip: the payload is a view into the received bytes, not a copy", () => {
    const bytes = encodeFrame({
      kind: FrameKind.Message,
      requestId: 0,
      channel: "c",
      payload: new Uint8Array(64),
    });
    const result = decodeFrame(bytes, FRAME_BYTES_MAX);
    assert.ok(result.ok);
    assert.equal(result.frame.payload.buffer, bytes.buffer);
  });

  it("frame: encode: malformed frames are bugs and throw RangeError", () => {
    const bad: Frame[] = [
      { kind: FrameKind.Request, requestId: 0, channel: "c", payload: new Uint8Array() },
      { kind: FrameKind.Message, requestId: 3, channel: "c", payload: new Uint8Array() },
      { kind: FrameKind.Message, requestId: 0, channel: "", payload: new Uint8Array() },
      { kind: FrameKind.Response, requestId: 1, channel: "c", payload: new Uint8Array() },
      { kind: FrameKind.Message, requestId: 0, channel: "é", payload: new Uint8Array() },
    ];
    for (const frame of bad) assert.throws(() => encodeFrame(frame), RangeError);
  });
});

describe("frame: hostile input", () => {
  it("frame: hostile: random bytes over 2000 seeds never throw", () => {
    const rng = new Prng("frame-fuzz");
    let decoded = 0;
    for (let seed = 0; seed < 2000; seed++) {
      const bytes = new Uint8Array(rng.intBetween(0, 96));
      for (let i = 0; i < bytes.length; i++) bytes[i] = rng.intBetween(0, 255);
      // Bias some inputs towards valid kinds so the deeper checks run too.
      if (bytes.length > 0 && rng.chance(0.5)) bytes[0] = rng.pick(Object.values(FrameKind));
      if (bytes.length > 5 && rng.chance(0.5)) bytes[5] = rng.intBetween(0, 8);
      const result = decodeNeverThrows(bytes);
      if (result.ok) decoded += 1;
      else assert.equal(typeof result.error.message, "string");
    }
    assert.ok(decoded < 2000, "most random inputs are refused");
  });

  it("frame: hostile: every truncation of a valid frame is refused or a shorter valid frame", () => {
    for (const frame of samples) {
      const bytes = encodeFrame(frame);
      const channelEnd = FRAME_HEADER_BYTES + frame.channel.length;
      for (let length = 0; length < bytes.length; length++) {
        const result = decodeNeverThrows(bytes.subarray(0, length));
        // Cutting into the payload still leaves a well-formed frame (the payload is the rest).
        if (length >= channelEnd) assert.ok(result.ok);
        else assert.equal(result.ok ? "" : result.error.code, "truncated");
      }
    }
  });

  it("frame: hostile: oversize frames are refused", () => {
    const bytes = encodeFrame({
      kind: FrameKind.Message,
      requestId: 0,
      channel: "c",
      payload: new Uint8Array(100),
    });
    assert.equal(errorCode(bytes, 50), "oversize");
    assert.ok(decodeNeverThrows(bytes, bytes.length).ok, "exactly frameBytesMax is allowed");
  });

  it("frame: hostile: unknown kinds are refused", () => {
    for (const kind of [0, 5, 15, 20, 255]) assert.equal(errorCode(rawFrame(kind, 0, "")), "unknown-kind");
  });

  it("frame: hostile: bad channel names are refused", () => {
    const bad = [
      "",
      " ",
      "a b",
      "-lead",
      "semi;colon",
      "new\nline",
      "\u00e9t\u00e9",
      "x".repeat(CHANNEL_BYTES_MAX + 1),
    ];
    for (const channel of bad) {
      assert.equal(isValidChannel(channel), false, JSON.stringify(channel));
      assert.equal(
        errorCode(rawFrame(FrameKind.Message, 0, channel)),
        "bad-channel",
        JSON.stringify(channel),
      );
    }
    const nul = rawFrame(FrameKind.Request, 1, "ab\u0000");
    assert.equal(errorCode(nul), "bad-channel");
  });

  it("frame: hostile: request ids and channels must match the kind", () => {
    assert.equal(errorCode(rawFrame(FrameKind.Request, 0, "c")), "bad-request-id");
    assert.equal(errorCode(rawFrame(FrameKind.Response, 0, "")), "bad-request-id");
    assert.equal(errorCode(rawFrame(FrameKind.Message, 9, "c")), "bad-request-id");
    assert.equal(errorCode(rawFrame(FrameKind.Hello, 1, "")), "bad-request-id");
    assert.equal(errorCode(rawFrame(FrameKind.Hello, 0, "c")), "unexpected-channel");
    assert.equal(errorCode(rawFrame(FrameKind.ResponseError, 4, "c")), "unexpected-channel");
  });
});
