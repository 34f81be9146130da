import assert from "node:assert/strict";
import { test } from "node:test";
import {
  clockMarginDefault,
  compareFence,
  formatFence,
  type GrantAnswer,
  GrantLedger,
  holderDeadlineMs,
  inheritedBound,
} from "../../../src/core/grants.ts";
import { Prng } from "../../../src/core/prng.ts";

const leaseMs = 2000;
/** On the leader's clock: a grant answered at t lapses at t + this. */
const lapseMs = leaseMs * (1 + clockMarginDefault);

/** A ledger whose leader took over long enough ago that no earlier grant can be live. */
function settledLedger(term = 5): GrantLedger {
  return new GrantLedger({ term, leaderSinceMs: -10 * leaseMs, leaseMs });
}

function granted(answer: GrantAnswer) {
  assert.ok(answer.ok, answer.ok ? "" : answer.reason);
  return answer;
}

function refused(answer: GrantAnswer) {
  assert.ok(!answer.ok, "expected a refusal");
  return answer;
}

test("grants: a renewal keeps the token; a new owner waits until the old grant lapses", () => {
  const ledger = settledLedger();
  const first = granted(ledger.request("web", "n1", 0));
  assert.deepEqual(first.grant.fence, { term: 5, seq: 1 });
  assert.equal(first.continueOnly, false);
  assert.deepEqual(granted(ledger.request("web", "n1", 500, first.grant.fence)).grant.fence, {
    term: 5,
    seq: 1,
  });
  const other = refused(ledger.request("web", "n2", 600));
  assert.equal(other.retryAtMs, 500 + lapseMs);
  refused(ledger.request("web", "n2", 500 + lapseMs - 1));
  const next = granted(ledger.request("web", "n2", 500 + lapseMs));
  assert.deepEqual(next.grant.fence, { term: 5, seq: 2 });
  assert.ok(compareFence(next.grant.fence, first.grant.fence) > 0);
  assert.equal(formatFence(next.grant.fence), "5.2");
});

test("grants: a fresh request by the holder gets a new token, so a late release of the old one frees nothing", () => {
  const ledger = settledLedger();
  const first = granted(ledger.request("web", "n1", 0)).grant;
  // n1 stopped (its release still on the way) and asks afresh: a new grant, not a renewal.
  const second = granted(ledger.request("web", "n1", 100)).grant;
  assert.deepEqual(second.fence, { term: 5, seq: 2 });
  assert.equal(ledger.released("web", "n1", first.fence, 200), false, "the late release of 5.1");
  assert.equal(ledger.holder("web", 200)?.fence.seq, 2);
  refused(ledger.request("web", "n1", 300, first.fence));
});

test("grants: renewing a grant that is gone is refused: the holder must stop", () => {
  const ledger = settledLedger();
  const g = granted(ledger.request("web", "n1", 0)).grant;
  assert.match(refused(ledger.request("web", "n1", lapseMs, g.fence)).reason, /no longer live here: stop/);
  assert.match(refused(ledger.request("web", "n1", lapseMs, { term: 9, seq: 1 })).reason, /no longer live/);
});

test("grants: a holder that reports the service stopped frees it at once; a stale report changes nothing", () => {
  const ledger = settledLedger();
  const g = granted(ledger.request("web", "n1", 0)).grant;
  assert.equal(ledger.released("web", "n1", { term: 5, seq: 9 }, 10), false);
  assert.equal(ledger.released("web", "n2", g.fence, 10), false);
  assert.equal(ledger.holder("web", 10)?.owner, "n1");
  assert.equal(ledger.released("web", "n1", g.fence, 10), true);
  assert.equal(ledger.holder("web", 10), null);
  assert.equal(granted(ledger.request("web", "n2", 11)).grant.owner, "n2");
});

test("grants: a revoked grant is not renewed, so the service is free once it lapses", () => {
  const ledger = settledLedger();
  granted(ledger.request("web", "n1", 0));
  ledger.revoke("web");
  assert.equal(refused(ledger.request("web", "n1", 100)).retryAtMs, null);
  assert.equal(ledger.freeAtMs("web", 100), lapseMs);
  assert.equal(granted(ledger.request("web", "n2", lapseMs)).grant.owner, "n2");
});

