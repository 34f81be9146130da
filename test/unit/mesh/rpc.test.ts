// Pending requests: ids, answers, timeouts (mocked clock), the in-flight bound and failing everything at once.
import assert from "node:assert/strict";
import { describe, it, mock } from "node:test";
import {
  BackpressureError,
  PeerUnreachableError,
  RemoteError,
  TimeoutError,
} from "../../../src/mesh/errors.ts";
import { PendingRequests } from "../../../src/mesh/rpc.ts";

function table(inflightMax = 8) {
  const empties: number[] = [];
  const requests = new PendingRequests({
    peer: "n2",
    inflightMax,
    onEmpty: () => empties.push(requests.size),
  });
  return { requests, empties };
}

function open(requests: PendingRequests, timeoutMs = 1000) {
  const opened = requests.open("c", timeoutMs);
  assert.ok(opened.ok);
  return opened;
}

describe("rpc: pending requests", () => {
  it("rpc: answers resolve the matching request only", async () => {
    const { requests, empties } = table();
    const a = open(requests);
    const b = open(requests);
    assert.notEqual(a.requestId, b.requestId);
    assert.equal(requests.resolve(b.requestId, new Uint8Array([2])), true);
    assert.equal(requests.rejectRemote(a.requestId, "nope"), true);
    assert.deepEqual([...(await b.response)], [2]);
    await assert.rejects(a.response, (error) => error instanceof RemoteError && error.message === "nope");
    assert.equal(requests.resolve(a.requestId, new Uint8Array()), false, "a late answer is dropped");
    assert.deepEqual(empties, [0]);
  });

  it("rpc: a request without an answer times out and leaves the table", async () => {
    mock.timers.enable({ apis: ["setTimeout"] });
    try {
      const { requests, empties } = table();
      const opened = open(requests, 250);
      mock.timers.tick(249);
      assert.equal(requests.size, 1);
      mock.timers.tick(1);
      await assert.rejects(
        opened.response,
        (error) => error instanceof TimeoutError && error.timeoutMs === 250,
      );
      assert.equal(requests.size, 0);
      assert.deepEqual(empties, [0]);
    } finally {
      mock.timers.reset();
    }
  });

  it("rpc: past the in-flight bound open fails with BackpressureError", () => {
    const { requests } = table(2);
    open(requests).response.catch(() => {});
    open(requests).response.catch(() => {});
    const third = requests.open("c", 1000);
    assert.ok(!third.ok);
    assert.ok(third.error instanceof BackpressureError);
    requests.rejectAll(new PeerUnreachableError("n2", "test over"));
  });

  it("rpc: rejectAll fails every pending request with the given error", async () => {
    const { requests } = table();
    const all = Array.from({ length: 5 }, () => open(requests).response);
    requests.rejectAll(new PeerUnreachableError("n2", "link lost"));
    for (const response of all) await assert.rejects(response, PeerUnreachableError);
    assert.equal(requests.size, 0);
  });

  it("rpc: request ids wrap around and never reuse a pending id or 0", () => {
    const { requests } = table(4);
    const first = open(requests);
    first.response.catch(() => {});
    const ids = new Set<number>([first.requestId]);
    // Jump the counter to the end of the 32-bit space instead of opening four billion requests.
    (requests as unknown as { lastRequestId: number }).lastRequestId = 0xffff_fffe;
    for (let i = 0; i < 3; i++) {
      const next = open(requests);
      next.response.catch(() => {});
      assert.ok(next.requestId !== 0 && !ids.has(next.requestId), `id ${next.requestId} is fresh`);
      ids.add(next.requestId);
    }
    assert.deepEqual([...ids], [1, 0xffff_ffff, 2, 3]);
    requests.rejectAll(new PeerUnreachableError("n2", "test over"));
  });
});
