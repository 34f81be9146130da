// The hello exchange as pure verdicts: what the acceptor and the dialer accept, and why they refuse.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type Frame, FrameKind } from "../../../src/mesh/frame.ts";
import {
  CloseCode,
  evaluateHello,
  evaluateHelloAnswer,
  type HandshakeContext,
  helloFrame,
  helloOkFrame,
  helloRefusedFrame,
  PROTOCOL_VERSION_MAX,
} from "../../../src/mesh/handshake.ts";

/** A node whose peers are `peerIds`, announcing no membership unless told. */
function context(selfId: string, peerIds: string[], extra: Partial<HandshakeContext> = {}): HandshakeContext {
  return {
    selfId,
    clusterName: "prod",
    bootId: `b${selfId.slice(1)}`,
    admits: (id) => peerIds.includes(id),
    membership: () => undefined,
    ...extra,
  };
}
const n1 = context("n1", ["n2", "n3"]);
const n2 = context("n2", ["n1", "n3"]);
const v7 = { version: 7, hash: "00c0ffee12345678" };
const v6 = { version: 6, hash: "0123456789abcdef" };
const encoder = new TextEncoder();
const decoder = new TextDecoder();

function control(kind: FrameKind, body: unknown): Frame {
  return { kind, requestId: 0, channel: "", payload: encoder.encode(JSON.stringify(body)) };
}

function hello(overrides: Record<string, unknown>): Frame {
  const base = {
    protocolVersionMin: 1,
    protocolVersionMax: 1,
    nodeId: "n2",
    clusterName: "prod",
    bootId: "b2",
  };
  return control(FrameKind.Hello, { ...base, ...overrides });
}

function refusalCode(
  verdict: ReturnType<typeof evaluateHello> | ReturnType<typeof evaluateHelloAnswer>,
): number {
  assert.equal(verdict.ok, false);
  return verdict.ok ? 0 : verdict.refusal.code;
}

describe("handshake: acceptor", () => {
  it("handshake: acceptor: a matching hello is answered with the chosen version", () => {
    const verdict = evaluateHello(helloFrame(n2), "n2", n1);
    assert.ok(verdict.ok);
    assert.equal(verdict.hello.bootId, "b2");
    assert.deepEqual(verdict.reply, {
      protocolVersion: PROTOCOL_VERSION_MAX,
      nodeId: "n1",
      clusterName: "prod",
      bootId: "b1",
    });
  });

  it("handshake: acceptor: a newer peer speaking a range that includes ours gets our max", () => {
    const verdict = evaluateHello(hello({ protocolVersionMax: 9 }), "n2", n1);
    assert.ok(verdict.ok);
    assert.equal(verdict.reply.protocolVersion, PROTOCOL_VERSION_MAX);
  });

  it("handshake: acceptor: refusals carry the right close code", () => {
    const table: Array<[Frame, string, number]> = [
      [hello({ protocolVersionMin: 5, protocolVersionMax: 6 }), "n2", CloseCode.VersionMismatch],
      [hello({ clusterName: "staging" }), "n2", CloseCode.ClusterMismatch],
      [hello({ nodeId: "n3" }), "n2", CloseCode.IdentityMismatch],
      [hello({ nodeId: "n9" }), "n9", CloseCode.UnknownNode],
      [hello({ nodeId: "n1" }), "n1", CloseCode.UnknownNode],
      [hello({ membership: { version: -1, hash: "ab" } }), "n2", CloseCode.ProtocolError],
      [hello({ membership: { version: 1.5, hash: "ab" } }), "n2", CloseCode.ProtocolError],
      [hello({ membership: { version: 1, hash: "AB" } }), "n2", CloseCode.ProtocolError],
      [hello({ membership: { version: 1, hash: "" } }), "n2", CloseCode.ProtocolError],
      [hello({ membership: { version: 1, hash: "a".repeat(65) } }), "n2", CloseCode.ProtocolError],
      [hello({ membership: { version: 1, hash: "ab", term: 3 } }), "n2", CloseCode.ProtocolError],
      [hello({ membership: { version: 1 } }), "n2", CloseCode.ProtocolError],
      [hello({ extra: true }), "n2", CloseCode.ProtocolError],
      [hello({ nodeId: "" }), "", CloseCode.ProtocolError],
      [control(FrameKind.Hello, "hello"), "n2", CloseCode.ProtocolError],
      [
        { kind: FrameKind.Hello, requestId: 0, channel: "", payload: new Uint8Array([0xff, 0xfe]) },
        "n2",
        CloseCode.ProtocolError,
      ],
      [
        helloOkFrame({ protocolVersion: 1, nodeId: "n2", clusterName: "prod", bootId: "b" }),
        "n2",
        CloseCode.ProtocolError,
      ],
    ];
    for (const [frame, identity, code] of table)
      assert.equal(refusalCode(evaluateHello(frame, identity, n1)), code);
  });

  it("handshake: acceptor: admission is asked at each hello, so a removed node is refused the next time", () => {
    const members = new Set(["n2"]);
    const acceptor = context("n1", [], { admits: (id) => members.has(id), membership: () => v7 });
    assert.ok(evaluateHello(helloFrame(n2), "n2", acceptor).ok);
    members.delete("n2");
    const verdict = evaluateHello(helloFrame(n2), "n2", acceptor);
    assert.ok(!verdict.ok);
    assert.equal(verdict.refusal.code, CloseCode.UnknownNode);
    assert.equal(verdict.refusal.reason, "node n2 is not a member of membership v7");
  });

  it("handshake: acceptor: its own id is refused even if admitted", () => {
    const admitsAll = context("n1", [], { admits: () => true });
    const verdict = evaluateHello(helloFrame(context("n1", [])), "n1", admitsAll);
    assert.equal(refusalCode(verdict), CloseCode.UnknownNode);
  });
});

