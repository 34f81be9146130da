// Fuzz of the mesh hello as the link meets it: bytes decoded as a frame, then judged by the acceptor
// (evaluateHello) or the dialer (evaluateHelloAnswer). Inputs are random mutations of a valid hello or
// hello-ok (fields changed, removed, added, retyped; JSON cut or corrupted) and random bytes. Whatever
// arrives: no throw, a refusal carries a known close code and a reason that fits a WebSocket close frame,
// and nothing is accepted unless it names the authenticated identity (or the dialed peer), an admitted
// peer, our cluster and a common version, with a well-formed membership summary or none. Seeded: a failure
// prints the seed and how to replay it.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Prng } from "../../../src/core/prng.ts";
import { decodeFrame, encodeFrame, type Frame, FrameKind } from "../../../src/mesh/frame.ts";
import {
  CloseCode,
  closeReasonBytesMax,
  evaluateHello,
  evaluateHelloAnswer,
  type HandshakeContext,
  type HandshakeRefusal,
  helloFrame,
  helloOkFrame,
  PROTOCOL_VERSION_MAX,
  PROTOCOL_VERSION_MIN,
} from "../../../src/mesh/handshake.ts";
import { fuzzCase, fuzzRun } from "../../support/fuzz.ts";

const testFile = "test/unit/mesh/handshake_fuzz.test.ts";
const frameBytesMax = 64 * 1024;
const closeCodes = new Set<number>(Object.values(CloseCode));

const peerIds = new Set(["n2", "n3"]);
const self: HandshakeContext = {
  selfId: "n1",
  clusterName: "prod",
  bootId: "b1",
  admits: (id) => peerIds.has(id),
  membership: () => ({ version: 7, hash: "00c0ffee12345678" }),
};
const peer = (id: string): HandshakeContext => ({ ...self, selfId: id, bootId: `b-${id}` });

const identities = ["n2", "n3", "n1", "n4", "N2", "n2 ", "", "ops", "n2\u0000", "ｎ2"];
const strings = [
  "n2",
  "n3",
  "n1",
  "prod",
  "Prod",
  "prod\u0000",
  "",
  " ",
  "x".repeat(65),
  "y".repeat(300),
  "\u202en2",
  "n2\n",
  "__proto__",
  "constructor",
  "😀",
  // Within the schemas' 200 characters, far over a close frame's 123 bytes.
  "日".repeat(200),
  "😀".repeat(100),
  // Membership hashes: valid, upper case, one character too long.
  "00c0ffee",
  "ABCDEF",
  "f".repeat(65),
];
const numbers = [0, 1, 2, -1, 1.5, 65_535, 65_536, Number.MAX_SAFE_INTEGER, 1e308, -0];
const keys = [
  "protocolVersionMin",
  "protocolVersionMax",
  "nodeId",
  "clusterName",
  "bootId",
  "protocolVersion",
  "reason",
  "membership",
  "version",
  "hash",
  "鍵".repeat(60),
];

function randomJsonValue(rng: Prng, depth = 0): unknown {
  return rng.pick<() => unknown>([
    () => rng.pick(strings),
    () => rng.pick(numbers),
    () => rng.pick([true, false, null]),
    () => (depth > 2 ? [] : [randomJsonValue(rng, depth + 1)]),
    () => (depth > 2 ? {} : { [rng.pick(keys)]: randomJsonValue(rng, depth + 1) }),
  ])();
}

/** A valid body with a few random mutations. */
function mutate(rng: Prng, valid: Record<string, unknown>): Record<string, unknown> {
  const body: Record<string, unknown> = { ...valid };
  const count = rng.intBetween(0, 3);
  for (let i = 0; i < count; i++) {
    const key = rng.chance(0.85) ? rng.pick(Object.keys(valid)) : rng.pick([...keys, "extra", "__proto__"]);
    const roll = rng.next();
    if (roll < 0.2) delete body[key];
    else if (roll < 0.5) body[key] = rng.pick(strings);
    else if (roll < 0.75) body[key] = rng.pick(numbers);
    else body[key] = randomJsonValue(rng);
  }
  return body;
}

