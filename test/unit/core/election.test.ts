import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Election, validateElectionConfig } from "../../../src/core/election.ts";
import { ElectionConfigError, ElectionInvariantError } from "../../../src/core/election_errors.ts";
import { checkElectionInvariants, type ElectionSnapshot } from "../../../src/core/election_invariants.ts";
import {
  type ElectionConfig,
  type ElectionEvent,
  type ElectionMessage,
  emptyHardState,
  type HardState,
} from "../../../src/core/election_types.ts";
import { type MembershipSummary, sortedMembership } from "../../../src/core/membership.ts";
import { Prng } from "../../../src/core/prng.ts";
import type { Envelope, NodeId } from "../../../src/core/types.ts";

const electionTimeoutTicks = 10;
const heartbeatIntervalTicks = 2;
const leaseTicks = 8;

interface ClusterOptions {
  members: readonly NodeId[];
  witnesses?: readonly NodeId[];
  priorities?: Record<NodeId, number>;
  preVote?: boolean;
  checkQuorum?: boolean;
  seed?: string;
}

/** A summary newer than any these tests reach: the receiver compares it as a candidate's or leader's list. */
const newer: MembershipSummary = { version: 1, term: 99, hash: "00000000000000aa" };

/** A message as the core sends it, without the membership summary these tests do not look at. */
function bare(message: ElectionMessage | undefined): unknown {
  if (message === undefined || message.type === "timeout-now") return message;
  const { membership: _summary, ...rest } = message;
  return rest;
}

function termAndVote(state: HardState | undefined): unknown {
  return state === undefined ? undefined : { term: state.term, votedFor: state.votedFor };
}

/** The state of a node whose cluster already agreed on the configured list (version 1). */
function bootstrapped(options: ClusterOptions): HardState {
  const witnesses = options.witnesses ?? [];
  const node = (id: NodeId, role: "member" | "witness") => ({
    id,
    address: "",
    role,
    priority: options.priorities?.[id] ?? 1,
    voting: true,
    autoPromote: false,
  });
  const config = sortedMembership(1, [
    ...options.members.map((id) => node(id, "member")),
    ...witnesses.map((id) => node(id, "witness")),
  ]);
  return { term: 0, votedFor: null, membership: { config, term: 0 } };
}

function configFor(selfId: NodeId, options: ClusterOptions): ElectionConfig {
  const witnesses = options.witnesses ?? [];
  const priorities: Record<NodeId, number> = {};
  for (const id of [...options.members, ...witnesses]) priorities[id] = options.priorities?.[id] ?? 1;
  return {
    selfId,
    members: options.members,
    witnesses,
    priorities,
    electionTimeoutTicks,
    heartbeatIntervalTicks,
    leaseTicks,
    preVote: options.preVote ?? true,
    checkQuorum: options.checkQuorum ?? true,
  };
}

/**
 * Election instances wired together synchronously: every tick, each live node ticks, then messages are
 * delivered (FIFO, through partitions) until none are left. Checks cluster safety after every input.
 */
class Cluster {
  readonly nodes = new Map<NodeId, Election>();
  readonly disks = new Map<NodeId, HardState>();
  readonly log: { node: NodeId; event: ElectionEvent }[] = [];
  readonly sent: Envelope<ElectionMessage>[] = [];
  nowTicks = 0;
  private readonly options: ClusterOptions;
  private readonly rng: Prng;
  private readonly down = new Set<NodeId>();
  private readonly isolated = new Set<NodeId>();
  private readonly inflight: Envelope<ElectionMessage>[] = [];
  private readonly leaderByTerm = new Map<number, NodeId>();
  private boots = 0;

  constructor(options: ClusterOptions) {
    this.options = options;
    this.rng = new Prng(options.seed ?? "cluster");
    for (const id of [...options.members, ...(options.witnesses ?? [])]) this.start(id);
  }

  node(id: NodeId): Election {
    const node = this.nodes.get(id);
    assert.ok(node, `no node ${id}`);
    return node;
  }

  start(id: NodeId): void {
    const persisted = this.disks.get(id) ?? bootstrapped(this.options);
    this.nodes.set(
      id,
      new Election(configFor(id, this.options), persisted, this.rng.fork(`${id}#${this.boots++}`)),
    );
    this.down.delete(id);
  }

  crash(id: NodeId): void {
    this.down.add(id);
  }

  isolate(id: NodeId): void {
    this.isolated.add(id);
  }

  heal(): void {
    this.isolated.clear();
  }

  /** Run `input` on one node, then deliver everything. */
  on(id: NodeId, input: (e: Election) => void): void {
    input(this.node(id));
    this.drain(id);
    this.deliverAll();
  }

  tick(count = 1): void {
    for (let i = 0; i < count; i++) {
      this.nowTicks++;
      for (const [id, node] of this.nodes) {
        if (this.down.has(id)) continue;
        // ticksUntilTimer is a lower bound: every tick before the one it names does nothing visible.
        const quiet = node.ticksUntilTimer() > 1;
        node.tick();
        if (quiet)
          assert.ok(!node.hasReady(), `${id} acted at tick ${this.nowTicks}, before ticksUntilTimer`);
        this.drain(id);
      }
      this.deliverAll();
    }
  }

  /** Tick until `done` holds; fails after `ticksMax`. */
  tickUntil(done: () => boolean, ticksMax = 20 * electionTimeoutTicks): void {
    for (let i = 0; i < ticksMax && !done(); i++) this.tick();
    assert.ok(done(), `condition not reached within ${ticksMax} ticks`);
  }

  leaders(): NodeId[] {
    return this.live().filter((id) => this.node(id).status().role === "leader");
  }