describe("handshake: membership summary", () => {
  it("handshake: membership: hello and hello-ok carry each side's summary, read at send time", () => {
    let dialerSummary = v6;
    const dialer = context("n2", ["n1"], { membership: () => dialerSummary });
    const acceptor = context("n1", ["n2"], { membership: () => v7 });
    dialerSummary = { version: 8, hash: "ab" };
    const accepted = evaluateHello(helloFrame(dialer), "n2", acceptor);
    assert.ok(accepted.ok);
    assert.deepEqual(accepted.hello.membership, { version: 8, hash: "ab" });
    assert.deepEqual(accepted.reply.membership, v7);
    const answered = evaluateHelloAnswer(helloOkFrame(accepted.reply), "n1", dialer);
    assert.ok(answered.ok);
    assert.deepEqual(answered.helloOk.membership, v7);
  });

  it("handshake: membership: a side without one leaves the field out, and the other accepts that", () => {
    const accepted = evaluateHello(helloFrame(n2), "n2", context("n1", ["n2"], { membership: () => v7 }));
    assert.ok(accepted.ok);
    assert.equal("membership" in accepted.hello, false);
    assert.equal("membership" in JSON.parse(decoder.decode(helloFrame(n2).payload)), false);
    const silent = evaluateHello(helloFrame(context("n2", [], { membership: () => v6 })), "n2", n1);
    assert.ok(silent.ok);
    assert.equal("membership" in silent.reply, false);
    assert.ok(evaluateHelloAnswer(helloOkFrame(silent.reply), "n1", n2).ok);
  });

  it("handshake: membership: version 0 is a valid summary (a joining node)", () => {
    const joining = context("n2", ["n1"], { membership: () => ({ version: 0, hash: "0".repeat(16) }) });
    const accepted = evaluateHello(helloFrame(joining), "n2", n1);
    assert.ok(accepted.ok);
    assert.equal(accepted.hello.membership?.version, 0);
  });
});

describe("handshake: dialer", () => {
  const answer = (overrides: Record<string, unknown>) =>
    control(FrameKind.HelloOk, {
      protocolVersion: 1,
      nodeId: "n1",
      clusterName: "prod",
      bootId: "b1",
      ...overrides,
    });

  it("handshake: dialer: hello-ok from the dialed node is accepted", () => {
    const accepted = evaluateHello(helloFrame(n2), "n2", n1);
    assert.ok(accepted.ok);
    const verdict = evaluateHelloAnswer(helloOkFrame(accepted.reply), "n1", n2);
    assert.ok(verdict.ok);
    assert.equal(verdict.helloOk.bootId, "b1");
  });

  it("handshake: dialer: refusals carry the right close code", () => {
    const table: Array<[Frame, number]> = [
      [answer({ nodeId: "n3" }), CloseCode.IdentityMismatch],
      [answer({ clusterName: "other" }), CloseCode.ClusterMismatch],
      [answer({ protocolVersion: 99 }), CloseCode.VersionMismatch],
      [answer({ bootId: 5 }), CloseCode.ProtocolError],
      [answer({ membership: { version: 1, hash: "xyz" } }), CloseCode.ProtocolError],
      [answer({ membership: "v7" }), CloseCode.ProtocolError],
      [helloRefusedFrame({ code: CloseCode.UnknownNode, reason: "who?" }), CloseCode.Refused],
      [helloFrame(n1), CloseCode.ProtocolError],
    ];
    for (const [frame, code] of table) assert.equal(refusalCode(evaluateHelloAnswer(frame, "n1", n2)), code);
  });

  it("handshake: dialer: a dial to an address with no id to expect takes any node, still checks the rest", () => {
    const verdict = evaluateHelloAnswer(answer({ nodeId: "n7" }), null, n2);
    assert.ok(verdict.ok);
    assert.equal(verdict.helloOk.nodeId, "n7");
    assert.equal(
      refusalCode(evaluateHelloAnswer(answer({ clusterName: "other" }), null, n2)),
      CloseCode.ClusterMismatch,
    );
    const refused = helloRefusedFrame({ code: CloseCode.UnknownNode, reason: "who?" });
    assert.equal(refusalCode(evaluateHelloAnswer(refused, null, n2)), CloseCode.Refused);
  });

  it("handshake: dialer: the acceptor's refusal reason is passed on", () => {
    const verdict = evaluateHelloAnswer(
      helloRefusedFrame({ code: CloseCode.UnknownNode, reason: "who?" }),
      "n1",
      n2,
    );
    assert.ok(!verdict.ok);
    assert.match(verdict.refusal.reason, /who\?/);
  });
});