function randomBytes(rng: Prng, max: number): Uint8Array {
  const bytes = new Uint8Array(rng.intBetween(0, max));
  for (let i = 0; i < bytes.length; i++) bytes[i] = rng.intBetween(0, 255);
  return bytes;
}

/** The payload as sent: JSON of the body, sometimes cut, corrupted, or replaced. */
function payloadOf(rng: Prng, body: unknown): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(body));
  const roll = rng.next();
  if (roll < 0.75) return json;
  if (roll < 0.83) return json.subarray(0, rng.intBetween(0, json.length));
  if (roll < 0.9) {
    const corrupted = Uint8Array.from(json);
    if (corrupted.length > 0) corrupted[rng.intBetween(0, corrupted.length - 1)] = rng.intBetween(0, 255);
    return corrupted;
  }
  if (roll < 0.95) return new TextEncoder().encode(`${"[".repeat(rng.intBetween(1, 5000))}`);
  return randomBytes(rng, 64);
}

/** Bytes on the wire: a frame around the payload (kind and fields mostly right), or raw random bytes. */
function wireBytes(rng: Prng, kind: FrameKind, payload: Uint8Array): Uint8Array {
  if (rng.chance(0.1)) return randomBytes(rng, 80);
  const frame: Frame = {
    kind: rng.chance(0.85) ? kind : rng.pick(Object.values(FrameKind)),
    requestId: rng.chance(0.9) ? 0 : rng.intBetween(1, 0xffff_ffff),
    channel: rng.chance(0.9) ? "" : rng.pick(["store", "a.b", "x".repeat(64)]),
    payload,
  };
  let bytes: Uint8Array;
  try {
    bytes = encodeFrame(frame);
  } catch {
    // A frame our encoder refuses (e.g. a request id on a control frame): send the raw payload instead.
    return payload;
  }
  if (rng.chance(0.1)) bytes[rng.intBetween(0, Math.min(5, bytes.length - 1))] = rng.intBetween(0, 255);
  return bytes;
}

function assertRefusal(refusal: HandshakeRefusal): void {
  assert.ok(closeCodes.has(refusal.code), `unknown close code ${refusal.code}`);
  assert.equal(typeof refusal.reason, "string");
  assert.ok(refusal.reason.length > 0, "a refusal says why");
  const bytes = Buffer.byteLength(refusal.reason);
  assert.ok(bytes <= closeReasonBytesMax, `reason of ${bytes} bytes does not fit a close frame`);
}

/** An accepted summary is absent or exactly the two checked fields. */
function assertMembership(membership: unknown): void {
  if (membership === undefined) return;
  const { version, hash, ...rest } = membership as { version: unknown; hash: unknown };
  assert.deepEqual(rest, {});
  assert.ok(Number.isSafeInteger(version) && (version as number) >= 0, `version ${String(version)}`);
  assert.match(String(hash), /^[0-9a-f]{1,64}$/);
}

function versionsOverlap(min: unknown, max: unknown): boolean {
  return (
    typeof min === "number" &&
    typeof max === "number" &&
    Math.max(min, PROTOCOL_VERSION_MIN) <= Math.min(max, PROTOCOL_VERSION_MAX)
  );
}