  soleLeader(): NodeId | null {
    const leaders = this.leaders();
    return leaders.length === 1 ? (leaders[0] as NodeId) : null;
  }

  events(type: ElectionEvent["type"], node?: NodeId): ElectionEvent[] {
    return this.log
      .filter((e) => e.event.type === type && (node === undefined || e.node === node))
      .map((e) => e.event);
  }

  private live(): NodeId[] {
    return [...this.nodes.keys()].filter((id) => !this.down.has(id));
  }

  private drain(id: NodeId): void {
    const node = this.node(id);
    while (node.hasReady()) {
      const ready = node.ready();
      if (ready.hardState) this.disks.set(id, ready.hardState);
      for (const envelope of ready.messages) {
        this.sent.push(envelope);
        this.inflight.push(envelope);
      }
      for (const event of ready.events) this.log.push({ node: id, event });
      node.advance(ready);
    }
    this.checkSafety();
  }

  private deliverAll(): void {
    for (let delivered = 0; this.inflight.length > 0; delivered++) {
      assert.ok(delivered < 10_000, "message storm");
      const envelope = this.inflight.shift() as Envelope<ElectionMessage>;
      const { from, to } = envelope;
      if (this.down.has(to) || this.down.has(from) || this.isolated.has(from) || this.isolated.has(to))
        continue;
      this.node(to).step(envelope);
      this.drain(to);
    }
  }

  /** One leader per term, ever; no two live nodes hold a valid lease at once. */
  private checkSafety(): void {
    let leases = 0;
    for (const id of this.live()) {
      const status = this.node(id).status();
      if (status.leaseValid) leases++;
      if (status.role !== "leader") continue;
      const known = this.leaderByTerm.get(status.term);
      assert.ok(known === undefined || known === id, `${known} and ${id} both led term ${status.term}`);
      this.leaderByTerm.set(status.term, id);
    }
    assert.ok(leases <= 1, `${leases} nodes hold a valid lease at tick ${this.nowTicks}`);
  }
}

function electedCluster(options: ClusterOptions, first: NodeId = "n1"): Cluster {
  const cluster = new Cluster(options);
  cluster.on(first, (e) => e.campaign());
  assert.equal(cluster.soleLeader(), first);
  return cluster;
}

const three = { members: ["n1", "n2", "n3"] };

