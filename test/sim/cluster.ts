// N real election cores on one virtual clock and one virtual network. Each node is drained exactly as
// the shell drains it (src/cluster/election_runner.ts): tick or step, then while hasReady(): persist the
// hardState (write, fsync), send the messages, emit the events, advance. A crash normally falls between
// two events; crashAtDrainStep() tears one drain instead (after the write, after the fsync, or after some
// of the messages left). A stalled node (pause) runs nothing, then catches up all its due ticks in one
// batch before the messages that queued meanwhile, as the shell's MonotonicTicker does. A crash may close
// the node's links, as a killed process's sockets close at once: its live peers hear peerDisconnected.
// Each node boots from its own bootstrap list (the cluster's by default, or one of its own, as a mistyped
// tandem.yml would give it); spare nodes start in join mode and wait, on the network from the start, for a
// leader to add them. propose() asks a node's core for a membership change.
// The safety checker runs after every event; the transcript is built only when someone listens.
import type { ProposeResult } from "../../src/core/election.ts";
import {
  type ElectionConfig,
  type ElectionEvent,
  type ElectionMessage,
  type ElectionStatus,
  emptyHardState,
  type HardState,
} from "../../src/core/election_types.ts";
import type { MembershipChange } from "../../src/core/membership.ts";
import type { Prng } from "../../src/core/prng.ts";
import type { Envelope, NodeId, Term } from "../../src/core/types.ts";
import { ElectionSafetyChecker, SafetyViolationError } from "./checkers/election_safety.ts";
import { NodeClock, unitsPerTick } from "./clock.ts";
import { bootstrappedState, SimDisk } from "./disk.ts";
import { drainCore, type ElectionCore } from "./drain.ts";
import { EventQueue } from "./event_queue.ts";
import { Network, type NetworkOptions } from "./network.ts";

export type ElectionFactory = (config: ElectionConfig, persisted: HardState, rng: Prng) => ElectionCore;

export interface NodeSpec {
  id: NodeId;
  witness: boolean;
  priority: number;
  /** Clock rate error, see clock.ts. */
  drift: number;
  firstTickUnits: number;
  /** A spare: boots in join mode (ElectionConfig.join) and holds no list until a leader's lists it. */
  join?: boolean;
  /** This node's own bootstrap list; by default every node that is not a spare, by `witness`. */
  bootstrap?: BootstrapList;
}

export interface BootstrapList {
  members: readonly NodeId[];
  witnesses: readonly NodeId[];
}

export interface ClusterOptions {
  rng: Prng;
  nodes: readonly NodeSpec[];
  electionTimeoutTicks: number;
  heartbeatIntervalTicks: number;
  leaseTicks: number;
  preVote: boolean;
  checkQuorum: boolean;
  network: NetworkOptions;
  createElection: ElectionFactory;
  /**
   * Start every node as if the cluster had already agreed on its list (version 1 on disk), so a scenario
   * about elections does not begin with the bootstrap exchange. Without it nodes bootstrap as in life.
   */
  bootstrapped?: boolean;
  /** Receives transcript lines; without it none are formatted. */
  log?: (line: string) => void;
  /** Also log every delivered message (long). */
  logMessages?: boolean;
  /** Every event a node emits, as the shell would log it. */
  onEvent?: (id: NodeId, event: ElectionEvent) => void;
}

interface SimNode {
  readonly spec: NodeSpec;
  readonly config: ElectionConfig;
  readonly clock: NodeClock;
  readonly disk: SimDisk;
  /** null while crashed. */
  core: ElectionCore | null;
  boots: number;
  /** End of the current stall; 0 when running. Cleared only by the wake-up, which catches up first. */
  pausedUntilUnits: number;
  /** Messages that arrived while the node was stalled, stepped in arrival order when it wakes. */
  inbox: Envelope<ElectionMessage>[];
  /** Peers whose links closed while the node was stalled, told after its messages when it wakes. */
  disconnects: NodeId[];
  /** Drain operations left before a torn-drain crash; null when none is armed. */
  crashAfterOps: number | null;
}

