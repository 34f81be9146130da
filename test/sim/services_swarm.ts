// A deterministic simulation of services: the real election cores (src/core/election.ts, run by
// test/sim/cluster.ts exactly as there) elect leaders over the simulated network; on every node the real
// GrantService (src/cluster/grant_service.ts, both sides: the leader's ledger and the holder's requests,
// deadlines and fence checks), the real ServiceRunner (src/services/service_runner.ts) and, on the leader,
// the real PlacementLoop (src/services/placement_loop.ts, deciding with src/core/placement.ts) run on
// injected clocks, timers and a fake mesh whose messages cross a second simulated network (same delays and
// loss, the same partitions). Only the glue of src/services/services_node.ts (reports, tables, the placement
// ticker; it takes no timers or clock) and src/cluster/cluster.ts (leadership view, members, liveness) is
// re-implemented here, each step quoting the rule it models.
//
// Faults: 3..5 nodes crash (the machine: its services die with it) and restart, partitions (one node
// isolated, or a random split; symmetric or one-way) cut both networks, messages are delayed and lost,
// clocks run at rates up to 1 % apart (test/sim/clock.ts drift), and every runner timer fires late (up to
// 30 ms, one in ten up to 300 ms). Then everything heals.
//
// Checks, the seed printed with any failure:
// 1. Safety: never two nodes running one service at overlapping moments of global time. A node counts as
//    running a service from the moment one of its driver start steps begins until its last stop step ends
//    (or the machine crashes).
// 2. Liveness: once the network healed and every node is back, the cluster must agree on a leader within
//    30 election timeouts (as swarm.ts asks) and from then on every service runs (a runner reports running)
//    within livenessBoundMs (see there for the sum).
// 3. Failback only in an open restore window (global-time intervals fed to placement's openWindow), and
//    at most once per window for one leader's placement loop (failbackSpentIn). The spent window travels
//    in the table (failbackIn), so a later leader does not move it home again; what is left are failbacks
//    decided by a leader whose table reached no one (cut off just then): counted and reported
//    (`repeatedFailbacks`), not failed, since the service itself moved home once.
//
// Assumptions (the runner's own, which the simulation respects rather than tests): a driver stop step
// takes at most stopStepMsMax and a start step at most startStepMsMax, and timers fire at most
// lateMsMax late; a stop that begins when the grant reaches its stop budget (late) must end before the
// leader's lapse, i.e. lateMsMax + drivers × stopStepMsMax < 0.44 × the shortest lease (src/core/grants.ts
// renewalPeriodMs): 300 + 2 × 60 < 440 for the 1 s lease of failover_after_ms 1000. A process stall
// (the agent frozen while its services keep running) and an agent killed while its services survive are
// not modelled: both break the runner's rule by construction until the agent runs (or probes) again.
import { parseArgs } from "node:util";
import { pino } from "pino";
import type { LeadershipView } from "../../src/cluster/coordination.ts";
import { type GrantElection, GrantService } from "../../src/cluster/grant_service.ts";
import { grantAnswerWindowTicks, grantLeaseMsDefault } from "../../src/cluster/index.ts";
import type { ServiceConfig } from "../../src/config/index.ts";
import { Election } from "../../src/core/election.ts";
import type { ElectionEvent, ElectionMessage } from "../../src/core/election_types.ts";
import { clockMarginDefault, type LeaderContact, renewalPeriodMs } from "../../src/core/grants.ts";
import type { MemberSpec } from "../../src/core/membership.ts";
import { Prng } from "../../src/core/prng.ts";
import type { NodeId } from "../../src/core/types.ts";
import type { RequestHandler } from "../../src/mesh/types.ts";
import type { Driver, DriverContext } from "../../src/services/exec_driver.ts";
import { type NodeReport, PlacementLoop } from "../../src/services/placement_loop.ts";
import { type RunnerReport, ServiceRunner, serviceLeaseMs } from "../../src/services/service_runner.ts";
import { placementEveryMs, reportEveryMs } from "../../src/services/services_node.ts";
import type { ServiceTableEntry } from "../../src/services/services_wire.ts";
import { serviceConfig } from "../support/service_config.ts";
import { unitsPerTick } from "./clock.ts";
import { Cluster, type ElectionFactory, type NodeSpec } from "./cluster.ts";
import { EventQueue } from "./event_queue.ts";
import { Network, type NetworkOptions, PartitionSymmetry, quietNetworkOptions } from "./network.ts";
import { convergenceTimeouts } from "./swarm.ts";

/** The lan and fast presets (src/config/timings.ts) tick every 50 ms: one nominal tick. */
const tickMs = 50;
const unitsPerMs = unitsPerTick / tickMs;
/** The grants' lease, the agent's own. */
const leaseMs = grantLeaseMsDefault;
/** The failure detector (lan): alive until 3 heartbeat intervals of 250 ms pass unheard. */
const suspectAfterMs = 3 * 250;
const lateMsMax = 300;
const startStepMsMax = 300;
const stopStepMsMax = 60;
const driversMax = 2;

const logger = pino({ level: "silent" });

/** election_runner.ts ticksAgoMs: whole ticks ago is at least this many ms of the node's clock. */
function ticksAgoMs(ticks: number): number {
  return Math.max(0, ticks - 1) * tickMs;
}

export class ServicesSimError extends Error {
  override name = "ServicesSimError";
  readonly seed: string;
  constructor(seed: string, what: string) {
    super(`seed=${seed} ${what}\n  replay: npm run sim -- --services --seed ${seed} --verbose`);
    this.seed = seed;
  }
}

export interface ServicesHistoryResult {
  seed: string;
  nodes: number;
  services: number;
  events: number;
  /** Runs of any service on any node. */
  runs: number;
  leaderTerms: number;
  crashes: number;
  failbacks: number;
  /** Failbacks in a window some earlier leader had already failed the service back in. */
  repeatedFailbacks: number;
  /** Slowest (ms) from the healed cluster's agreed leader to every service running. */
  livenessMs: number;
  /** New leaders whose inherited window the votes bounded; and those with the widest one. */
  boundedWindows: number;
  widestWindows: number;
  livenessBoundMs: number;
}

interface ServicesTable {
  term: number;
  services: Record<string, ServiceTableEntry>;
  drained: NodeId[];
}