describe("election", () => {
  test("election: single-node cluster elects itself", () => {
    const cluster = new Cluster({ members: ["n1"] });
    cluster.tickUntil(() => cluster.soleLeader() === "n1");
    assert.ok(cluster.nowTicks >= electionTimeoutTicks && cluster.nowTicks < 2 * electionTimeoutTicks);
    assert.deepEqual(termAndVote(cluster.disks.get("n1")), { term: 1, votedFor: "n1" });
    assert.equal(cluster.node("n1").status().leaseValid, true);
    // Alone, its ticks do nothing visible: the shell need not wake for them (checked at every tick).
    assert.equal(cluster.node("n1").ticksUntilTimer(), Number.POSITIVE_INFINITY);
    cluster.tick(10 * electionTimeoutTicks);
    assert.equal(cluster.node("n1").status().leaseValid, true);
  });

  test("election: three nodes elect exactly one leader, and all agree on it", () => {
    for (const seed of ["a", "b", "c", "d", "e"]) {
      const cluster = new Cluster({ ...three, seed });
      cluster.tickUntil(() => cluster.soleLeader() !== null);
      const leader = cluster.soleLeader();
      for (const id of three.members)
        assert.equal(cluster.node(id).status().leaderId, leader, `seed ${seed}`);
    }
  });

  test("election: leader heartbeats keep followers from campaigning", () => {
    const cluster = electedCluster(three);
    cluster.tick(20 * electionTimeoutTicks);
    assert.equal(cluster.soleLeader(), "n1");
    for (const id of three.members) assert.equal(cluster.node(id).status().term, 1);
    assert.deepEqual(cluster.events("role-changed", "n2").length, 1, "n2 only learned the leader once");
  });

  test("election: ticksUntilTimer: a follower sleeps until its election timeout, a leader until its heartbeat", () => {
    const cluster = electedCluster(three);
    const leader = cluster.node("n1");
    assert.ok(leader.ticksUntilTimer() >= 1 && leader.ticksUntilTimer() <= heartbeatIntervalTicks);
    const follower = cluster.node("n2");
    const untilTimeout = follower.ticksUntilTimer();
    assert.ok(
      untilTimeout >= electionTimeoutTicks - heartbeatIntervalTicks,
      `follower wakes in ${untilTimeout}`,
    );
    cluster.crash("n1");
    const asleep = follower.ticksUntilTimer();
    for (let i = 1; i < asleep; i++) follower.tick();
    assert.equal(follower.hasReady(), false, "nothing before the named tick");
    follower.tick();
    assert.equal(follower.status().role, "pre-candidate", "the named tick campaigns");
    const witness = electedCluster({ members: ["n1", "n2"], witnesses: ["w"] }).node("w");
    assert.equal(witness.ticksUntilTimer(), Number.POSITIVE_INFINITY);
  });

  test("election: pre-vote: an isolated node keeps its term and does not disrupt the leader on rejoin", () => {
    const cluster = electedCluster(three);
    cluster.isolate("n3");
    cluster.tick(10 * electionTimeoutTicks);
    assert.equal(cluster.node("n3").status().term, 1, "pre-candidates do not bump their term");
    assert.ok(
      cluster
        .events("role-changed", "n3")
        .some((e) => e.type === "role-changed" && e.role === "pre-candidate"),
    );
    cluster.heal();
    cluster.tick(5 * electionTimeoutTicks);
    assert.equal(cluster.soleLeader(), "n1");
    for (const id of three.members) assert.equal(cluster.node(id).status().term, 1);
  });

  test("election: without pre-vote an isolated node bumps its term and unseats the leader", () => {
    const cluster = electedCluster({ ...three, preVote: false });
    cluster.isolate("n3");
    cluster.tick(10 * electionTimeoutTicks);
    assert.ok(cluster.node("n3").status().term > 1);
    cluster.heal();
    cluster.tick(5 * electionTimeoutTicks);
    assert.ok(
      cluster.node("n1").status().term > 1,
      "the rejoining node's term deposed the old leader's term",
    );
  });

  test("election: pre-vote: refused with the voter's own term while the lease holds, granted once it lapsed", () => {
    const cluster = electedCluster(three);
    const n2 = cluster.node("n2");
    cluster.on("n2", (e) =>
      e.step({ from: "n3", to: "n2", message: { type: "pre-vote", term: 2, membership: newer } }),
    );
    assert.deepEqual(bare(cluster.sent.at(-1)?.message), {
      type: "pre-vote-response",
      term: 1,
      granted: false,
    });
    assert.match(JSON.stringify(cluster.events("vote-rejected", "n2")), /lease/);
    cluster.isolate("n1");
    cluster.crash("n3");
    cluster.tick(electionTimeoutTicks);
    cluster.on("n2", (e) =>
      e.step({ from: "n3", to: "n2", message: { type: "pre-vote", term: 2, membership: newer } }),
    );
    const answer = cluster.sent.at(-1);
    assert.deepEqual(bare(answer?.message), { type: "pre-vote-response", term: 2, granted: true });
    assert.deepEqual({ term: n2.status().term, votedFor: n2.status().votedFor }, { term: 1, votedFor: "n1" });
  });

  test("election: vote: ignored while the lease holds, without bumping the term; a transfer vote is not", () => {
    const cluster = electedCluster(three);
    const sentBefore = cluster.sent.length;
    cluster.on("n2", (e) =>
      e.step({
        from: "n3",
        to: "n2",
        message: { type: "vote", term: 2, transfer: false, membership: newer },
      }),
    );
    assert.equal(cluster.node("n2").status().term, 1);
    assert.equal(cluster.sent.length, sentBefore);
    cluster.on("n2", (e) =>
      e.step({ from: "n3", to: "n2", message: { type: "vote", term: 2, transfer: true, membership: newer } }),
    );
    assert.deepEqual(termAndVote(cluster.disks.get("n2")), { term: 2, votedFor: "n3" });
    // n1's heartbeat came this very tick; n1 advertised no tail (nothing set one).
    assert.deepEqual(bare(cluster.sent.at(-1)?.message), {
      type: "vote-response",
      term: 2,
      granted: true,
      leaderHeardTicksAgo: 0,
    });
  });

  test("election: vote: a granted vote is honoured like a lease for T ticks", () => {
    const node = new Election(configFor("n2", three), bootstrapped(three), new Prng(1));
    node.step({
      from: "n1",
      to: "n2",
      message: { type: "vote", term: 1, transfer: false, membership: newer },
    });
    node.step({
      from: "n3",
      to: "n2",
      message: { type: "vote", term: 2, transfer: false, membership: newer },
    });
    assert.deepEqual(
      { term: node.status().term, votedFor: node.status().votedFor },
      { term: 1, votedFor: "n1" },
    );
    for (let i = 0; i < electionTimeoutTicks - 1; i++) node.tick();
    node.step({
      from: "n3",
      to: "n2",
      message: { type: "vote", term: 2, transfer: false, membership: newer },
    });
    assert.equal(node.status().term, 1, "n1 may have won and dated its lease from its request");
    node.tick();
    node.step({
      from: "n3",
      to: "n2",
      message: { type: "vote", term: 2, transfer: false, membership: newer },
    });
    assert.deepEqual(
      { term: node.status().term, votedFor: node.status().votedFor },
      { term: 2, votedFor: "n3" },
    );
  });

  test("election: vote: a restarted node never votes twice in a term and honours a lease for T ticks", () => {
    const options = { ...three, preVote: false };
    const cluster = electedCluster(options);
    cluster.crash("n2");
    cluster.start("n2");
    const n2 = cluster.node("n2");
    assert.deepEqual({ term: n2.status().term, votedFor: n2.status().votedFor }, { term: 1, votedFor: "n1" });
    cluster.isolate("n1");
    cluster.on("n2", (e) =>
      e.step({
        from: "n3",
        to: "n2",
        message: { type: "vote", term: 1, transfer: false, membership: newer },
      }),
    );
    assert.deepEqual(
      { ...cluster.sent.at(-1), message: bare(cluster.sent.at(-1)?.message) },
      { from: "n2", to: "n3", message: { type: "vote-response", term: 1, granted: false } },
    );
    cluster.on("n2", (e) =>
      e.step({
        from: "n3",
        to: "n2",
        message: { type: "vote", term: 2, transfer: false, membership: newer },
      }),
    );
    assert.equal(n2.status().term, 1, "a lease n2 may have acknowledged before the crash still holds");
  });

  test("election: lease: the leader steps down before any other node can be elected", () => {
    const cluster = electedCluster(three);
    cluster.tick(3);
    cluster.isolate("n1");
    const isolatedAt = cluster.nowTicks;
    cluster.tickUntil(() => cluster.events("lease-lost", "n1").length > 0);
    const lostAt = cluster.nowTicks;
    assert.equal(cluster.node("n1").status().role, "follower");
    assert.ok(
      lostAt - isolatedAt <= leaseTicks,
      "the lease ends within leaseTicks of the last acknowledgement",
    );
    cluster.tickUntil(() => cluster.leaders().some((id) => id !== "n1"));
    assert.ok(cluster.nowTicks > lostAt);
    assert.ok(cluster.nowTicks - isolatedAt >= electionTimeoutTicks, "followers honoured the lease window");
  });

  test("election: lease: first lease dates from the vote requests and shrinks without acknowledgements", () => {
    const cluster = new Cluster(three);
    cluster.tick(2);
    cluster.on("n1", (e) => e.campaign());
    const n1 = cluster.node("n1");
    assert.equal(n1.status().leaseRemainingTicks, leaseTicks);
    cluster.isolate("n1");
    cluster.tick(3);
    assert.equal(n1.status().leaseRemainingTicks, leaseTicks - 3);
    assert.equal(n1.status().leaseValid, true);
  });

  test("election: lease: campaign() is ignored while the node honours the leader's lease", () => {
    const cluster = electedCluster({ ...three, preVote: false });
    cluster.isolate("n2");
    cluster.tick(electionTimeoutTicks - 1);
    cluster.on("n3", (e) => e.campaign());
    assert.equal(cluster.node("n3").status().term, 1, "n3 acknowledged n1's lease one tick ago");
    assert.equal(cluster.soleLeader(), "n1");
  });

  test("election: lease: without checkQuorum no lease is promised and the leader never steps down", () => {
    const cluster = electedCluster({ ...three, checkQuorum: false });
    assert.equal(cluster.node("n1").status().leaseValid, false);
    cluster.isolate("n1");
    cluster.tick(5 * electionTimeoutTicks);
    assert.equal(cluster.node("n1").status().role, "leader");
    assert.equal(cluster.events("lease-lost").length, 0);
  });

  test("election: stale leader steps down on a heartbeat answer from a newer term", () => {
    const cluster = electedCluster(three);
    cluster.isolate("n1");
    cluster.tickUntil(() => cluster.leaders().some((id) => id !== "n1"));
    cluster.heal();
    cluster.tick(2 * electionTimeoutTicks);
    const leader = cluster.soleLeader();
    assert.ok(leader !== null && leader !== "n1");
    assert.equal(cluster.node("n1").status().leaderId, leader);
    assert.equal(cluster.node("n1").status().term, cluster.node(leader).status().term);
  });

  test("election: witness: votes but never leads; the other member takes over from a dead leader", () => {
    const options = { members: ["n1", "n2"], witnesses: ["w"], priorities: { w: 100 } };
    const cluster = electedCluster(options);
    cluster.crash("n1");
    cluster.tickUntil(() => cluster.soleLeader() === "n2");
    cluster.tick(5 * electionTimeoutTicks);
    assert.equal(cluster.soleLeader(), "n2");
    const witnessRoles = cluster
      .events("role-changed", "w")
      .map((e) => (e.type === "role-changed" ? e.role : ""));
    assert.ok(witnessRoles.every((role) => role === "follower"));
    assert.ok(cluster.events("vote-granted", "w").length > 0, "the witness voted");
  });

  test("election: witness: campaign() and timeout-now are ignored", () => {
    const cluster = electedCluster({ members: ["n1", "n2"], witnesses: ["w"] });
    cluster.on("w", (e) => e.campaign());
    cluster.on("w", (e) => e.step({ from: "n1", to: "w", message: { type: "timeout-now", term: 1 } }));
    cluster.on("n1", (e) => e.transferLeadership("w"));
    assert.equal(cluster.soleLeader(), "n1");
    assert.equal(cluster.node("w").status().term, 1);
  });

  test("election: priority: a healthy higher-priority member takes over", () => {
    const cluster = electedCluster({ ...three, priorities: { n1: 1, n2: 2, n3: 3 } });
    cluster.tickUntil(() => cluster.soleLeader() === "n3", 4 * electionTimeoutTicks);
    const transfers = cluster.events("transfer-started", "n1");
    assert.deepEqual(transfers, [{ type: "transfer-started", term: 1, to: "n3" }]);
    assert.equal(cluster.node("n3").status().term, 2);
    assert.ok(
      cluster.sent.every((s) => !(s.from === "n3" && s.message.type === "pre-vote")),
      "no pre-vote",
    );
    cluster.tick(10 * electionTimeoutTicks);
    assert.equal(cluster.soleLeader(), "n3");
    assert.equal(cluster.events("transfer-started").length, 1);
  });

  test("election: priority: no transfer before the member answered heartbeats for T ticks", () => {
    const cluster = electedCluster({ ...three, priorities: { n1: 1, n2: 1, n3: 3 } });
    cluster.tick(electionTimeoutTicks - heartbeatIntervalTicks);
    assert.equal(cluster.soleLeader(), "n1");
    cluster.isolate("n3");
    cluster.tick(3 * heartbeatIntervalTicks);
    cluster.heal();
    cluster.tick(electionTimeoutTicks - heartbeatIntervalTicks);
    assert.equal(cluster.soleLeader(), "n1", "the gap restarted n3's health streak");
    cluster.tickUntil(() => cluster.soleLeader() === "n3", 2 * electionTimeoutTicks);
  });

  test("election: priority: equal priorities never transfer", () => {
    const cluster = electedCluster({ ...three, priorities: { n1: 5, n2: 5, n3: 5 } });
    cluster.tick(20 * electionTimeoutTicks);
    assert.equal(cluster.soleLeader(), "n1");
    assert.equal(cluster.events("transfer-started").length, 0);
  });

  test("election: priority: higher priorities tend to win the first election", () => {
    const wins = new Map<NodeId, number>();
    for (let seed = 0; seed < 60; seed++) {
      const cluster = new Cluster({ ...three, priorities: { n1: 1, n2: 2, n3: 3 }, seed: `race-${seed}` });
      cluster.tickUntil(() => cluster.soleLeader() !== null);
      const leader = cluster.soleLeader() as NodeId;
      wins.set(leader, (wins.get(leader) ?? 0) + 1);
    }
    assert.ok((wins.get("n3") ?? 0) > (wins.get("n2") ?? 0), JSON.stringify([...wins]));
    assert.ok((wins.get("n2") ?? 0) > (wins.get("n1") ?? 0), JSON.stringify([...wins]));
  });

  test("election: link closed: a follower campaigns T+1 ticks after it last heard the leader, two ticks later per member ranked above it", () => {
    for (const [self, campaignTick] of [
      ["n2", electionTimeoutTicks + 1],
      ["n3", electionTimeoutTicks + 3],
    ] as const) {
      const node = new Election(configFor(self, three), bootstrapped(three), new Prng(`link-${self}`));
      node.step({
        from: "n1",
        to: self,
        message: { type: "heartbeat", term: 1, seq: 1, membership: newer, committed: 1 },
      });
      node.tick();
      node.peerDisconnected("n1");
      for (let tick = 2; tick < campaignTick; tick++) node.tick();
      assert.equal(node.status().role, "follower", `${self} before tick ${campaignTick}`);
      node.tick();
      assert.equal(node.status().role, "pre-candidate", `${self} at tick ${campaignTick}`);
    }
  });

  test("election: link closed: ignored unless the peer is the leader, and on leaders", () => {
    const twins = ["hinted", "plain"].map(
      () => new Election(configFor("n2", three), bootstrapped(three), new Prng("twin")),
    );
    for (const node of twins)
      node.step({
        from: "n1",
        to: "n2",
        message: { type: "heartbeat", term: 1, seq: 1, membership: newer, committed: 1 },
      });
    twins[0]?.peerDisconnected("n3");
    const roles = twins.map((node) => {
      const seen: string[] = [];
      for (let i = 0; i < 3 * electionTimeoutTicks; i++) {
        node.tick();
        seen.push(node.status().role);
      }
      return seen;
    });
    assert.deepEqual(roles[0], roles[1]);
    const cluster = electedCluster(three);
    cluster.on("n1", (e) => e.peerDisconnected("n2"));
    cluster.tick(3 * electionTimeoutTicks);
    assert.equal(cluster.soleLeader(), "n1");
    assert.equal(cluster.node("n1").status().term, 1);
  });

  test("election: link closed: a heartbeat after the hint (the leader redialled) keeps the follower following", () => {
    const cluster = electedCluster(three);
    cluster.on("n2", (e) => e.peerDisconnected("n1"));
    cluster.on("n3", (e) => e.peerDisconnected("n1"));
    cluster.tick(4 * electionTimeoutTicks);
    assert.equal(cluster.soleLeader(), "n1");
    assert.equal(cluster.node("n2").status().term, 1);
  });

  test("election: link closed: with the leader dead, the top-ranked survivor leads after one round", () => {
    const cluster = electedCluster({ members: ["n1", "n2", "n3", "n4", "n5"] }, "n5");
    const candidacies = () =>
      cluster.events("role-changed").filter((e) => e.type === "role-changed" && e.role === "candidate")
        .length;
    const before = candidacies();
    cluster.crash("n5");
    for (const id of ["n1", "n2", "n3", "n4"]) cluster.on(id, (e) => e.peerDisconnected("n5"));
    cluster.tick(electionTimeoutTicks + 2);
    assert.equal(cluster.soleLeader(), "n1");
    assert.equal(cluster.node("n1").status().term, 2);
    assert.equal(candidacies() - before, 1, "one candidate, no split vote");
  });

  test("election: pre-vote tie: a pre-candidate refuses a lower-ranked pre-candidate of the same term", () => {
    const node = new Election(configFor("n1", three), bootstrapped(three), new Prng("tie"));
    node.campaign();
    assert.equal(node.status().role, "pre-candidate");
    node.step({
      from: "n2",
      to: "n1",
      message: { type: "pre-vote", term: 1, membership: node.membership().summary },
    });
    const ready = node.ready();
    node.advance(ready);
    assert.deepEqual(bare(ready.messages.at(-1)?.message), {
      type: "pre-vote-response",
      term: 0,
      granted: false,
    });
    assert.match(JSON.stringify(ready.events), /ranked above n2/);
  });

  test("election: pre-vote tie: granted to a higher rank, and to a lower rank that already refused us", () => {
    const lower = new Election(configFor("n2", three), bootstrapped(three), new Prng("tie"));
    lower.campaign();
    lower.step({
      from: "n1",
      to: "n2",
      message: { type: "pre-vote", term: 1, membership: lower.membership().summary },
    });
    assert.deepEqual(bare(lower.ready().messages.at(-1)?.message), {
      type: "pre-vote-response",
      term: 1,
      granted: true,
    });
    const upper = new Election(configFor("n1", three), bootstrapped(three), new Prng("tie"));
    upper.campaign();
    upper.step({
      from: "n3",
      to: "n1",
      message: { type: "pre-vote-response", term: 0, granted: false, membership: newer },
    });
    upper.step({
      from: "n3",
      to: "n1",
      message: { type: "pre-vote", term: 1, membership: upper.membership().summary },
    });
    assert.deepEqual(bare(upper.ready().messages.at(-1)?.message), {
      type: "pre-vote-response",
      term: 1,
      granted: true,
    });
  });

  test("election: pre-vote tie: rank follows priority before id", () => {
    const options = { ...three, priorities: { n1: 1, n2: 1, n3: 2 } };
    const node = new Election(configFor("n1", options), bootstrapped(options), new Prng("tie"));
    node.campaign();
    node.step({
      from: "n3",
      to: "n1",
      message: { type: "pre-vote", term: 1, membership: node.membership().summary },
    });
    assert.deepEqual(bare(node.ready().messages.at(-1)?.message), {
      type: "pre-vote-response",
      term: 1,
      granted: true,
    });
  });

  test("election: transferLeadership hands over at once and is ignored on followers", () => {
    const cluster = electedCluster(three);
    cluster.on("n2", (e) => e.transferLeadership("n3"));
    assert.equal(cluster.soleLeader(), "n1");
    cluster.on("n1", (e) => e.transferLeadership("n2"));
    assert.equal(cluster.soleLeader(), "n2");
    assert.equal(cluster.node("n2").status().term, 2);
    assert.equal(cluster.events("lease-lost").length, 0);
    assert.equal(cluster.node("n1").status().leaderId, "n2");
  });

  test("election: ready: hardState arrives in the same Ready as the vote it covers", () => {
    const node = new Election(configFor("n2", three), bootstrapped(three), new Prng(1));
    node.step({
      from: "n1",
      to: "n2",
      message: { type: "vote", term: 1, transfer: false, membership: newer },
    });
    const ready = node.ready();
    assert.deepEqual(termAndVote(ready.hardState), { term: 1, votedFor: "n1" });
    assert.deepEqual(
      ready.messages.map((m) => ({ ...m, message: bare(m.message) })),
      [
        {
          from: "n2",
          to: "n1",
          message: { type: "vote-response", term: 1, granted: true, leaderHeardTicksAgo: 0 },
        },
      ],
    );
    assert.equal(ready.fencingTerm, 1);
    node.advance(ready);
    node.step({
      from: "n1",
      to: "n2",
      message: { type: "heartbeat", term: 1, seq: 1, membership: newer, committed: 1 },
    });
    assert.equal(node.ready().hardState, undefined, "unchanged hard state is not rewritten");
  });

  test("election: ready: advance() consumes exactly what ready() returned", () => {
    const node = new Election(configFor("n2", three), bootstrapped(three), new Prng(1));
    assert.equal(node.hasReady(), false);
    node.step({
      from: "n1",
      to: "n2",
      message: { type: "heartbeat", term: 1, seq: 1, membership: newer, committed: 1 },
    });
    assert.equal(node.hasReady(), true);
    const first = node.ready();
    assert.deepEqual(first.softState, { role: "follower", leaderId: "n1" });
    assert.throws(() => node.ready(), /advance/);
    node.step({
      from: "n1",
      to: "n2",
      message: { type: "heartbeat", term: 1, seq: 2, membership: newer, committed: 1 },
    });
    assert.throws(() => node.advance({ ...first }), /ready\(\) did not return/);
    node.advance(first);
    const second = node.ready();
    assert.deepEqual(
      second.messages.map((m) => bare(m.message)),
      [{ type: "heartbeat-response", term: 1, seq: 2 }],
    );
    assert.equal(second.softState, undefined);
    node.advance(second);
    assert.equal(node.hasReady(), false);
  });

  test("election: step: a node outside the list is heard (a leader elected under a newer list); misaddressed messages are a bug", () => {
    const node = new Election(configFor("n2", three), bootstrapped(three), new Prng(1));
    node.step({
      from: "x9",
      to: "n2",
      message: { type: "heartbeat", term: 7, seq: 1, membership: newer, committed: 1 },
    });
    assert.deepEqual({ leader: node.status().leaderId, term: node.status().term }, { leader: "x9", term: 7 });
    assert.throws(() =>
      node.step({
        from: "n1",
        to: "n3",
        message: { type: "heartbeat", term: 7, seq: 1, membership: newer, committed: 1 },
      }),
    );
  });

  test("election: step: stale vote requests are answered with the newer term", () => {
    const node = new Election(configFor("n2", three), { term: 4, votedFor: null }, new Prng(1));
    node.step({ from: "n1", to: "n2", message: { type: "pre-vote", term: 3, membership: newer } });
    assert.deepEqual(bare(node.ready().messages[0]?.message), {
      type: "pre-vote-response",
      term: 4,
      granted: false,
    });
  });

  test("election: constructor: an invalid config throws ElectionConfigError", () => {
    const config = { ...configFor("n1", three), leaseTicks: electionTimeoutTicks };
    assert.throws(() => new Election(config, emptyHardState, new Prng(1)), ElectionConfigError);
  });
});

