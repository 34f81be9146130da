// The cluster's binary messages (election, health): every message round-trips; every other byte string is a
// reason, never an exception, and whatever is accepted re-encodes to the same bytes.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  decodeHealthMessage,
  encodeHealthMessage,
  type HealthMessage,
} from "../../../src/cluster/health_wire.ts";
import {
  decodeElectionMessage,
  encodeElectionMessage,
  encodeVouchedPeers,
} from "../../../src/cluster/wire.ts";
import type { ElectionMessage } from "../../../src/core/election_types.ts";
import { sortedMembership } from "../../../src/core/membership.ts";
import { Prng } from "../../../src/core/prng.ts";

const membership = { version: 3, term: 2, hash: "0123456789abcdef" };
const config = sortedMembership(3, [
  { id: "n1", address: "127.0.0.1:7001", role: "member", priority: 2, voting: true, autoPromote: false },
  { id: "n2", address: "[::1]:7002", role: "witness", priority: 0, voting: true, autoPromote: false },
  { id: "n3", address: "", role: "member", priority: 1.5, voting: false, autoPromote: true },
]);

const electionSamples: ElectionMessage[] = [
  { type: "pre-vote", term: 3, membership },
  { type: "pre-vote-response", term: 3, granted: true, membership },
  {
    type: "pre-vote-response",
    term: 3,
    granted: false,
    membership: { version: 0, term: 0, hash: "0".repeat(16) },
  },
  { type: "vote", term: 4, transfer: false, membership },
  { type: "vote", term: 4, transfer: true, membership },
  { type: "vote-response", term: 4, granted: false, membership },
  { type: "vote-response", term: 0, granted: true, membership },
  { type: "vote-response", term: 5, granted: true, membership, leaderHeardMsAgo: 650, grantTailMs: 1550 },
  { type: "vote-response", term: 5, granted: true, membership, leaderHeardMsAgo: 0 },
  { type: "vote-response", term: 5, granted: true, membership, grantTailMs: 0 },
  { type: "heartbeat", term: 4, seq: 17, membership, committed: 2 },
  { type: "heartbeat", term: 4, seq: 18, membership, committed: 3, config },
  { type: "heartbeat", term: 4, seq: 19, membership, committed: 3, grantTailMs: 1550 },
  { type: "heartbeat", term: 4, seq: 20, membership, committed: 3, config, grantTailMs: 0 },
  {
    type: "heartbeat-response",
    term: Number.MAX_SAFE_INTEGER,
    seq: Number.MAX_SAFE_INTEGER,
    membership: { version: Number.MAX_SAFE_INTEGER, term: 7, hash: "ffffffffffffffff" },
  },
  { type: "timeout-now", term: 4 },
];

const healthSamples: HealthMessage[] = [
  { type: "ping", seq: 7, sentAtMs: 12.5 },
  { type: "pong", seq: 0, sentAtMs: 0 },
  { type: "pong", seq: Number.MAX_SAFE_INTEGER, sentAtMs: 123_456.789 },
];

/** A payload of `type` followed by the float64s given (big-endian), then `tail` bytes. */
function raw(type: number, floats: number[], tail: number[] = []): Uint8Array {
  const bytes = Buffer.alloc(1 + 8 * floats.length + tail.length);
  bytes[0] = type;
  floats.forEach((value, i) => {
    bytes.writeDoubleBE(value, 1 + 8 * i);
  });
  Buffer.from(tail).copy(bytes, 1 + 8 * floats.length);
  return bytes;
}

const summaryBytes = [...Buffer.alloc(24)];
/** The membership summary in raw()'s heartbeats: version 1, term 1, a zero hash. */
const decodedSummary = { version: 1, term: 1, hash: "0".repeat(16) };

/** A heartbeat whose membership bytes are `value` as JSON, and whose vouch bytes are `vouches`. */
function heartbeatWith(value: unknown, vouches = ""): Uint8Array {
  const json = Buffer.from(JSON.stringify(value));
  const length = Buffer.alloc(4);
  length.writeUInt32BE(json.byteLength);
  return heartbeatTail([...length, ...json, ...vouchField(vouches)]);
}

