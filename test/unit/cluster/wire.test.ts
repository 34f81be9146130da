import assert from "node:assert/strict";
import { test } from "node:test";
import { decodeElectionMessage, encodeElectionMessage } from "../../../src/cluster/wire.ts";
import type { ElectionMessage } from "../../../src/core/election_types.ts";
import { Prng } from "../../../src/core/prng.ts";

const samples: ElectionMessage[] = [
  { type: "pre-vote", term: 3 },
  { type: "pre-vote-response", term: 3, granted: true },
  { type: "vote", term: 4, transfer: false },
  { type: "vote-response", term: 4, granted: false },
  { type: "heartbeat", term: 4, seq: 17 },
  { type: "heartbeat-response", term: 4, seq: 17 },
  { type: "timeout-now", term: 4 },
];

test("cluster wire: every election message round-trips", () => {
  for (const message of samples) {
    assert.deepEqual(decodeElectionMessage(encodeElectionMessage(message)), { ok: true, message });
  }
});

test("cluster wire: hostile payloads are reasons, never exceptions", () => {
  const text = (s: string) => new TextEncoder().encode(s);
  const hostile = [
    new Uint8Array([0xff, 0xfe, 0x00]),
    text("not json"),
    text('{"type":"vote","term":-1,"transfer":false}'),
    text('{"type":"vote","term":1}'),
    text('{"type":"vote","term":1,"transfer":false,"extra":1}'),
    text('{"type":"heartbeat","term":1.5,"seq":1}'),
    text('{"type":"unknown","term":1}'),
    text(`{"type":"pre-vote","term":1,"pad":"${"x".repeat(2048)}"}`),
    text("null"),
  ];
  const rng = new Prng("wire-fuzz");
  for (let i = 0; i < 500; i++) {
    hostile.push(Uint8Array.from({ length: rng.intBetween(0, 64) }, () => rng.intBetween(0, 255)));
  }
  for (const payload of hostile) {
    const decoded = decodeElectionMessage(payload);
    assert.equal(decoded.ok, false, new TextDecoder().decode(payload));
    if (!decoded.ok) assert.match(decoded.reason, /^invalid election message: /);
  }
});