describe("election: validateElectionConfig", () => {
  const valid = configFor("n1", { members: ["n1", "n2"], witnesses: ["w"] });
  const cases: [string, Partial<ElectionConfig>, string | null][] = [
    ["valid", {}, null],
    ["non-integer ticks", { electionTimeoutTicks: 10.5 }, "electionTimeoutTicks"],
    ["zero heartbeat", { heartbeatIntervalTicks: 0 }, "heartbeatIntervalTicks"],
    ["heartbeat over half the timeout", { heartbeatIntervalTicks: 6 }, "heartbeatIntervalTicks"],
    ["lease equal to the timeout", { leaseTicks: 10 }, "leaseTicks"],
    ["lease above 0.9 T", { electionTimeoutTicks: 20, leaseTicks: 19 }, "leaseTicks"],
    ["lease not above the heartbeat", { leaseTicks: 2 }, "leaseTicks"],
    ["self not a voter", { selfId: "n9" }, "selfId"],
    ["duplicate member", { members: ["n1", "n1", "n2"] }, "members"],
    ["member also witness", { witnesses: ["n2"] }, "witnesses"],
    ["no members", { members: [], selfId: "w" }, "members"],
    ["missing priority", { priorities: { n1: 1, n2: 1 } }, "priorities"],
    ["priority for a stranger", { priorities: { n1: 1, n2: 1, w: 1, x: 1 } }, "priorities"],
    ["non-finite priority", { priorities: { n1: 1, n2: Number.NaN, w: 1 } }, "priorities"],
  ];
  for (const [name, change, key] of cases) {
    test(`election: validateElectionConfig: ${name}`, () => {
      const problems = validateElectionConfig({ ...valid, ...change });
      if (key === null) assert.deepEqual(problems, []);
      else
        assert.ok(
          problems.some((p) => p.key === key),
          JSON.stringify(problems),
        );
    });
  }
});