/** A heartbeat's fixed part followed by `tail` (from its u32 membership length on). */
function heartbeatTail(tail: number[]): Uint8Array {
  return raw(5, [1, 1, 1, 1, 0, 1], tail);
}

function vouchField(vouches: string): number[] {
  const bytes = Buffer.from(vouches, "latin1");
  const length = Buffer.alloc(2);
  length.writeUInt16BE(bytes.byteLength);
  return [...length, ...bytes];
}

test("cluster wire: every election message round-trips", () => {
  for (const message of electionSamples) {
    assert.deepEqual(decodeElectionMessage(encodeElectionMessage(message)), {
      ok: true,
      message,
      vouchedPeers: [],
    });
  }
});

test("cluster wire: a heartbeat carries the peers its sender vouches for; other types carry none", () => {
  const vouches = encodeVouchedPeers(["n2", "n3.b", "edge-7"]);
  for (const message of electionSamples) {
    const bytes = encodeElectionMessage(message, vouches);
    const expected = message.type === "heartbeat" ? ["n2", "n3.b", "edge-7"] : [];
    assert.deepEqual(decodeElectionMessage(bytes), { ok: true, message, vouchedPeers: expected });
    if (message.type !== "heartbeat") assert.deepEqual(bytes, encodeElectionMessage(message));
  }
  assert.deepEqual(decodeElectionMessage(heartbeatTail([0, 0, 0, 0, ...vouchField("n1")])), {
    ok: true,
    message: { type: "heartbeat", term: 1, seq: 1, membership: decodedSummary, committed: 1 },
    vouchedPeers: ["n1"],
  });
});

test("cluster wire: a vote's contacts and a heartbeat's tail are optional (older peers send neither)", () => {
  const short = raw(4, [3], [1, ...summaryBytes]);
  assert.deepEqual(decodeElectionMessage(short), {
    ok: true,
    message: {
      type: "vote-response",
      term: 3,
      granted: true,
      membership: { ...decodedSummary, version: 0, term: 0 },
    },
    vouchedPeers: [],
  });
  const tail = Buffer.alloc(8);
  tail.writeDoubleBE(2040);
  const vouched = encodeVouchedPeers(["n2"]);
  const heartbeat: ElectionMessage = { type: "heartbeat", term: 4, seq: 1, membership, committed: 1 };
  const withTail = encodeElectionMessage({ ...heartbeat, grantTailMs: 2040 }, vouched);
  assert.deepEqual(Buffer.from(withTail), Buffer.concat([encodeElectionMessage(heartbeat, vouched), tail]));
  assert.deepEqual(decodeElectionMessage(withTail), {
    ok: true,
    message: { ...heartbeat, grantTailMs: 2040 },
    vouchedPeers: ["n2"],
  });
  // The ticks a core puts in its vote are its shell's business (ElectionRunner sends them as ms).
  const ticks: ElectionMessage = {
    type: "vote-response",
    term: 1,
    granted: true,
    membership,
    leaderHeardTicksAgo: 7,
  };
  assert.equal(encodeElectionMessage(ticks).byteLength, 34);
});

test("cluster wire: a plain Uint8Array decodes like a Buffer", () => {
  const message: ElectionMessage = { type: "heartbeat", term: 9, seq: 2, membership, committed: 1, config };
  const copy = new Uint8Array(encodeElectionMessage(message));
  assert.deepEqual(decodeElectionMessage(copy), { ok: true, message, vouchedPeers: [] });
  const ping: HealthMessage = { type: "ping", seq: 1, sentAtMs: 2.5 };
  assert.deepEqual(decodeHealthMessage(new Uint8Array(encodeHealthMessage(ping))), {
    ok: true,
    message: ping,
  });
});