/** One leader that every live node knows. */
export interface LeaderAgreement {
  leaderId: NodeId;
  term: Term;
}

export interface AgreementWait {
  ticksMax: number;
  accept?: (a: LeaderAgreement) => boolean;
  among?: readonly NodeId[];
}

export class Cluster {
  readonly network: Network<ElectionMessage>;
  readonly checker: ElectionSafetyChecker;
  readonly ids: readonly NodeId[];
  nowUnits = 0;
  eventsProcessed = 0;
  private readonly options: ClusterOptions;
  private readonly nodes = new Map<NodeId, SimNode>();
  private readonly log: ((line: string) => void) | undefined;
  /** Closed links on their way to the far end: `to` hears that its link to `peer` closed. */
  private readonly linkCloses = new EventQueue<{ to: NodeId; peer: NodeId }>();

  constructor(options: ClusterOptions) {
    this.options = options;
    this.log = options.log;
    this.ids = options.nodes.map((n) => n.id);
    const clusterList: BootstrapList = {
      members: options.nodes.filter((n) => !n.join && !n.witness).map((n) => n.id),
      witnesses: options.nodes.filter((n) => !n.join && n.witness).map((n) => n.id),
    };
    this.checker = new ElectionSafetyChecker(clusterList.witnesses);
    this.network = new Network(this.ids, options.network, options.rng.fork("network"));
    for (const spec of options.nodes) {
      const config = this.electionConfig(spec, spec.bootstrap ?? clusterList);
      const bootstrapped = options.bootstrapped === true && spec.join !== true;
      const node: SimNode = {
        spec,
        config,
        clock: new NodeClock({ drift: spec.drift, firstTickUnits: spec.firstTickUnits }),
        disk: new SimDisk(bootstrapped ? bootstrappedState(config) : emptyHardState),
        core: null,
        boots: 0,
        pausedUntilUnits: 0,
        inbox: [],
        disconnects: [],
        crashAfterOps: null,
      };
      this.nodes.set(spec.id, node);
      this.boot(node);
    }
    this.check();
  }

  /** Processes every event due up to and including `untilUnits`, then sets the clock there. */
  runUntil(untilUnits: number): void {
    for (;;) {
      const next = this.nextEvent();
      if (next.atUnits > untilUnits) break;
      this.nowUnits = next.atUnits;
      if (next.node !== null) this.wake(next.node);
      else if (next.linkClose) {
        const close = this.linkCloses.pop()!;
        this.disconnect(close.to, close.peer);
      } else this.deliver(this.network.popDue(this.nowUnits));
      this.eventsProcessed++;
      this.check();
    }
    this.nowUnits = untilUnits;
  }

  runTicks(ticks: number): void {
    this.runUntil(this.nowUnits + ticks * unitsPerTick);
  }

  /**
   * Runs (checking once per nominal tick) until the live nodes of `among` (all by default) know one leader
   * that `accept` approves, or `ticksMax` pass; returns that agreement, or null.
   */
  runUntilAgreement(o: AgreementWait): LeaderAgreement | null {
    const endUnits = this.nowUnits + o.ticksMax * unitsPerTick;
    const accept = o.accept ?? (() => true);
    for (;;) {
      const agreed = this.leaderAgreement(o.among);
      if (agreed !== null && accept(agreed)) return agreed;
      if (this.nowUnits >= endUnits) return null;
      this.runUntil(Math.min(endUnits, this.nowUnits + unitsPerTick));
    }
  }

  isAlive(id: NodeId): boolean {
    return this.node(id).core !== null;
  }

  status(id: NodeId): ElectionStatus | null {
    return this.node(id).core?.status() ?? null;
  }

  durableState(id: NodeId): HardState {
    return this.node(id).disk.durableState;
  }

  spec(id: NodeId): NodeSpec {
    return this.node(id).spec;
  }