type ServiceMessage =
  | { type: "request"; id: number; channel: string; payload: Uint8Array; fromBoot: number }
  | { type: "reply"; id: number; payload: Uint8Array; toBoot: number }
  | { type: "report"; services: Record<string, RunnerReport> }
  | { type: "table"; table: ServicesTable };

/** One life of the agent on a node: everything here dies with a crash. */
interface Agent {
  id: NodeId;
  boot: number;
  grants: GrantService;
  handlers: Map<string, RequestHandler>;
  runners: Map<string, ServiceRunner>;
  drivers: SimDriver[];
  loop: PlacementLoop | null;
  deciding: boolean;
  placementTimer: number | null;
  /** services_node.ts firstRoundPending: a new leader's first round runs once every reachable member reported. */
  firstRoundPending: boolean;
  /** services_node.ts dueRound: a round when a decision changes by itself, if sooner than the period. */
  dueRound: number | null;
  reports: Map<NodeId, NodeReport>;
  table: ServicesTable;
  sent: { text: string; atMs: number };
  /** On this node's clock, when each peer was last heard (any frame, as src/cluster/health_runner.ts). */
  lastHeardMs: Map<NodeId, number>;
  lastLeader: NodeId | null | undefined;
}

interface Run {
  node: NodeId;
  service: string;
  fromUnits: number;
  toUnits: number;
}

class SimDriver implements Driver {
  readonly kind: string;
  active = false;
  readonly sim: ServicesSim;
  readonly agent: () => Agent;
  readonly service: string;
  constructor(sim: ServicesSim, agent: () => Agent, service: string, index: number) {
    this.sim = sim;
    this.agent = agent;
    this.service = service;
    this.kind = `sim${index}`;
  }
  start(_context: DriverContext): Promise<boolean> {
    if (!this.active) {
      this.active = true;
      this.sim.driverUp(this.agent().id, this.service);
    }
    return this.sim.step(this.agent(), this.sim.stepMs(startStepMsMax));
  }
  async stop(_context: DriverContext): Promise<boolean> {
    const ok = await this.sim.step(this.agent(), this.sim.stepMs(stopStepMsMax));
    // A machine that crashed meanwhile took the service down with it (ServicesSim.crash).
    if (this.active && this.sim.agents.get(this.agent().id) === this.agent()) {
      this.active = false;
      this.sim.driverDown(this.agent().id, this.service);
    }
    return ok;
  }
  status(_context: DriverContext): Promise<"running" | "stopped"> {
    return Promise.resolve(this.active ? "running" : "stopped");
  }
}

interface Timer {
  agent: Agent;
  callback: () => void;
}

type SimEvent = { kind: "timer"; token: number } | { kind: "fault" } | { kind: "heal" };

class ServicesSim {
  readonly rng: Prng;
  readonly cluster: Cluster;
  readonly ids: NodeId[];
  readonly agents = new Map<NodeId, Agent>();
  readonly net: Network<ServiceMessage>;
  readonly queue = new EventQueue<SimEvent>();
  readonly services: ServiceConfig[];
  private readonly drifts = new Map<NodeId, number>();
  private readonly offsets = new Map<NodeId, number>();
  private readonly timers = new Map<number, Timer>();
  private tokenNext = 0;
  private requestNext = 0;
  private readonly pending = new Map<
    number,
    { agent: Agent; resolve: (p: Uint8Array) => void; reject: (e: Error) => void; timer: number }
  >();
  /** Per node, the table last saved (services.json in the data directory): it survives a crash. */
  private readonly saved = new Map<NodeId, ServicesTable>();
  /** node/service → drivers up there, and since when. */
  private readonly up = new Map<string, { count: number; sinceUnits: number }>();
  readonly runs: Run[] = [];
  /** node/service pairs whose runner reports running. */
  readonly running = new Set<string>();
  readonly windows = new Map<string, { phaseMs: number; periodMs: number; lengthMs: number }>();
  readonly failbacks: Array<{ service: string; window: string | null; term: number; atUnits: number }> = [];
  private readonly log: ((line: string) => void) | undefined;
  /** Each node's core, and the granted votes of its newest campaign (election_runner.ts noteVote). */
  private readonly cores = new Map<NodeId, Election>();
  private readonly votes = new Map<NodeId, { term: number; contacts: Map<NodeId, LeaderContact | null> }>();
  /** cluster.ts: the leader answers grants within this many ticks of an acknowledged heartbeat. */
  private readonly answerWindowTicks: number;
  events = 0;
  crashes = 0;
  /** Leaders whose votes bounded the inherited window (contacts with a tail), and those that fell back. */
  boundedWindows = 0;
  widestWindows = 0;
  private partitioned = false;

  constructor(
    rng: Prng,
    specs: NodeSpec[],
    network: NetworkOptions,
    timings: Timings,
    services: ServiceConfig[],
    log?: (line: string) => void,
  ) {
    this.rng = rng;
    this.log = log;
    this.ids = specs.map((s) => s.id);
    this.services = services;
    this.answerWindowTicks = grantAnswerWindowTicks({
      leaderHeartbeatTicks: timings.heartbeatIntervalTicks,
      leaseTicks: timings.leaseTicks,
    });
    for (const s of specs) {
      this.drifts.set(s.id, s.drift);
      this.offsets.set(s.id, rng.next() * 1e6);
    }
    // The real core, with every delivered message noted as heard from its sender (any frame counts).
    const createElection: ElectionFactory = (config, persisted, coreRng) => {
      const core = new Election(config, persisted, coreRng);
      this.cores.set(config.selfId, core);
      this.votes.delete(config.selfId);
      const step = core.step.bind(core);
      core.step = (envelope) => {
        this.heard(config.selfId, envelope.from);
        if (envelope.message.type === "vote-response")
          this.noteVote(config.selfId, envelope.from, envelope.message);
        step(envelope);
      };
      return core;
    };
    this.net = new Network(this.ids, { ...network, duplicateProbability: 0 }, rng.fork("services-net"));
    this.cluster = new Cluster({
      rng: rng.fork("cluster"),
      nodes: specs,
      electionTimeoutTicks: timings.electionTimeoutTicks,
      heartbeatIntervalTicks: timings.heartbeatIntervalTicks,
      leaseTicks: timings.leaseTicks,
      preVote: true,
      checkQuorum: true,
      bootstrapped: true,
      network,
      createElection,
      log,
      onEvent: (id, event) => this.electionEvent(id, event),
    });
    for (const id of this.ids) this.startAgent(id);
  }