describe("election: invariants", () => {
  const identity = { selfId: "n1" };
  const base: ElectionSnapshot = {
    term: 3,
    votedFor: "n1",
    role: "leader",
    leaderId: "n1",
    fencingTerm: 3,
    canLead: true,
    nowTicks: 10,
    lastLeaderTicks: 5,
    heardTail: { term: 2, ms: 1500 },
    advertMs: 1600,
    acknowledgedTailMs: 1500,
  };
  const follower = { advertMs: null, acknowledgedTailMs: null };
  const cases: [string, Partial<ElectionSnapshot>, RegExp | null][] = [
    ["unchanged", {}, null],
    ["term decreased", { term: 2, fencingTerm: 2 }, /term decreased/],
    [
      "vote changed in a term",
      { role: "follower", leaderId: null, votedFor: "n2", ...follower },
      /vote in term 3/,
    ],
    [
      "vote kept in a newer term may change",
      { term: 4, fencingTerm: 4, role: "follower", votedFor: "n2", ...follower },
      null,
    ],
    ["leader names another leader", { leaderId: "n2" }, /leaderId/],
    [
      "candidate without own vote",
      { term: 4, fencingTerm: 4, role: "candidate", votedFor: null, ...follower },
      /own vote/,
    ],
    ["witness or learner leads", { canLead: false }, /without being a voting member/],
    ["witness or learner follows", { canLead: false, role: "follower", leaderId: "n2", ...follower }, null],
    ["last leader contact goes back", { lastLeaderTicks: 4 }, /last leader contact/],
    ["last leader contact ahead of now", { lastLeaderTicks: 11 }, /last leader contact/],
    ["heard tail forgotten", { heardTail: null }, /went back/],
    ["heard tail of an older term", { heardTail: { term: 1, ms: 3000 } }, /went back/],
    ["heard tail shrank in its term", { heardTail: { term: 2, ms: 1000 } }, /shrank/],
    ["heard tail grows", { heardTail: { term: 2, ms: 1700 } }, null],
    ["heard tail of a newer term may be shorter", { heardTail: { term: 3, ms: 900 } }, null],
    ["heard tail ahead of the term", { heardTail: { term: 4, ms: 900 } }, /ahead of term/],
    ["advert shrank while leading", { advertMs: 1000, acknowledgedTailMs: 1000 }, /advertised tail shrank/],
    ["acknowledged above the advert", { acknowledgedTailMs: 1700 }, /above the advertised/],
    ["follower advertising", { role: "follower", leaderId: "n2" }, /follower advertising/],
    ["fencing term lags", { fencingTerm: 2 }, /fencing/],
  ];
  for (const [name, change, expected] of cases) {
    test(`election: invariants: ${name}`, () => {
      const violations = checkElectionInvariants(identity, base, { ...base, ...change });
      if (expected === null) assert.deepEqual(violations, []);
      else
        assert.ok(
          violations.some((v) => expected.test(v)),
          JSON.stringify(violations),
        );
    });
  }

  test("election: invariants: ElectionInvariantError names the node and every violation", () => {
    const error = new ElectionInvariantError("n1", ["a", "b"]);
    assert.equal(error.name, "ElectionInvariantError");
    assert.match(error.message, /n1: a; b/);
  });
});