  /** One leader, with every live node of `among` agreeing on it and on its term; null otherwise. */
  leaderAgreement(among: readonly NodeId[] = this.ids): LeaderAgreement | null {
    let agreed: LeaderAgreement | null = null;
    for (const id of among) {
      const node = this.node(id);
      if (node.core === null) continue;
      const s = node.core.status();
      if (s.leaderId === null) return null;
      if (agreed === null) agreed = { leaderId: s.leaderId, term: s.term };
      if (s.leaderId !== agreed.leaderId || s.term !== agreed.term) return null;
    }
    if (agreed === null) return null;
    const leader = this.nodes.get(agreed.leaderId)?.core?.status();
    return leader?.role === "leader" ? agreed : null;
  }

  /** `closesLinks`: the process died and its sockets closed (kill -9), rather than its machine (power). */
  crash(id: NodeId, closesLinks = false): void {
    const node = this.node(id);
    if (node.core === null) return;
    node.core = null;
    node.disk.crash();
    node.inbox = [];
    node.disconnects = [];
    node.pausedUntilUnits = 0;
    node.crashAfterOps = null;
    this.line(
      `${id} crash (disk term=${node.disk.durableState.term} vote=${node.disk.durableState.votedFor})` +
        (closesLinks ? ", its links close" : ""),
    );
    if (!closesLinks) return;
    for (const peer of this.ids) {
      if (peer !== id)
        this.linkCloses.push(this.network.closeArrivalUnits(id, peer, this.nowUnits), { to: peer, peer: id });
    }
  }

  /** `id` hears that its link to `peer` closed (a crash, or a reset while both live). */
  disconnect(id: NodeId, peer: NodeId): void {
    const node = this.node(id);
    if (node.core === null) return;
    if (node.pausedUntilUnits > 0) {
      node.disconnects.push(peer);
      return;
    }
    this.line(`${id} link to ${peer} closed`);
    node.core.peerDisconnected(peer);
    this.drain(node);
    this.check();
  }

  /** Arms a crash inside this node's next drain, after `ops` of its write/fsync/send operations. */
  crashAtDrainStep(id: NodeId, ops: number): void {
    const node = this.node(id);
    if (node.core !== null) node.crashAfterOps = ops;
  }

  disarmTornCrash(id: NodeId): void {
    this.node(id).crashAfterOps = null;
  }

  restart(id: NodeId): void {
    const node = this.node(id);
    if (node.core !== null) return;
    node.clock.restartAt(this.nowUnits);
    this.boot(node);
    this.check();
  }

  /** Stalls a node (GC pause, CPU starvation, SIGSTOP) for `ticks` nominal ticks. */
  pause(id: NodeId, ticks: number): void {
    const node = this.node(id);
    if (node.core === null) return;
    node.pausedUntilUnits = Math.max(node.pausedUntilUnits, this.nowUnits + ticks * unitsPerTick);
    this.line(`${id} pause ${ticks} ticks`);
  }

  campaign(id: NodeId): void {
    const node = this.live(id);
    node.core.campaign();
    this.drain(node);
    this.check();
  }

  transferLeadership(id: NodeId, to: NodeId): void {
    const node = this.live(id);
    node.core.transferLeadership(to);
    this.drain(node);
    this.check();
  }

  /** Runs a local input on `id`'s core (a shell's call, e.g. setGrantTailMs), then drains it. */
  input(id: NodeId, apply: (core: ElectionCore) => void): void {
    const node = this.live(id);
    apply(node.core);
    this.drain(node);
    this.check();
  }

  /** Asks `id` for one membership change; the answer goes to the transcript too. */
  propose(id: NodeId, change: MembershipChange): ProposeResult {
    const node = this.live(id);
    const result = node.core.proposeMembership(change);
    const answer = result.ok ? `ok v${result.version}` : `refused (${result.reason})`;
    this.line(`${id} propose ${formatChange(change)}: ${answer}`);
    this.drain(node);
    this.check();
    return result;
  }