  get nowUnits(): number {
    return this.cluster.nowUnits;
  }

  nowMs(): number {
    return this.nowUnits / unitsPerMs;
  }

  /** A node's monotonic clock, ms: its own offset and rate (drift +1 % runs 1 % slow, as its ticks). */
  local(id: NodeId): number {
    return (this.offsets.get(id) as number) + this.nowMs() / (1 + (this.drifts.get(id) as number));
  }

  line(text: string): void {
    if (this.log) this.cluster.line(text);
  }

  lateMs(): number {
    return this.rng.next() * (this.rng.chance(0.1) ? lateMsMax : lateMsMax / 10);
  }

  stepMs(maxMs: number): number {
    return 1 + this.rng.next() * (maxMs - 1);
  }

  /** A timer of `agent` after `delayMs` of its clock, plus lateness when `late`. */
  timer(agent: Agent, delayMs: number, callback: () => void, late = true): number {
    const realMs = delayMs * (1 + (this.drifts.get(agent.id) as number)) + (late ? this.lateMs() : 0);
    const token = ++this.tokenNext;
    this.timers.set(token, { agent, callback });
    this.queue.push(this.nowUnits + Math.max(1, Math.ceil(realMs * unitsPerMs)), { kind: "timer", token });
    return token;
  }

  cancel(token: unknown): void {
    this.timers.delete(token as number);
  }

  /** A driver step of `agent` that takes `ms`; never resolves if the machine crashes meanwhile. */
  step(agent: Agent, ms: number): Promise<boolean> {
    return new Promise((resolve) => this.timer(agent, ms, () => resolve(true), false));
  }

  driverUp(node: NodeId, service: string): void {
    const key = `${node}/${service}`;
    const entry = this.up.get(key) ?? { count: 0, sinceUnits: this.nowUnits };
    if (entry.count === 0) {
      entry.sinceUnits = this.nowUnits;
      this.line(`${node} starts ${service}`);
    }
    entry.count++;
    this.up.set(key, entry);
  }

  driverDown(node: NodeId, service: string): void {
    const key = `${node}/${service}`;
    const entry = this.up.get(key);
    if (entry === undefined || entry.count === 0) return;
    entry.count--;
    if (entry.count === 0) {
      this.runs.push({ node, service, fromUnits: entry.sinceUnits, toUnits: this.nowUnits });
      this.line(`${node} stopped ${service}`);
    }
  }

  // --- src/cluster/cluster.ts, as the Coordination the services use -------------------------------------

  leadership(id: NodeId): LeadershipView {
    const s = this.cluster.status(id);
    if (s === null) return { leaderId: null, term: 0, role: "follower", leaseValid: false };
    return { leaderId: s.leaderId, term: s.term, role: s.role, leaseValid: s.leaseValid };
  }

  members(id: NodeId): readonly MemberSpec[] {
    return this.cluster.status(id)?.membership.config?.nodes ?? [];
  }

  /** memberLiveness: 0 while the detector holds a peer alive (heard within suspectAfterMs), else the silence. */
  liveness(agent: Agent): Array<{ id: NodeId; unreachableMs: number }> {
    const now = this.local(agent.id);
    return this.members(agent.id).map(({ id }) => {
      if (id === agent.id) return { id, unreachableMs: 0 };
      const heard = agent.lastHeardMs.get(id);
      if (heard === undefined) return { id, unreachableMs: Number.POSITIVE_INFINITY };
      const silence = now - heard;
      return { id, unreachableMs: silence < suspectAfterMs ? 0 : silence };
    });
  }

  // --- election_runner.ts: the contacts votes carry, the advertised tail ----------------------------------

  /** noteVote: a granted vote's contacts on the candidate's clock (ticks → ms as wireForm sends them). */
  private noteVote(id: NodeId, from: NodeId, vote: ElectionMessage): void {
    if (vote.type !== "vote-response" || !vote.granted) return;
    let votes = this.votes.get(id);
    if (votes !== undefined && vote.term < votes.term) return;
    if (votes === undefined || votes.term !== vote.term) {
      votes = { term: vote.term, contacts: new Map() };
      this.votes.set(id, votes);
    }
    const ticks = vote.leaderHeardTicksAgo;
    votes.contacts.set(
      from,
      ticks === undefined
        ? null
        : { atMs: this.local(id), heardMsAgo: ticksAgoMs(ticks), tailMs: vote.grantTailMs ?? null },
    );
  }

  /** The GrantElection of `id`'s agent, as cluster.ts builds it over the ElectionRunner. */
  grantElection(id: NodeId, agent: () => Agent): GrantElection {
    const core = () => this.cores.get(id) as Election;
    const fresh = () => {
      const age = core().leaseAgeTicks();
      return age !== null && age < this.answerWindowTicks;
    };
    /** election_runner.ts leaderUntil: true once `holds`, false after `timeoutMs` or when no longer leader. */
    const until = (holds: () => boolean, timeoutMs: number) =>
      new Promise<boolean>((resolve) => {
        const untilMs = this.local(id) + timeoutMs;
        const check = () => {
          if (core().status().role === "leader" && holds()) resolve(true);
          else if (this.local(id) >= untilMs || core().status().role !== "leader") resolve(false);
          else this.timer(agent(), 1, check, false);
        };
        check();
      });
    /** A call from inside a drain's events (leadershipChanged) waits for the drain: it goes next. */
    const input = (apply: () => void) =>
      void this.timer(
        agent(),
        0,
        () => {
          if (this.cluster.isAlive(id) && this.agents.get(id) === agent()) this.cluster.input(id, apply);
        },
        false,
      );
    return {
      answerWindowMs: this.answerWindowTicks * tickMs,
      fresh,
      freshen: (timeoutMs) => {
        if (fresh()) return Promise.resolve(true);
        input(() => core().heartbeatNow());
        return until(fresh, timeoutMs);
      },
      // noteWon, read when the grant service asks (later than the win only makes the bound later).
      contactsWhenWon: (term) => {
        const own = core().contactsWhenWon();
        if (own === null || core().status().term !== term) return null;
        const contacts: LeaderContact[] = [
          { atMs: this.local(id), heardMsAgo: ticksAgoMs(own.leaderHeardTicksAgo), tailMs: own.grantTailMs },
        ];
        const votes = this.votes.get(id);
        for (const voter of own.grantedBy) {
          const contact = votes?.term === term ? votes.contacts.get(voter) : undefined;
          if (contact === undefined || contact === null) {
            this.widestWindows++;
            return null;
          }
          contacts.push(contact);
        }
        if (contacts.every((c) => c.tailMs !== null)) this.boundedWindows++;
        else this.widestWindows++;
        return contacts;
      },
      advertise: (tailMs) => input(() => core().setGrantTailMs(Math.ceil(tailMs))),
      acknowledgedTailMs: () => core().acknowledgedGrantTailMs(),
      tailAcknowledged: (tailMs, timeoutMs) =>
        until(() => (core().acknowledgedGrantTailMs() ?? -1) >= tailMs, timeoutMs),
    };
  }