describe("election: contacts", () => {
  type VoteResponse = Extract<ElectionMessage, { type: "vote-response" }>;
  const votesGranted = (cluster: Cluster, term: number) =>
    cluster.sent.filter(
      (e): e is Envelope<VoteResponse> =>
        e.message.type === "vote-response" && e.message.granted && e.message.term === term,
    );

  test("election: contacts: a leader advertises its tail at once and counts what a quorum acknowledged", () => {
    const cluster = electedCluster(three);
    const leader = cluster.node("n1");
    assert.equal(leader.acknowledgedGrantTailMs(), null, "nothing advertised yet");
    const before = cluster.sent.length;
    cluster.on("n1", (e) => e.setGrantTailMs(1550));
    const heartbeats = cluster.sent.slice(before).filter((e) => e.message.type === "heartbeat");
    assert.deepEqual(
      heartbeats.map((e) => (e.message.type === "heartbeat" ? e.message.grantTailMs : null)),
      [1550, 1550],
    );
    assert.equal(leader.acknowledgedGrantTailMs(), 1550);
    // A smaller tail changes nothing; a larger one counts only once a quorum answered a heartbeat with it.
    cluster.on("n1", (e) => e.setGrantTailMs(1000));
    assert.equal(leader.acknowledgedGrantTailMs(), 1550);
    cluster.isolate("n2");
    cluster.isolate("n3");
    cluster.on("n1", (e) => e.setGrantTailMs(2550));
    assert.equal(leader.acknowledgedGrantTailMs(), 1550);
    cluster.heal();
    cluster.tick(heartbeatIntervalTicks);
    assert.equal(leader.acknowledgedGrantTailMs(), 2550);
    assert.equal(cluster.node("n2").acknowledgedGrantTailMs(), null, "followers count nothing");
    cluster.on("n2", (e) => e.setGrantTailMs(9999));
    assert.ok(!cluster.sent.some((e) => e.from === "n2" && e.message.type === "heartbeat"));
  });

  test("election: contacts: votes for the next leader carry the ticks since the old one was heard, and its tail", () => {
    const cluster = electedCluster(three);
    cluster.on("n1", (e) => e.setGrantTailMs(1550));
    cluster.tick(3);
    const lastHeartbeatTicks = cluster.nowTicks;
    cluster.crash("n1");
    let votes: Envelope<VoteResponse>[] = [];
    let votedAtTicks = 0;
    cluster.tickUntil(() => {
      votes = votesGranted(cluster, 2);
      votedAtTicks = cluster.nowTicks;
      return votes.length > 0;
    });
    const vote = votes[0]?.message;
    // Heartbeats go out every heartbeatIntervalTicks: the last one reached it at most that long before the crash.
    const ago = vote?.leaderHeardTicksAgo ?? -1;
    const sinceCrash = votedAtTicks - lastHeartbeatTicks;
    assert.ok(ago >= sinceCrash && ago <= sinceCrash + heartbeatIntervalTicks, `${ago} vs ${sinceCrash}`);
    assert.equal(vote?.grantTailMs, 1550);
    const winner = cluster.soleLeader();
    assert.ok(winner !== null && winner !== "n1");
    const own = cluster.node(winner).contactsWhenWon();
    assert.equal(own?.grantTailMs, 1550);
    assert.ok((own?.leaderHeardTicksAgo ?? -1) >= sinceCrash);
    assert.equal(cluster.node(winner === "n2" ? "n3" : "n2").contactsWhenWon(), null, "followers have none");
  });

  test("election: contacts: a voter keeps the largest tail of its leader's term; a newer term's replaces it", () => {
    const node = new Election(configFor("n2", three), bootstrapped(three), new Prng(1));
    const heartbeat = (term: number, seq: number, grantTailMs?: number) =>
      node.step({
        from: term === 1 ? "n1" : "n3",
        to: "n2",
        message: {
          type: "heartbeat",
          term,
          seq,
          membership: newer,
          committed: 1,
          ...(grantTailMs === undefined ? {} : { grantTailMs }),
        },
      });
    // A transfer's vote is granted even inside the lease window.
    const vote = (from: NodeId, term: number): VoteResponse => {
      node.step({ from, to: "n2", message: { type: "vote", term, transfer: true, membership: newer } });
      const ready = node.ready();
      node.advance(ready);
      const answer = ready.messages.at(-1)?.message;
      assert.ok(answer?.type === "vote-response" && answer.granted);
      return answer;
    };
    heartbeat(1, 1);
    heartbeat(1, 3, 1000);
    heartbeat(1, 2, 800); // late: the term's largest stays
    for (let i = 0; i < 3; i++) node.tick();
    assert.deepEqual(bare(vote("n3", 2)), {
      type: "vote-response",
      term: 2,
      granted: true,
      leaderHeardTicksAgo: 3,
      grantTailMs: 1000,
    });
    // The vote itself counts as a contact (the candidate dates its first lease from it).
    node.tick();
    assert.equal(vote("n1", 3).leaderHeardTicksAgo, 1);
    // Term 3's leader advertised nothing yet: the tail is unknown, even though an older one was larger.
    heartbeat(3, 1);
    assert.equal(vote("n3", 4).grantTailMs, undefined);
    heartbeat(4, 1, 600);
    assert.equal(vote("n1", 5).grantTailMs, 600, "a newer term's tail replaces a longer older one");
  });

  test("election: contacts: a leader that steps down reports its own tail and when it stopped leading", () => {
    const cluster = electedCluster(three);
    cluster.on("n1", (e) => e.setGrantTailMs(1234));
    cluster.isolate("n1");
    cluster.tickUntil(() => cluster.node("n1").status().role === "follower");
    const steppedDownTicks = cluster.nowTicks;
    cluster.tick(2);
    cluster.heal();
    cluster.crash("n2");
    cluster.on("n3", (e) => e.campaign());
    cluster.tickUntil(() => votesGranted(cluster, 2).some((e) => e.from === "n1"));
    const fromOld = votesGranted(cluster, 2).find((e) => e.from === "n1")?.message;
    assert.equal(fromOld?.grantTailMs, 1234);
    assert.ok((fromOld?.leaderHeardTicksAgo ?? -1) <= cluster.nowTicks - steppedDownTicks);
  });
});

describe("election: lease age", () => {
  test("election: lease age: ticks since the heartbeat the lease rests on; a heartbeat round now renews it", () => {
    const cluster = electedCluster(three);
    const leader = cluster.node("n1");
    cluster.tick(1);
    const age = leader.leaseAgeTicks() ?? -1;
    assert.ok(age >= 0 && age < heartbeatIntervalTicks, `age ${age}`);
    cluster.isolate("n2");
    cluster.isolate("n3");
    cluster.tick(3);
    assert.equal(leader.leaseAgeTicks(), age + 3, "unanswered heartbeats do not renew it");
    cluster.heal();
    cluster.on("n1", (e) => e.heartbeatNow());
    assert.equal(leader.leaseAgeTicks(), 0);
    assert.equal(cluster.node("n2").leaseAgeTicks(), null, "followers have none");
    const before = cluster.sent.length;
    cluster.on("n2", (e) => e.heartbeatNow());
    assert.equal(cluster.sent.length, before, "a follower sends nothing");
  });
});