test("cluster wire: hostile election payloads are reasons, never exceptions", () => {
  const text = (s: string) => new TextEncoder().encode(s);
  const hostile = [
    new Uint8Array(),
    new Uint8Array([0xff, 0xfe, 0x00]),
    text('{"type":"vote","term":1,"transfer":false}'), // the old JSON wire
    raw(0, [1]), // unknown type
    raw(8, [1]),
    raw(1, [-1]), // negative term
    raw(1, [-0]),
    raw(1, [1.5]), // fractional term
    raw(1, [Number.NaN]),
    raw(1, [Number.POSITIVE_INFINITY]),
    raw(1, [2 ** 53]), // past the safe integers
    raw(1, [1]), // pre-vote without its membership summary
    raw(1, [1, 1, 1, 0], [0]), // one byte too many
    raw(1, [1, -1, 1, 0]), // negative membership version
    raw(1, [1, 1, 0.5, 0]), // fractional membership term
    raw(3, [1]), // vote without its flag
    raw(3, [1], [2, ...summaryBytes]), // a flag that is neither 0 nor 1
    raw(2, [1], [255, ...summaryBytes]),
    raw(5, [1]), // heartbeat without its seq
    raw(5, [1, -1, 1, 1, 0, 1], [0, 0, 0, 0]),
    raw(6, [1, 0.5, 1, 1, 0]),
    heartbeatTail([0, 0, 0, 1, 0, 0]), // announces one membership byte, carries none
    heartbeatTail([0, 0, 0, 2, 0x7b, 0x7d, 0, 0]), // {} is not a membership
    heartbeatTail([0, 0, 0, 2, 0x7b, 0, 0]), // not JSON
    heartbeatTail([0, 0, 0, 0]), // no vouch field
    heartbeatTail([0, 0, 0, 0, 0, 3, 0x6e, 0x31]), // announces three vouch bytes, carries two
    heartbeatTail([0, 0, 0, 0, 0, 0, 0]), // a byte after the vouch field
    heartbeatTail([0, 0, 0, 0, 0, 0, ...Buffer.alloc(7)]), // a tail of 7 bytes
    heartbeatTail([0, 0, 0, 0, 0, 0, 0xbf, 0xf0, 0, 0, 0, 0, 0, 0]), // a tail of -1
    heartbeatTail([0, 0, 0, 0, 0, 0, ...Buffer.alloc(16)]), // two tails
    raw(4, [1], [1, ...summaryBytes, 0, ...Buffer.alloc(16)]), // contacts announced, none present
    raw(4, [1], [1, ...summaryBytes, 4, ...Buffer.alloc(16)]), // an unknown contact bit
    raw(4, [1], [1, ...summaryBytes, 1, ...Buffer.alloc(8), 0x3f, 0xf0, 0, 0, 0, 0, 0, 0]), // absent tail not 0
    raw(4, [1], [1, ...summaryBytes, 3, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0, ...Buffer.alloc(8)]), // 1.5 ms
    raw(4, [1], [1, ...summaryBytes, 3, ...Buffer.alloc(15)]), // one byte short
    raw(2, [1], [1, ...summaryBytes, 3, ...Buffer.alloc(16)]), // contacts on a pre-vote answer
    heartbeatWith(config, "n1,,n2"), // an empty id
    heartbeatWith(config, "n1,"),
    heartbeatWith(config, "N1"), // not a node id
    heartbeatWith(config, "n\u00e9"),
    heartbeatWith({ ...config, nodes: [...config.nodes].reverse() }), // not sorted by id
    heartbeatWith({ version: 1, nodes: [] }), // nobody may lead
    heartbeatWith({ ...config, extra: true }),
    new Uint8Array(10_000).fill(5),
  ];
  for (const payload of hostile) {
    const decoded = decodeElectionMessage(payload);
    assert.equal(decoded.ok, false, Buffer.from(payload).toString("hex"));
    if (!decoded.ok) assert.match(decoded.reason, /^invalid election message: /);
  }
});

test("cluster wire: hostile health payloads are reasons, never exceptions", () => {
  const hostile = [
    new Uint8Array(),
    new TextEncoder().encode('{"type":"ping","seq":1,"sentAtMs":1}'), // the old JSON wire
    raw(0, [1, 1]),
    raw(3, [1, 1]),
    raw(1, [1]), // truncated
    raw(1, [1, 1], [0]), // one byte too many
    raw(1, [-1, 1]),
    raw(1, [1.5, 1]),
    raw(1, [Number.NaN, 1]),
    raw(2, [1, -1]),
    raw(2, [1, -0]),
    raw(2, [1, Number.NaN]),
    raw(2, [1, Number.POSITIVE_INFINITY]),
    raw(2, [1, 2 ** 53]),
  ];
  for (const payload of hostile) {
    const decoded = decodeHealthMessage(payload);
    assert.equal(decoded.ok, false, Buffer.from(payload).toString("hex"));
    if (!decoded.ok) assert.match(decoded.reason, /^invalid health message: /);
  }
  for (const message of healthSamples) {
    assert.deepEqual(decodeHealthMessage(encodeHealthMessage(message)), { ok: true, message });
  }
});