  private heard(id: NodeId, from: NodeId): void {
    this.agents.get(id)?.lastHeardMs.set(from, this.local(id));
  }

  /** election_runner.ts emits leader:changed when the leader it knows changes; cluster.ts passes it on. */
  private electionEvent(id: NodeId, _event: ElectionEvent): void {
    this.checkLeader(id);
  }

  checkLeader(id: NodeId): void {
    const agent = this.agents.get(id);
    if (agent === undefined || !this.cluster.isAlive(id)) return;
    const view = this.leadership(id);
    if (view.leaderId === agent.lastLeader) return;
    agent.lastLeader = view.leaderId;
    // cluster.ts: `this.grantService.leadershipChanged(view)`, then services_node.ts leadershipChanged().
    agent.grants.leadershipChanged(view);
    this.servicesLeadershipChanged(agent);
  }

  // --- the fake mesh -------------------------------------------------------------------------------------

  private request(agent: Agent, peer: NodeId, channel: string, payload: Uint8Array, timeoutMs: number) {
    return new Promise<Uint8Array>((resolve, reject) => {
      const id = ++this.requestNext;
      const timer = this.timer(agent, timeoutMs, () => {
        this.pending.delete(id);
        reject(new Error(`request to ${peer} timed out`));
      });
      this.pending.set(id, { agent, resolve, reject, timer });
      this.net.send(
        {
          from: agent.id,
          to: peer,
          message: { type: "request", id, channel, payload, fromBoot: agent.boot },
        },
        this.nowUnits,
      );
    });
  }

  deliver(from: NodeId, to: NodeId, message: ServiceMessage): void {
    const agent = this.agents.get(to);
    if (agent === undefined || !this.cluster.isAlive(to)) return;
    this.heard(to, from);
    if (message.type === "request") {
      const handler = agent.handlers.get(message.channel);
      if (handler === undefined) return;
      const answer = (payload: Uint8Array) =>
        this.net.send(
          {
            from: to,
            to: from,
            message: { type: "reply", id: message.id, payload, toBoot: message.fromBoot },
          },
          this.nowUnits,
        );
      const result = handler(from, message.payload);
      if (result instanceof Uint8Array) answer(result);
      else void result.then(answer);
    } else if (message.type === "reply") {
      const pending = this.pending.get(message.id);
      if (pending === undefined || pending.agent !== agent || agent.boot !== message.toBoot) return;
      this.pending.delete(message.id);
      this.cancel(pending.timer);
      pending.resolve(message.payload);
    } else if (message.type === "report") {
      // services_node.ts receive(): `if (this.loop !== null) this.reports.set(from, ...)`.
      if (agent.loop !== null)
        agent.reports.set(from, { services: message.services, receivedAtMs: this.local(to) });
      if (agent.firstRoundPending && this.everyReachableReported(agent)) void this.decide(agent);
    } else {
      // "Only the leader of the newest term places services."
      const table = message.table;
      if (table.term < agent.table.term || from !== this.leadership(to).leaderId) return;
      this.applyTable(agent, table);
    }
  }

  // --- one agent's life ------------------------------------------------------------------------------------

  private readonly boots = new Map<NodeId, number>();

  startAgent(id: NodeId): void {
    const boot = (this.boots.get(id) ?? 0) + 1;
    this.boots.set(id, boot);
    const handlers = new Map<string, RequestHandler>();
    let agent: Agent;
    const grants = new GrantService({
      selfId: id,
      mesh: {
        request: (peer, channel, payload, options) =>
          this.request(agent, peer, channel, payload, options?.timeoutMs ?? leaseMs / 4),
        onRequest: (channel, handler) => {
          handlers.set(channel, handler);
          return () => handlers.delete(channel);
        },
      },
      leadership: () => this.leadership(id),
      leaseMs,
      logger,
      now: () => this.local(id),
      election: this.grantElection(id, () => agent),
    });
    agent = {
      id,
      boot,
      grants,
      handlers,
      runners: new Map(),
      drivers: [],
      loop: null,
      deciding: false,
      placementTimer: null,
      firstRoundPending: false,
      dueRound: null,
      reports: new Map(),
      table: { term: 0, services: {}, drained: [] },
      sent: { text: "", atMs: Number.NEGATIVE_INFINITY },
      lastHeardMs: new Map(),
      lastLeader: undefined,
    };
    this.agents.set(id, agent);
    const self = this.members(id).find((m) => m.id === id);
    for (const service of this.services) {
      // services_node.ts: no runner on a witness, nor for a service this node may not run.
      if (self?.role === "witness" || (service.nodes !== null && !service.nodes.includes(id))) continue;
      const drivers: SimDriver[] = [];
      const count = 1 + (service.name.charCodeAt(service.name.length - 1) % driversMax);
      for (let i = 0; i < count; i++) drivers.push(new SimDriver(this, () => agent, service.name, i));
      agent.drivers.push(...drivers);
      const key = `${id}/${service.name}`;
      agent.runners.set(
        service.name,
        new ServiceRunner({
          service,
          nodeId: id,
          drivers,
          coordination: {
            leadership: () => this.leadership(id),
            acquireGrant: (name, ask) => grants.acquire(name, ask),
            releaseGrant: (grant) => grants.release(grant),
            checkFence: (held) => grants.checkFence(held),
          },
          leaseMs: serviceLeaseMs(service, leaseMs),
          logger,
          onReport: (report) => {
            if (this.agents.get(id) !== agent) return;
            if (report.state === "running") this.running.add(key);
            else this.running.delete(key);
            this.sendReport(agent);
          },
          timers: {
            setTimeout: (callback, delayMs) => this.timer(agent, delayMs, callback),
            clearTimeout: (handle) => this.cancel(handle),
          },
          wallClock: () => Math.round(this.nowMs()),
        }),
      );
    }
    // services_node.ts start(): probe every runner first (drivers of a crashed machine report stopped), then
    // reports every reportEveryMs, leadershipChanged(), sendReport().
    for (const runner of agent.runners.values()) void runner.probe();
    const report = () => {
      this.sendReport(agent);
      this.timer(agent, reportEveryMs, report);
    };
    this.timer(agent, reportEveryMs, report);
    this.checkLeader(id);
    this.sendReport(agent);
  }

