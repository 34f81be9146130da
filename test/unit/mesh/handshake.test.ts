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

const n1: HandshakeContext = {
  selfId: "n1",
  clusterName: "prod",
  bootId: "b1",
  peerIds: new Set(["n2", "n3"]),
};
const n2: HandshakeContext = {
  selfId: "n2",
  clusterName: "prod",
  bootId: "b2",
  peerIds: new Set(["n1", "n3"]),
};
const encoder = new TextEncoder();

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
      [helloRefusedFrame({ code: CloseCode.UnknownNode, reason: "who?" }), CloseCode.Refused],
      [helloFrame(n1), CloseCode.ProtocolError],
    ];
    for (const [frame, code] of table) assert.equal(refusalCode(evaluateHelloAnswer(frame, "n1", n2)), code);
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