test("cluster wire: encoders refuse values the decoders would refuse", () => {
  assert.throws(() => encodeElectionMessage({ type: "pre-vote", term: -1, membership }), RangeError);
  assert.throws(
    () => encodeElectionMessage({ type: "heartbeat", term: 1, seq: 0.5, membership, committed: 1 }),
    RangeError,
  );
  const badHash = { ...membership, hash: "xyz" };
  assert.throws(() => encodeElectionMessage({ type: "pre-vote", term: 1, membership: badHash }), RangeError);
  assert.throws(() => encodeHealthMessage({ type: "ping", seq: 1, sentAtMs: Number.NaN }), RangeError);
  // -0 is written as 0, which decodes.
  assert.deepEqual(decodeHealthMessage(encodeHealthMessage({ type: "ping", seq: 0, sentAtMs: -0 })), {
    ok: true,
    message: { type: "ping", seq: 0, sentAtMs: 0 },
  });
});

test("cluster wire: fuzzed bytes never throw, and what is accepted re-encodes to the same bytes", () => {
  const rng = new Prng("cluster-wire-fuzz");
  let acceptedElection = 0;
  let acceptedHealth = 0;
  for (let i = 0; i < 30_000; i++) {
    // Mostly the right lengths and type codes, so the field checks are what gets exercised.
    const length =
      rng.intBetween(0, 3) === 0
        ? rng.intBetween(0, 60)
        : ([9, 17, 33, 34, 41, 51, 55, 63][rng.intBetween(0, 7)] ?? 9);
    const bytes = Buffer.from(Array.from({ length }, () => rng.intBetween(0, 255)));
    if (length > 0 && rng.intBetween(0, 1) === 0) bytes[0] = rng.intBetween(0, 8);
    // Float64s with small exponents are often integers: make some of them so.
    if (length >= 9 && rng.intBetween(0, 1) === 0) bytes.writeDoubleBE(rng.intBetween(0, 1000), 1);
    if (length >= 17 && rng.intBetween(0, 1) === 0) bytes.writeDoubleBE(rng.intBetween(0, 1000) / 4, 9);
    if (length === 34 && rng.intBetween(0, 1) === 0) bytes[9] = rng.intBetween(0, 1);
    // Membership summaries and a heartbeat's committed version and (empty) list, often well-formed.
    for (const at of [9, 10, 17, 25, 41]) {
      if (length >= at + 16 && rng.intBetween(0, 1) === 0) {
        bytes.writeDoubleBE(rng.intBetween(0, 9), at);
        bytes.writeDoubleBE(rng.intBetween(0, 9), at + 8);
      }
    }
    if ((length === 55 || length === 63) && rng.intBetween(0, 1) === 0) bytes.writeUIntBE(0, 49, 6);
    if (length === 63 && rng.intBetween(0, 1) === 0) bytes.writeDoubleBE(rng.intBetween(0, 3000), 55);
    if (length === 51 && rng.intBetween(0, 1) === 0) {
      bytes[34] = rng.intBetween(0, 3);
      bytes.writeDoubleBE((bytes[34] & 1) === 0 ? 0 : rng.intBetween(0, 3000), 35);
      bytes.writeDoubleBE((bytes[34] & 2) === 0 ? 0 : rng.intBetween(0, 3000), 43);
    }
    const election = decodeElectionMessage(bytes);
    if (election.ok) {
      acceptedElection++;
      assert.deepEqual(Buffer.from(encodeElectionMessage(election.message)), bytes);
    }
    const health = decodeHealthMessage(bytes);
    if (health.ok) {
      acceptedHealth++;
      assert.deepEqual(Buffer.from(encodeHealthMessage(health.message)), bytes);
    }
  }
  // The fuzzer reached the accepting paths, not only the refusals.
  assert.ok(acceptedElection > 100, `${acceptedElection} election payloads accepted`);
  assert.ok(acceptedHealth > 50, `${acceptedHealth} health payloads accepted`);
});