  /** The machine goes down: its services with it, and everything the agent held in memory. */
  crash(id: NodeId, closesLinks: boolean): void {
    const agent = this.agents.get(id);
    this.cluster.crash(id, closesLinks);
    this.crashes++;
    if (agent === undefined) return;
    for (const driver of agent.drivers) {
      if (!driver.active) continue;
      driver.active = false;
      this.driverDown(id, driver.service);
    }
    for (const service of this.services) this.running.delete(`${id}/${service.name}`);
    agent.loop = null;
    this.agents.delete(id);
  }

  restart(id: NodeId): void {
    if (this.cluster.isAlive(id)) return;
    // The agent object is replaced first: the core's boot may already report a leader.
    this.cluster.restart(id);
    this.startAgent(id);
  }

  // --- src/services/services_node.ts ----------------------------------------------------------------------

  private servicesLeadershipChanged(agent: Agent): void {
    const view = this.leadership(agent.id);
    // services_node.ts: every runner claims its held grant from the new leader at once.
    for (const runner of agent.runners.values()) runner.leaderChanged();
    if (view.role === "leader" && agent.loop === null) {
      agent.reports.clear();
      const saved = this.saved.get(agent.id);
      agent.loop = new PlacementLoop({
        services: this.services,
        coordination: {
          members: () => this.members(agent.id),
          memberLiveness: () => this.liveness(agent),
          assignService: async (service, owner) => agent.grants.assign(service, owner),
          grants: () => agent.grants.grants(),
        },
        logger,
        now: () => this.local(agent.id),
        // The sim's windows are intervals of global time; the loop passes Date.now(), which is ignored.
        openWindow: (service) => this.openWindow(service.name),
        previousTable: () =>
          agent.table.term > 0
            ? agent.table.services
            : savedTable(saved ?? { term: 0, services: {}, drained: [] }),
        previousDrained: () => (agent.table.term > 0 ? agent.table.drained : (saved?.drained ?? [])),
      });
      // placement = ticker.every(placementEveryMs, decide)
      const tick = () => {
        if (agent.loop === null || this.agents.get(agent.id) !== agent) return;
        void this.decide(agent);
        agent.placementTimer = this.timer(agent, placementEveryMs, tick);
      };
      agent.placementTimer = this.timer(agent, placementEveryMs, tick);
      agent.firstRoundPending = true;
      // services_node.ts checkFirstRound: also every 50 ms (liveness changes without a report).
      const loop = agent.loop;
      const check = () => {
        if (agent.loop !== loop || !agent.firstRoundPending || this.agents.get(agent.id) !== agent) return;
        if (this.everyReachableReported(agent)) void this.decide(agent);
        else this.timer(agent, 50, check);
      };
      check();
    } else if (view.role !== "leader" && agent.loop !== null) {
      agent.loop = null;
      agent.firstRoundPending = false;
      if (agent.placementTimer !== null) this.cancel(agent.placementTimer);
      agent.placementTimer = null;
      if (agent.dueRound !== null) this.cancel(agent.dueRound);
      agent.dueRound = null;
    }
    this.sendReport(agent);
  }

  /** services_node.ts: the first round once every member it can reach (witnesses aside) reported. */
  private everyReachableReported(agent: Agent): boolean {
    const liveness = this.liveness(agent);
    return this.members(agent.id).every(
      (m) =>
        m.role === "witness" ||
        agent.reports.has(m.id) ||
        (liveness.find((l) => l.id === m.id)?.unreachableMs ?? 1) > 0,
    );
  }

  /** decide() + round(): one round at a time; the table applied here and sent to every other member. */
  private async decide(agent: Agent): Promise<void> {
    if (agent.deciding) return;
    const loop = agent.loop;
    if (loop === null) return;
    agent.firstRoundPending = false;
    agent.deciding = true;
    try {
      const services = await loop.round(agent.reports);
      if (agent.loop !== loop || this.agents.get(agent.id) !== agent) return;
      // services_node.ts scheduleDueRound().
      const inMs = loop.decideAgainInMs();
      if (inMs !== null && inMs < placementEveryMs && agent.dueRound === null) {
        agent.dueRound = this.timer(agent, Math.ceil(Math.max(0, inMs)) + 1, () => {
          agent.dueRound = null;
          if (agent.loop !== null && this.agents.get(agent.id) === agent) void this.decide(agent);
        });
      }
      const term = this.leadership(agent.id).term;
      for (const [service, entry] of Object.entries(services)) {
        if (entry.code !== "failback") continue;
        const window = this.openWindow(service);
        this.failbacks.push({ service, window, term, atUnits: this.nowUnits });
        this.line(`${agent.id} term=${term} fails ${service} back to ${entry.owner} in window ${window}`);
      }
      const table: ServicesTable = { term, services, drained: loop.drained() };
      this.applyTable(agent, table);
      const text = JSON.stringify(table);
      const now = this.local(agent.id);
      if (text === agent.sent.text && now - agent.sent.atMs < reportEveryMs) return;
      agent.sent = { text, atMs: now };
      for (const member of this.members(agent.id)) {
        if (member.id !== agent.id)
          this.net.send({ from: agent.id, to: member.id, message: { type: "table", table } }, this.nowUnits);
      }
    } catch {
      // "placement round failed" (a NotLeaderError from assignService after losing the lead).
    } finally {
      agent.deciding = false;
    }
  }