test("grants: a new leader gives nothing to a new owner until every earlier grant may have lapsed", () => {
  const ledger = new GrantLedger({ term: 7, leaderSinceMs: 1000, leaseMs });
  const window = 1000 + lapseMs;
  assert.equal(refused(ledger.request("web", "n2", 1001)).retryAtMs, window);
  assert.equal(ledger.freeAtMs("web", 1001), window);
  // The holder of term 6 claims it: adopted, to keep it running, never to start it.
  const adopted = granted(ledger.request("web", "n1", 1100, { term: 6, seq: 3 }));
  assert.deepEqual(adopted.grant.fence, { term: 7, seq: 1 });
  assert.equal(adopted.continueOnly, true);
  // A second claimant (a late message, or a confused node) does not get it.
  refused(ledger.request("web", "n3", 1200, { term: 5, seq: 1 }));
  assert.equal(granted(ledger.request("web", "n1", 1300, adopted.grant.fence)).continueOnly, true);
  // The claim repeated (its answer lost) renews the adopted grant.
  assert.equal(granted(ledger.request("web", "n1", 1400, { term: 6, seq: 3 })).grant.fence.seq, 1);
  const after = granted(ledger.request("web", "n1", window, adopted.grant.fence));
  assert.equal(after.continueOnly, false, "past the window");
  // Claims of this leader's term or later are not claims of an earlier grant.
  refused(ledger.request("db", "n1", 1100, { term: 7, seq: 1 }));
  assert.equal(granted(ledger.request("db", "n1", window)).grant.fence.seq, 2);
});

test("grants: an adopted grant released inside the window frees the service only at its end", () => {
  const ledger = new GrantLedger({ term: 7, leaderSinceMs: 0, leaseMs });
  const g = granted(ledger.request("web", "n1", 10, { term: 6, seq: 1 })).grant;
  assert.equal(ledger.released("web", "n1", g.fence, 20), true);
  assert.equal(ledger.freeAtMs("web", 20), lapseMs);
  refused(ledger.request("web", "n2", lapseMs - 1));
  granted(ledger.request("web", "n2", lapseMs));
});

test("grants: the holder's deadline passes before the leader's lapse, whatever the delays, at clock rates 1 % apart", () => {
  const seed = process.env.GRANTS_SEED ?? String(Date.now());
  const rng = new Prng(seed);
  for (let trial = 0; trial < 10_000; trial++) {
    // Local ms per real ms, within 1 % of each other around an arbitrary true rate.
    const holderRate = 0.995 + rng.next() * 0.01;
    const leaderRate = 0.995 + rng.next() * 0.01;
    const sentRealMs = rng.next() * 1e6;
    const answeredRealMs = sentRealMs + rng.next() * 3000; // any delay, even past the lease
    const holderOffset = rng.next() * 1e6;
    const leaderOffset = rng.next() * 1e6;
    const sentLocal = holderOffset + sentRealMs * holderRate;
    const deadlineLocal = holderDeadlineMs(sentLocal, leaseMs);
    const deadlineRealMs = (deadlineLocal - holderOffset) / holderRate;
    const answeredLocal = leaderOffset + answeredRealMs * leaderRate;
    const lapseRealMs = (answeredLocal + lapseMs - leaderOffset) / leaderRate;
    assert.ok(
      deadlineRealMs < lapseRealMs,
      `seed ${seed} trial ${trial}: holder stops at ${deadlineRealMs}, leader lapses at ${lapseRealMs}`,
    );
  }
});

test("grants: a grant lasts the lease asked for, at most the ledger's, and a renewal keeps it", () => {
  const ledger = settledLedger();
  const short = granted(ledger.request("web", "n1", 0, undefined, 1000)).grant;
  assert.equal(short.leaseMs, 1000);
  assert.equal(ledger.freeAtMs("web", 0), 1000 * (1 + clockMarginDefault));
  // Asked again with a longer lease (another config): the renewal keeps the grant's own.
  assert.equal(granted(ledger.request("web", "n1", 500, short.fence, 5000)).grant.leaseMs, 1000);
  assert.equal(ledger.freeAtMs("web", 500), 500 + 1000 * (1 + clockMarginDefault));
  // Longer than the ledger's: capped, since a new leader's window only covers the ledger's lease.
  assert.equal(granted(ledger.request("db", "n1", 0, undefined, 60_000)).grant.leaseMs, leaseMs);
  // A claim of an earlier leader's grant gets the lease it asks for too.
  const fresh = new GrantLedger({ term: 9, leaderSinceMs: 0, leaseMs });
  assert.equal(granted(fresh.request("web", "n1", 10, { term: 8, seq: 1 }, 1200)).grant.leaseMs, 1200);
});