test("mesh hello fuzz: the acceptor refuses with a close code, never throws, never accepts a wrong identity", async () => {
  const run = fuzzRun("mesh-hello-fuzz-1", 20_000);
  let accepted = 0;
  const codes = new Map<number, number>();
  for (let index = 0; index < run.count; index++) {
    const identity = run.rng.pick(identities);
    const sender = run.rng.chance(0.8) ? identity || "n2" : run.rng.pick(["n2", "n3", "n4"]);
    const valid = JSON.parse(new TextDecoder().decode(helloFrame(peer(sender)).payload)) as Record<
      string,
      unknown
    >;
    const body = run.rng.chance(0.3) ? valid : mutate(run.rng, valid);
    const bytes = wireBytes(run.rng, FrameKind.Hello, payloadOf(run.rng, body));
    await fuzzCase(
      run,
      testFile,
      index,
      () => JSON.stringify({ identity, bytes: Buffer.from(bytes).toString("hex").slice(0, 400) }),
      () => {
        const decoded = decodeFrame(bytes, frameBytesMax);
        if (!decoded.ok) return;
        const verdict = evaluateHello(decoded.frame, identity, self);
        if (!verdict.ok) {
          assertRefusal(verdict.refusal);
          codes.set(verdict.refusal.code, (codes.get(verdict.refusal.code) ?? 0) + 1);
          return;
        }
        accepted++;
        assert.equal(decoded.frame.kind, FrameKind.Hello);
        assert.equal(
          verdict.hello.nodeId,
          identity,
          "accepted a hello naming another node than its identity",
        );
        assert.ok(peerIds.has(identity), "accepted a node that is not a configured peer");
        assertMembership(verdict.hello.membership);
        assert.equal(verdict.hello.clusterName, self.clusterName);
        assert.ok(versionsOverlap(verdict.hello.protocolVersionMin, verdict.hello.protocolVersionMax));
        assert.equal(verdict.reply.nodeId, self.selfId);
      },
    );
  }
  // Both outcomes, and the identity checks in particular, were exercised.
  assert.ok(accepted > run.count / 50, `accepted ${accepted}`);
  for (const code of [CloseCode.ProtocolError, CloseCode.IdentityMismatch, CloseCode.UnknownNode]) {
    assert.ok((codes.get(code) ?? 0) > 0, `close code ${code} among ${JSON.stringify([...codes])}`);
  }
});

test("mesh hello fuzz: the dialer accepts an answer only from the peer it dialed, in its cluster", async () => {
  const run = fuzzRun("mesh-hello-answer-fuzz-1", 20_000);
  let accepted = 0;
  for (let index = 0; index < run.count; index++) {
    const dialed = run.rng.pick(["n2", "n3"]);
    const answerer = run.rng.chance(0.8) ? dialed : run.rng.pick(["n2", "n3", "n4", "n1"]);
    const evaluated = evaluateHello(helloFrame(self), "n1", peer(answerer));
    const reply = evaluated.ok
      ? evaluated.reply
      : { protocolVersion: 1, nodeId: answerer, clusterName: "prod", bootId: "b" };
    const valid = JSON.parse(new TextDecoder().decode(helloOkFrame(reply).payload)) as Record<
      string,
      unknown
    >;
    const kind = run.rng.chance(0.9) ? FrameKind.HelloOk : FrameKind.HelloRefused;
    const body = run.rng.chance(0.3)
      ? valid
      : mutate(run.rng, kind === FrameKind.HelloOk ? valid : { reason: "x" });
    const bytes = wireBytes(run.rng, kind, payloadOf(run.rng, body));
    await fuzzCase(
      run,
      testFile,
      index,
      () => JSON.stringify({ dialed, bytes: Buffer.from(bytes).toString("hex").slice(0, 400) }),
      () => {
        const decoded = decodeFrame(bytes, frameBytesMax);
        if (!decoded.ok) return;
        const verdict = evaluateHelloAnswer(decoded.frame, dialed, self);
        if (!verdict.ok) return assertRefusal(verdict.refusal);
        accepted++;
        assert.equal(decoded.frame.kind, FrameKind.HelloOk);
        assert.equal(
          verdict.helloOk.nodeId,
          dialed,
          "accepted an answer from another node than the one dialed",
        );
        assert.equal(verdict.helloOk.clusterName, self.clusterName);
        assertMembership(verdict.helloOk.membership);
        assert.ok(
          verdict.helloOk.protocolVersion >= PROTOCOL_VERSION_MIN &&
            verdict.helloOk.protocolVersion <= PROTOCOL_VERSION_MAX,
        );
      },
    );
  }
  assert.ok(accepted > run.count / 50, `accepted ${accepted}`);
});