  private applyTable(agent: Agent, table: ServicesTable): void {
    const before = agent.table;
    agent.table = table;
    for (const [name, runner] of agent.runners) runner.assigned(table.services[name]?.owner === agent.id);
    this.saved.set(agent.id, table);
    if (this.log) {
      for (const [service, entry] of Object.entries(table.services)) {
        if (before.services[service]?.owner !== entry.owner)
          this.line(`${agent.id} table term=${table.term}: ${service} -> ${entry.owner} (${entry.code})`);
      }
    }
  }

  private sendReport(agent: Agent): void {
    if (this.agents.get(agent.id) !== agent || !this.cluster.isAlive(agent.id)) return;
    const services: Record<string, RunnerReport> = {};
    for (const [name, runner] of agent.runners) services[name] = runner.report();
    const leader = this.leadership(agent.id).leaderId;
    if (leader === agent.id) {
      if (agent.loop !== null) agent.reports.set(leader, { services, receivedAtMs: this.local(agent.id) });
    } else if (leader !== null) {
      this.net.send({ from: agent.id, to: leader, message: { type: "report", services } }, this.nowUnits);
    }
  }

  openWindow(service: string): string | null {
    const w = this.windows.get(service);
    if (w === undefined) return null;
    const t = this.nowMs() - w.phaseMs;
    if (t < 0) return null;
    const k = Math.floor(t / w.periodMs);
    return t - k * w.periodMs < w.lengthMs ? `${service}@${k}` : null;
  }

  // --- the event loop --------------------------------------------------------------------------------------

  /** Runs every event up to `untilUnits`, letting the agents' promise chains settle after each of ours. */
  async runUntil(untilUnits: number, after?: () => void): Promise<void> {
    for (;;) {
      const next = Math.min(this.queue.peekUnits(), this.net.peekUnits());
      if (next > untilUnits) break;
      this.cluster.runUntil(next);
      for (const id of this.ids) this.checkLeader(id);
      if (this.net.peekUnits() <= next) {
        const envelope = this.net.popDue(next);
        if (envelope !== undefined) this.deliver(envelope.from, envelope.to, envelope.message);
      } else {
        const event = this.queue.pop() as SimEvent;
        if (event.kind === "timer") {
          const timer = this.timers.get(event.token);
          if (timer !== undefined) {
            this.timers.delete(event.token);
            if (this.agents.get(timer.agent.id) === timer.agent && this.cluster.isAlive(timer.agent.id))
              timer.callback();
          }
        } else this.fault(event.kind);
      }
      this.events++;
      await settle();
      after?.();
    }
    this.cluster.runUntil(untilUnits);
    for (const id of this.ids) this.checkLeader(id);
  }

  faults: FaultOptions | null = null;

  private fault(kind: "fault" | "heal"): void {
    const f = this.faults;
    if (kind === "heal" || f === null) return;
    this.queue.push(this.nowUnits + unitsPerTick, { kind: "fault" });
    for (const id of this.ids) {
      if (!this.cluster.isAlive(id)) {
        if (this.rng.chance(f.restart)) {
          this.line(`${id} restarts`);
          this.restart(id);
        }
      } else if (this.rng.chance(f.crash)) {
        const closes = this.rng.chance(0.5);
        this.line(`${id} crashes${closes ? " (links close)" : ""}`);
        this.crash(id, closes);
      }
    }
    if (this.partitioned) {
      if (this.rng.chance(f.unpartition)) this.healNetworks();
    } else if (this.rng.chance(f.partition)) {
      const side = this.rng.chance(0.5)
        ? [this.rng.pick(this.ids)]
        : this.ids.filter(() => this.rng.chance(0.5));
      if (side.length === 0 || side.length === this.ids.length) return;
      const symmetry = this.rng.chance(0.7) ? PartitionSymmetry.Symmetric : PartitionSymmetry.OneWay;
      this.line(`partition (${side.join(" ")}) ${symmetry}`);
      this.cluster.network.partition(side, symmetry);
      this.net.partition(side, symmetry);
      this.partitioned = true;
    }
  }

  healNetworks(): void {
    this.line("partition heals");
    this.cluster.network.heal();
    this.net.heal();
    this.partitioned = false;
  }

  /** The fault phase ends: quiet networks, every node back. */
  heal(network: NetworkOptions): void {
    this.faults = null;
    this.healNetworks();
    const quiet = quietNetworkOptions(
      network.delayMinUnits,
      Math.min(network.delayMeanUnits, network.delayMinUnits + 10 * unitsPerMs),
    );
    this.cluster.network.setOptions(quiet);
    this.net.setOptions(quiet);
    for (const id of this.ids) this.restart(id);
  }

  /** Closes the runs still open at the end. */
  finish(): void {
    for (const [key, entry] of this.up) {
      if (entry.count === 0) continue;
      const [node, service] = key.split("/") as [string, string];
      this.runs.push({ node, service, fromUnits: entry.sinceUnits, toUnits: this.nowUnits });
    }
  }
}

interface FaultOptions {
  crash: number;
  restart: number;
  partition: number;
  unpartition: number;
}

interface Timings {
  electionTimeoutTicks: number;
  heartbeatIntervalTicks: number;
  leaseTicks: number;
}

/** Drains every promise chain the last event set off (they are all microtasks: nothing waits on I/O). */
function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function savedTable(saved: ServicesTable): Record<string, ServiceTableEntry> {
  const table: Record<string, ServiceTableEntry> = {};
  for (const [name, entry] of Object.entries(saved.services)) {
    table[name] = {
      owner: entry.owner,
      code: "saved",
      reason: "from the last table before a restart",
      report: null,
      failbackIn: null,
    };
  }
  return table;
}

/**
 * From the healed cluster's agreed leader to every service running: the new leader's inherited window (no
 * grant to a new owner for leaseMs × (1 + margin), also the longest an old grant may live on), a lost owner's
 * failover_after_ms (plus suspectAfterMs before the detector counts it unreachable), a report to make the
 * node ready (reportEveryMs) and a placement round, then the table's way to the node, the runner's retry
 * tick (a renewal period of the service's lease, late), a grant round trip and the start steps; one more
 * lease for a grant refused (the retry after it lapses). Network delays after healing are tens of ms.
 */