test("grants: impossible settings are refused", () => {
  assert.throws(() => new GrantLedger({ term: 1, leaderSinceMs: 0, leaseMs: 0 }), RangeError);
  assert.throws(() => settledLedger().request("web", "n1", 0, undefined, 0), RangeError);
  assert.throws(() => new GrantLedger({ term: 1, leaderSinceMs: 0, leaseMs: 10, margin: 1 }), RangeError);
});

test("grants: inheritedBound: the latest contact, each shrunk by the margin; any tail unknown makes it unknown", () => {
  const m = clockMarginDefault;
  assert.equal(inheritedBound([]), null);
  const bound = inheritedBound([
    { atMs: 1000, heardMsAgo: 700, tailMs: 1550 },
    { atMs: 1010, heardMsAgo: 900, tailMs: 2000 },
    { atMs: 990, heardMsAgo: 600, tailMs: null },
  ]);
  assert.deepEqual(bound, { lastLeaderMs: 990 - 600 * (1 - m), tailMs: null });
  assert.deepEqual(
    inheritedBound([
      { atMs: 1000, heardMsAgo: 700, tailMs: 1550 },
      { atMs: 1010, heardMsAgo: 900, tailMs: 2000 },
    ]),
    { lastLeaderMs: 1000 - 700 * (1 - m), tailMs: 2000 },
  );
  assert.throws(() => inheritedBound([{ atMs: 0, heardMsAgo: -1, tailMs: 0 }]), RangeError);
});

test("grants: the voters' contacts end the inherited window at lastLeader + tail, never after the widest one", () => {
  const m = clockMarginDefault;
  // The lan case: the old leader (lease 550 ms, a 1 s grant) was last heard 700 ms before this one won.
  const ledger = new GrantLedger({
    term: 6,
    leaderSinceMs: 10_000,
    leaseMs,
    inherited: { lastLeaderMs: 9_300, tailMs: 1550 },
  });
  const untilMs = 9_300 + 1550 * (1 + m);
  assert.equal(ledger.inheritedUntilMs, untilMs);
  assert.ok(untilMs < 10_000 + lapseMs, "shorter than the widest window");
  assert.equal(refused(ledger.request("web", "n2", untilMs - 1)).retryAtMs, untilMs);
  assert.equal(ledger.freeAtMs("web", 10_000), untilMs);
  granted(ledger.request("web", "n2", untilMs));
  // Contacts that prove nothing better: the widest window still holds.
  const late = new GrantLedger({
    term: 6,
    leaderSinceMs: 10_000,
    leaseMs,
    inherited: { lastLeaderMs: 9_900, tailMs: 5000 },
  });
  assert.equal(late.inheritedUntilMs, 10_000 + lapseMs);
  const unknown = new GrantLedger({
    term: 6,
    leaderSinceMs: 10_000,
    leaseMs,
    inherited: { lastLeaderMs: 0, tailMs: null },
  });
  assert.equal(unknown.inheritedUntilMs, 10_000 + lapseMs);
});

test("grants: with its own lease given, a ledger issues a lease only under an acknowledged tail that covers it", () => {
  const ledger = new GrantLedger({
    term: 6,
    leaderSinceMs: 10_000,
    leaseMs,
    inherited: { lastLeaderMs: 9_300, tailMs: 1550 },
    leaderLeaseMs: 550,
  });
  // It advertises at least what is left of its window from its start, and its own lease.
  assert.equal(ledger.tailMs(), Math.ceil(ledger.inheritedUntilMs - 10_000));
  const at = ledger.inheritedUntilMs;
  const pending = refused(ledger.request("web", "n2", at, undefined, 1000, 900));
  assert.equal(pending.tailMs, 1550);
  assert.equal(ledger.tailMs(), 1550, "the tail to advertise grew");
  assert.equal(ledger.holder("web", at), null, "nothing issued");
  const grant = granted(ledger.request("web", "n2", at, undefined, 1000, 1550)).grant;
  // A renewal was covered when issued; the acknowledged tail of a term only grows.
  granted(ledger.request("web", "n2", at + 200, grant.fence, 1000, 1550));
  // A claim is issued too: it waits for its tail like a fresh grant.
  const claimer = new GrantLedger({ term: 7, leaderSinceMs: 0, leaseMs, leaderLeaseMs: 550 });
  assert.equal(refused(claimer.request("web", "n1", 10, { term: 6, seq: 1 }, 2000, 600)).tailMs, 2550);
  assert.equal(granted(claimer.request("web", "n1", 20, { term: 6, seq: 1 }, 2000, 2550)).continueOnly, true);
});