  /** Writes a line to the transcript (faults decided outside the cluster use it too). */
  line(text: string): void {
    this.log?.(`[${(this.nowUnits / unitsPerTick).toFixed(3).padStart(9)}] ${text}`);
  }

  private electionConfig(spec: NodeSpec, list: BootstrapList): ElectionConfig {
    const priorities: Record<NodeId, number> = {};
    for (const id of [...list.members, ...list.witnesses]) {
      priorities[id] = this.options.nodes.find((n) => n.id === id)?.priority ?? 0;
    }
    return {
      selfId: spec.id,
      members: spec.join === true ? [] : list.members,
      witnesses: spec.join === true ? [] : list.witnesses,
      priorities: spec.join === true ? {} : priorities,
      ...(spec.join === true ? { join: true } : {}),
      electionTimeoutTicks: this.options.electionTimeoutTicks,
      heartbeatIntervalTicks: this.options.heartbeatIntervalTicks,
      leaseTicks: this.options.leaseTicks,
      preVote: this.options.preVote,
      checkQuorum: this.options.checkQuorum,
    };
  }

  private boot(node: SimNode): void {
    node.boots++;
    const rng = this.options.rng.fork(`node/${node.spec.id}/boot/${node.boots}`);
    const persisted = node.disk.load();
    node.core = this.options.createElection(node.config, persisted, rng);
    this.line(`${node.spec.id} boot #${node.boots} (term=${persisted.term} vote=${persisted.votedFor})`);
    this.drain(node);
  }

  private nextEvent(): { atUnits: number; node: SimNode | null; linkClose: boolean } {
    let best: { atUnits: number; node: SimNode | null; linkClose: boolean } = {
      atUnits: this.network.peekUnits(),
      node: null,
      linkClose: false,
    };
    if (this.linkCloses.peekUnits() < best.atUnits) {
      best = { atUnits: this.linkCloses.peekUnits(), node: null, linkClose: true };
    }
    for (const node of this.nodes.values()) {
      if (node.core === null) continue;
      const atUnits = node.pausedUntilUnits > 0 ? node.pausedUntilUnits : node.clock.nextTickUnits;
      if (atUnits < best.atUnits) best = { atUnits, node, linkClose: false };
    }
    return best;
  }

  /** A node's timer fired or its stall ended: deliver its due ticks in one batch, then what queued. */
  private wake(node: SimNode): void {
    const core = node.core!;
    node.pausedUntilUnits = 0;
    const due = node.clock.takeDue(this.nowUnits);
    for (let i = 0; i < due; i++) core.tick();
    if (due > 1) this.line(`${node.spec.id} catches up ${due} ticks`);
    this.drain(node);
    const inbox = node.inbox;
    node.inbox = [];
    for (const envelope of inbox) {
      if (node.core === null) return;
      this.stepInto(node, envelope);
    }
    const disconnects = node.disconnects;
    node.disconnects = [];
    for (const peer of disconnects) this.disconnect(node.spec.id, peer);
  }

  private deliver(envelope: Envelope<ElectionMessage> | undefined): void {
    if (envelope === undefined) return;
    const node = this.node(envelope.to);
    if (node.core === null) return;
    if (node.pausedUntilUnits > 0) {
      node.inbox.push(envelope);
      return;
    }
    this.stepInto(node, envelope);
  }

  private stepInto(node: SimNode, envelope: Envelope<ElectionMessage>): void {
    if (this.log && this.options.logMessages) {
      this.line(`${envelope.from}->${envelope.to} ${formatMessage(envelope.message)}`);
    }
    node.core!.step(envelope);
    this.drain(node);
  }