function livenessBound(failoverAfterMs: number): number {
  return (
    2 * leaseMs * (1 + clockMarginDefault) +
    failoverAfterMs +
    suspectAfterMs +
    reportEveryMs +
    2 * placementEveryMs +
    renewalPeriodMs(serviceLeaseMs({ failoverAfterMs }, leaseMs)) +
    lateMsMax +
    driversMax * startStepMsMax +
    1_000
  );
}

export interface ServicesHooks {
  log?: (line: string) => void;
}

export async function runServicesHistory(
  seed: string,
  hooks: ServicesHooks = {},
): Promise<ServicesHistoryResult> {
  const rng = new Prng(seed);
  const o = rng.fork("options");
  const size = o.intBetween(3, 5);
  // lan (T 700 ms, heartbeat 200 ms, lease 550 ms) or fast (400, 50, 300), in 50 ms ticks.
  const timings: Timings = o.chance(0.7)
    ? { electionTimeoutTicks: 14, heartbeatIntervalTicks: 4, leaseTicks: 11 }
    : { electionTimeoutTicks: 8, heartbeatIntervalTicks: 1, leaseTicks: 6 };
  const specs: NodeSpec[] = [];
  for (let i = 1; i <= size; i++) {
    specs.push({
      id: `n${i}`,
      witness: false,
      priority: o.chance(0.5) ? 0 : o.intBetween(0, 2),
      // Rates up to 1 % apart: each within ±0.5 %.
      drift: o.chance(0.3) ? o.pick([-0.005, 0.005]) : Math.round((o.next() - 0.5) * 0.01 * 1e4) / 1e4,
      firstTickUnits: o.intBetween(0, unitsPerTick - 1),
    });
  }
  const ids = specs.map((s) => s.id);
  const delayMinUnits = o.intBetween(1, 2 * unitsPerMs);
  const network: NetworkOptions = {
    ...quietNetworkOptions(delayMinUnits, delayMinUnits + o.intBetween(0, 30 * unitsPerMs)),
    lossProbability: o.chance(0.6) ? o.next() * 0.1 : 0,
    duplicateProbability: o.chance(0.3) ? o.next() * 0.05 : 0,
  };
  const services: ServiceConfig[] = [];
  const serviceCount = o.intBetween(1, 3);
  for (let i = 1; i <= serviceCount; i++) {
    const nodes = o.chance(0.5) ? null : ids.filter(() => o.chance(0.6));
    const eligible = nodes === null || nodes.length === 0 ? ids : nodes;
    const prefer = eligible.filter(() => o.chance(0.4));
    if (prefer.length > 1 && o.chance(0.5)) prefer.reverse();
    services.push(
      serviceConfig(`s${i}`, {
        nodes: nodes === null || nodes.length === 0 ? null : nodes,
        prefer,
        failover: o.chance(0.9),
        failoverAfterMs: 50 * o.intBetween(20, 100),
      }),
    );
  }
  const faults: FaultOptions = {
    crash: o.chance(0.8) ? o.next() * 0.004 : 0,
    restart: 0.005 + o.next() * 0.05,
    partition: o.chance(0.8) ? o.next() * 0.01 : 0,
    unpartition: 0.005 + o.next() * 0.05,
  };
  const faultMs = 20_000 + o.next() * 40_000;
  const sim = new ServicesSim(rng.fork("sim"), specs, network, timings, services, hooks.log);
  for (const s of services) {
    if (s.prefer.length === 0 || !o.chance(0.7)) continue;
    sim.windows.set(s.name, {
      phaseMs: o.next() * 10_000,
      periodMs: 8_000 + o.next() * 20_000,
      lengthMs: 2_000 + o.next() * 6_000,
    });
  }
  sim.line(
    `services ${services.map((s) => `${s.name} nodes=${s.nodes?.join(",") ?? "*"} prefer=${s.prefer.join(",")} failover=${s.failover}/${s.failoverAfterMs}ms window=${JSON.stringify(sim.windows.get(s.name) ?? null)}`).join("; ")}`,
  );
  sim.faults = faults;
  sim.queue.push(unitsPerTick, { kind: "fault" });
  const fail = (what: string): never => {
    throw new ServicesSimError(seed, what);
  };
  try {
    await sim.runUntil(Math.round(faultMs * unitsPerMs));
    sim.line("heal: quiet network, every node back");
    sim.heal(network);
    const healedUnits = sim.nowUnits;
    // The election's own liveness (swarm.ts checks it harder): one agreed leader within 30 T.
    const electionDeadline = healedUnits + convergenceTimeouts * timings.electionTimeoutTicks * unitsPerTick;
    let agreedUnits: number | null = null;
    while (agreedUnits === null && sim.nowUnits < electionDeadline) {
      await sim.runUntil(sim.nowUnits + unitsPerTick);
      if (sim.cluster.leaderAgreement() !== null) agreedUnits = sim.nowUnits;
    }
    if (agreedUnits === null) fail(`no leader agreed by all within ${convergenceTimeouts} T of healing`);
    const agreed = agreedUnits as number;
    const bounds = new Map(services.map((s) => [s.name, livenessBound(s.failoverAfterMs)]));
    const runningAt = new Map<string, number>();
    const note = () => {
      for (const s of services) {
        if (runningAt.has(s.name)) continue;
        if (ids.some((id) => sim.running.has(`${id}/${s.name}`))) runningAt.set(s.name, sim.nowUnits);
      }
    };
    note();
    const endUnits = agreed + Math.max(...bounds.values()) * unitsPerMs;
    await sim.runUntil(Math.ceil(endUnits), note);
    for (const s of services) {
      const at = runningAt.get(s.name);
      const bound = bounds.get(s.name) as number;
      if (at === undefined || (at - agreed) / unitsPerMs > bound)
        fail(
          `${s.name} does not run within ${bound.toFixed(0)} ms of the healed cluster's leader (${at === undefined ? "never" : `${((at - agreed) / unitsPerMs).toFixed(0)} ms`})`,
        );
    }
    sim.finish();
    checkExclusive(seed, sim.runs, fail);
    const repeated = checkFailbacks(sim, fail);
    const livenessMs = Math.max(0, ...[...runningAt.values()].map((at) => (at - agreed) / unitsPerMs));
    return {
      seed,
      nodes: size,
      services: services.length,
      events: sim.events + sim.cluster.eventsProcessed,
      runs: sim.runs.length,
      leaderTerms: sim.cluster.checker.termsWithLeader,
      crashes: sim.crashes,
      failbacks: sim.failbacks.length,
      repeatedFailbacks: repeated,
      livenessMs,
      livenessBoundMs: Math.max(...bounds.values()),
      boundedWindows: sim.boundedWindows,
      widestWindows: sim.widestWindows,
    };
  } catch (error) {
    if (error instanceof ServicesSimError) throw error;
    // The election's own safety checker, or a bug: with the seed.
    throw new ServicesSimError(
      seed,
      error instanceof Error ? `${error.name}: ${error.message}` : String(error),
    );
  }
}

/** Per service, sorted by start: each run must begin after every other node's earlier runs ended. */
function checkExclusive(_seed: string, runs: Run[], fail: (what: string) => never): void {
  const byService = new Map<string, Run[]>();
  for (const run of runs) byService.set(run.service, [...(byService.get(run.service) ?? []), run]);
  for (const [service, list] of byService) {
    const endByNode = new Map<NodeId, number>();
    for (const run of list.sort((a, b) => a.fromUnits - b.fromUnits)) {
      for (const [node, endUnits] of endByNode) {
        if (node !== run.node && run.fromUnits < endUnits) {
          fail(
            `${service}: ${run.node} started it at ${(run.fromUnits / unitsPerMs).toFixed(2)} ms while ${node} ran it until ${(endUnits / unitsPerMs).toFixed(2)} ms`,
          );
        }
      }
      endByNode.set(run.node, Math.max(endByNode.get(run.node) ?? 0, run.toUnits));
    }
  }
}

/** Every failback inside an open window, at most one per window and leader; returns the repeats across leaders. */
function checkFailbacks(sim: ServicesSim, fail: (what: string) => never): number {
  const perLeader = new Set<string>();
  const perWindow = new Set<string>();
  let repeated = 0;
  for (const f of sim.failbacks) {
    const at = (f.atUnits / unitsPerMs).toFixed(0);
    if (f.window === null) fail(`${f.service} failed back at ${at} ms outside any restore window`);
    const key = `${f.service}/${f.window}/${f.term}`;
    if (perLeader.has(key))
      fail(
        `${f.service} failed back twice in window ${f.window} by the leader of term ${f.term} (again at ${at} ms)`,
      );
    perLeader.add(key);
    if (perWindow.has(`${f.service}/${f.window}`)) repeated++;
    perWindow.add(`${f.service}/${f.window}`);
  }
  return repeated;
}

/** `npm run sim -- --services --seeds N [--from F] [--keep-going]` or `--seed S [--verbose]`. */
export async function servicesCli(args: readonly string[]): Promise<number> {
  const { values } = parseArgs({
    args: [...args],
    options: {
      seeds: { type: "string", default: "1000" },
      from: { type: "string", default: "0" },
      seed: { type: "string" },
      verbose: { type: "boolean", default: false },
      messages: { type: "boolean", default: false },
      "keep-going": { type: "boolean", default: false },
    },
  });
  const describe = (r: ServicesHistoryResult) =>
    `seed=${r.seed} ok: ${r.nodes} nodes, ${r.services} services, ${r.events} events, ${r.runs} runs, ` +
    `${r.crashes} crashes, ${r.leaderTerms} terms with a leader, ${r.failbacks} failbacks ` +
    `(${r.repeatedFailbacks} repeated in a window by a later leader), every service running ` +
    `${r.livenessMs.toFixed(0)} ms after the healed leader (bound ${r.livenessBoundMs.toFixed(0)} ms), ` +
    `${r.boundedWindows} new leaders' windows bounded by their votes, ${r.widestWindows} the widest`;
  if (values.seed !== undefined) {
    const log = values.verbose ? (line: string) => console.log(line) : undefined;
    try {
      console.log(describe(await runServicesHistory(values.seed, { log })));
      return 0;
    } catch (error) {
      if (!(error instanceof ServicesSimError)) throw error;
      console.error(`FAIL ${error.message}`);
      return 1;
    }
  }
  const count = Number(values.seeds);
  const from = Number(values.from);
  const started = performance.now();
  let failures = 0;
  let events = 0;
  let runs = 0;
  let failbacks = 0;
  let repeated = 0;
  let bounded = 0;
  let widest = 0;
  let slowest = { ms: 0, seed: "" };
  let lastReport = started;
  for (let i = 0; i < count; i++) {
    const seed = String(from + i);
    try {
      const r = await runServicesHistory(seed);
      events += r.events;
      runs += r.runs;
      failbacks += r.failbacks;
      repeated += r.repeatedFailbacks;
      bounded += r.boundedWindows;
      widest += r.widestWindows;
      if (r.livenessMs > slowest.ms) slowest = { ms: r.livenessMs, seed };
    } catch (error) {
      if (!(error instanceof ServicesSimError)) throw error;
      console.error(`FAIL ${error.message}`);
      failures++;
      if (!values["keep-going"]) return 1;
    }
    const now = performance.now();
    if (now - lastReport > 5000) {
      lastReport = now;
      console.log(
        `${i + 1}/${count} histories, ${((i + 1) / ((now - started) / 1000)).toFixed(0)} histories/s`,
      );
    }
  }
  const seconds = (performance.now() - started) / 1000;
  console.log(
    `${failures === 0 ? "ok" : "done"}: ${count} histories (seeds ${from}..${from + count - 1}) in ${seconds.toFixed(1)} s: ` +
      `${(count / seconds).toFixed(1)} histories/s, ${(events / seconds).toFixed(0)} events/s; ${runs} runs, ` +
      `${failbacks} failbacks (${repeated} repeated in a window by a later leader), slowest liveness ` +
      `${slowest.ms.toFixed(0)} ms (seed ${slowest.seed}); new leaders' windows: ${bounded} bounded by ` +
      `their votes, ${widest} the widest`,
  );
  if (failures > 0) console.error(`${failures} of ${count} histories failed`);
  return failures === 0 ? 0 : 1;
}