  private drain(node: SimNode): void {
    const core = node.core;
    if (core === null) return;
    const id = node.spec.id;
    drainCore(id, core, node.disk, this.checker, {
      crashesHere: () => this.tornHere(node),
      send: (envelope) => this.network.send(envelope, this.nowUnits),
      emitted: (events) => {
        if (this.log) for (const event of events) this.line(`${id} ${formatEvent(event)}`);
        if (this.options.onEvent) for (const event of events) this.options.onEvent(id, event);
      },
    });
  }

  /** Counts one drain operation against an armed torn-drain crash; true when the node just crashed. */
  private tornHere(node: SimNode): boolean {
    if (node.crashAfterOps === null) return false;
    if (node.crashAfterOps > 0) {
      node.crashAfterOps--;
      return false;
    }
    this.line(`${node.spec.id} crash inside a drain`);
    this.crash(node.spec.id);
    return true;
  }

  private check(): void {
    const statuses: ElectionStatus[] = [];
    for (const node of this.nodes.values()) {
      // A stalled node acts on nothing; it is checked once it has caught up its ticks.
      if (node.core !== null && node.pausedUntilUnits === 0) statuses.push(node.core.status());
    }
    try {
      this.checker.checkAfterEvent(statuses);
    } catch (error) {
      if (error instanceof SafetyViolationError) this.line(`VIOLATION ${error.message}`);
      throw error;
    }
  }

  private node(id: NodeId): SimNode {
    const node = this.nodes.get(id);
    if (node === undefined) throw new Error(`unknown node ${id}`);
    return node;
  }

  private live(id: NodeId): SimNode & { core: ElectionCore } {
    const node = this.node(id);
    if (node.core === null) throw new Error(`node ${id} is down`);
    return node as SimNode & { core: ElectionCore };
  }
}

export function formatMessage(m: ElectionMessage): string {
  switch (m.type) {
    case "pre-vote":
    case "timeout-now":
      return `${m.type} term=${m.term}`;
    case "vote":
      return `vote term=${m.term}${m.transfer ? " transfer" : ""}`;
    case "pre-vote-response":
    case "vote-response":
      return `${m.type} term=${m.term} ${m.granted ? "granted" : "rejected"}`;
    case "heartbeat":
    case "heartbeat-response":
      return `${m.type} term=${m.term} seq=${m.seq}`;
  }
}

export function formatEvent(e: ElectionEvent): string {
  switch (e.type) {
    case "role-changed":
      return `role-changed term=${e.term} role=${e.role} leader=${e.leaderId ?? "-"} (${e.reason})`;
    case "term-changed":
      return `term-changed ${e.from}->${e.term} (${e.reason})`;
    case "vote-granted":
      return `${e.preVote ? "pre-vote" : "vote"}-granted term=${e.term} to=${e.to}`;
    case "vote-rejected":
      return `${e.preVote ? "pre-vote" : "vote"}-rejected term=${e.term} to=${e.to} (${e.reason})`;
    case "lease-lost":
      return `lease-lost term=${e.term}`;
    case "transfer-started":
      return `transfer-started term=${e.term} to=${e.to}`;
    case "membership-adopted":
      return `membership-adopted term=${e.term} v${e.version} from=${e.from}`;
    case "membership-committed":
      return `membership-committed term=${e.term} v${e.version}`;
    case "membership-mismatch":
      return `membership-mismatch term=${e.term} peer=${e.peer} (${e.detail})`;
    case "removed":
      return `removed term=${e.term} v${e.version}`;
  }
}

export function formatChange(c: MembershipChange): string {
  switch (c.type) {
    case "add": {
      const n = c.node;
      return `add ${n.id}${n.role === "witness" ? " witness" : ""} priority=${n.priority}${n.autoPromote ? " auto-promote" : ""}`;
    }
    case "update": {
      const fields = [
        c.role === undefined ? "" : ` role=${c.role}`,
        c.priority === undefined ? "" : ` priority=${c.priority}`,
        c.address === undefined ? "" : ` address=${c.address}`,
      ];
      return `update ${c.id}${fields.join("")}`;
    }
    default:
      return `${c.type} ${c.id}`;
  }
}
