// Services on one node: a runner per service this node may run, the reports they make (sent to the leader
// every reportEveryMs and at each change), and, while this node leads, the placement loop whose table goes
// to every member (at each change, and every reportEveryMs unchanged). A table from a leader tells each
// runner whether its service is assigned here. Operators' commands (move, drain) asked of any node go to
// the leader over the mesh. Who owns what and which nodes are drained is kept in the data directory, so a
// new leader after a restart of the whole cluster starts from it.
import type { Logger } from "pino";
import type { Coordination } from "../cluster/index.ts";
import type { ServiceConfig } from "../config/index.ts";
import type { NodeId } from "../core/types.ts";
import { decodeJsonPayload, encodeJsonPayload, type MeshApi } from "../mesh/index.ts";
import type { EventLog, MonotonicTicker, Ticker } from "../shell/index.ts";
import type { Driver } from "./exec_driver.ts";
import { type NodeReport, PlacementLoop } from "./placement_loop.ts";
import { SavedTable } from "./saved_table.ts";
import { type RunnerReport, ServiceRunner, serviceLeaseMs } from "./service_runner.ts";
import {
  type CommandAnswer,
  commandAnswerSchema,
  type OperatorCommand,
  operatorCommandSchema,
  SERVICES_CALL_CHANNEL,
  SERVICES_CHANNEL,
  SERVICES_CONTROL_CHANNEL,
  type ServiceCall,
  type ServiceCallAnswer,
  type ServicesMessage,
  type ServiceTableEntry,
  serviceCallAnswerSchema,
  serviceCallSchema,
  servicesMessageSchema,
} from "./services_wire.ts";

export interface ServicesNodeOptions {
  nodeId: NodeId;
  services: readonly ServiceConfig[];
  /** The drivers of a service, in start order. */
  drivers: (service: ServiceConfig) => Driver[];
  mesh: Pick<MeshApi, "send" | "onMessage" | "request" | "onRequest">;
  coordination: Coordination;
  ticker: Ticker;
  /** The longest a grant lasts (the cluster's grantLeaseMs); each service asks for serviceLeaseMs. */
  leaseMs: number;
  logger: Logger;
  /** The restore window of `service` open at wall-clock `atMs`, or null. */
  openWindow: (service: ServiceConfig, atMs: number) => string | null;
  /** Where the last table's owners and drains are kept; null keeps them in memory only (tests). */
  dataDir: string | null;
  /** How long a command forwarded to the leader may take. */
  commandTimeoutMs?: number;
  /** The agent's event log: placement decisions, drains, driver runs, health verdicts. */
  events?: Pick<EventLog, "emit">;
}

/** Reports refresh this often without a change (placement counts a node started while they come). */
export const reportEveryMs = 2_000;
/** The leader decides this often. */
export const placementEveryMs = 500;
/**
 * A new leader checks this often whether every member it can reach has reported (a member's liveness may
 * change without a report arriving, e.g. a dead one's link closing), until its first round.
 */
const firstRoundCheckMs = 50;
/** A command forwarded to the leader waits this long for its answer. */
const commandTimeoutMsDefault = 10_000;
/** A call forwarded to the owner waits this long beyond the action's own timeout. */
const callMarginMs = 5_000;

export interface ServicesTable {
  /** The term of the leader that made it; 0 before any. */
  term: number;
  services: Record<string, ServiceTableEntry>;
  drained: NodeId[];
}

export class ServicesNode {
  private readonly options: ServicesNodeOptions;
  private readonly runners = new Map<string, ServiceRunner>();
  private readonly reporter: MonotonicTicker;
  private readonly placement: MonotonicTicker;
  private loop: PlacementLoop | null = null;
  /** The placement round in progress. */
  private deciding: Promise<void> | null = null;
  /** Leader: the latest report of each node. */
  private readonly reports = new Map<NodeId, NodeReport>();
  private table: ServicesTable = { term: 0, services: {}, drained: [] };
  /** The last table's owners and drains, in the data directory. */
  private readonly saved: SavedTable;
  /** Leader: the last table sent, and when (monotonic ms): unchanged, it goes out every reportEveryMs. */
  private sent: { text: string; atMs: number } = { text: "", atMs: Number.NEGATIVE_INFINITY };
  private readonly unsubscribes: Array<() => void> = [];
  /** Leader: a round at the moment a decision changes by itself, when that is sooner than the next period. */
  private dueRound: ReturnType<typeof setTimeout> | null = null;
  /** A new leader: no round yet; the first runs once every reachable member reported (or at the period). */
  private firstRoundPending = false;

  constructor(options: ServicesNodeOptions) {
    this.options = options;
    const self = options.coordination.members().find((m) => m.id === options.nodeId);
    const witness = self?.role === "witness";
    for (const service of options.services) {
      if (witness || (service.nodes !== null && !service.nodes.includes(options.nodeId))) continue;
      this.runners.set(
        service.name,
        new ServiceRunner({
          service,
          nodeId: options.nodeId,
          drivers: options.drivers(service),
          coordination: options.coordination,
          leaseMs: serviceLeaseMs(service, options.leaseMs),
          logger: options.logger,
          onReport: () => this.sendReport(),
          onEvent: (kind, fields) => options.events?.emit(kind, fields),
        }),
      );
    }
    this.saved = new SavedTable(options.dataDir, options.logger);
    // Riding along: a refresh or a round is as good early as on time, so they share wake-ups.
    this.reporter = options.ticker.every(reportEveryMs, () => this.sendReport(), { ridesAlong: true });
    this.placement = options.ticker.every(placementEveryMs, () => void this.decide(), { ridesAlong: true });
  }

  /**
   * Probes every runner first (src/services/service_runner.ts): only then does the leader hear from it. With
   * no services configured nothing starts: an agent without them pays nothing.
   */
  async start(): Promise<void> {
    if (this.options.services.length === 0) return;
    await Promise.all([...this.runners.values()].map((runner) => runner.probe()));
    const { mesh, coordination } = this.options;
    this.unsubscribes.push(
      mesh.onMessage(SERVICES_CHANNEL, (from, payload) => this.receive(from, payload)),
      mesh.onRequest(SERVICES_CONTROL_CHANNEL, (_from, payload) => this.commandRequest(payload)),
      mesh.onRequest(SERVICES_CALL_CHANNEL, async (_from, payload) => {
        const decoded = decodeJsonPayload(payload, serviceCallSchema);
        const answer: ServiceCallAnswer = decoded.ok
          ? await this.answerHere(decoded.value)
          : { ok: false, reason: `malformed call: ${decoded.reason}` };
        return encodeJsonPayload(answer);
      }),
      coordination.on("leader:changed", () => this.leadershipChanged()),
    );
    this.reporter.start();
    this.leadershipChanged();
    this.sendReport();
  }

  /** Stops every service running here (releasing its grant, so it moves at once), then the timers. */
  async stop(): Promise<void> {
    for (const unsubscribe of this.unsubscribes.splice(0)) unsubscribe();
    this.reporter.stop();
    this.placement.stop();
    this.cancelDueRound();
    this.loop = null;
    await Promise.all([...this.runners.values()].map((runner) => runner.close()));
  }

  /** Each configured service's admins. */
  admins(): ReadonlyMap<string, readonly string[]> {
    return new Map(this.options.services.map((s) => [s.name, s.admins]));
  }

  /** The latest table from a leader, and what this node's runners report. */
  status(): { table: ServicesTable; local: Record<string, RunnerReport> } {
    const local: Record<string, RunnerReport> = {};
    for (const [name, runner] of this.runners) local[name] = runner.report();
    return { table: this.table, local };
  }

  private leadershipChanged(): void {
    const view = this.options.coordination.leadership();
    for (const runner of this.runners.values()) runner.leaderChanged();
    if (view.role === "leader" && this.loop === null) {
      this.reports.clear();
      this.loop = new PlacementLoop({
        services: this.options.services,
        coordination: this.options.coordination,
        logger: this.options.logger,
        now: () => performance.now(),
        openWindow: this.options.openWindow,
        previousTable: () => (this.table.term > 0 ? this.table.services : this.saved.services()),
        previousDrained: () => (this.table.term > 0 ? this.table.drained : this.saved.drained()),
      });
      this.placement.start();
      this.firstRoundPending = true;
      this.checkFirstRound(this.loop);
    } else if (view.role !== "leader" && this.loop !== null) {
      this.loop = null;
      this.firstRoundPending = false;
      this.placement.stop();
      this.cancelDueRound();
    }
    this.sendReport();
  }

  /**
   * After a round: an owner unreachable for less than failover_after_ms moves the moment it reaches it,
   * not up to a placement period later (a failover's latency), so a round is due then.
   */
  private scheduleDueRound(loop: PlacementLoop): void {
    const inMs = loop.decideAgainInMs();
    if (inMs === null || inMs >= placementEveryMs || this.dueRound !== null) return;
    this.dueRound = setTimeout(
      () => {
        this.dueRound = null;
        void this.decideNow();
      },
      Math.ceil(Math.max(0, inMs)) + 1,
    );
    this.dueRound.unref();
  }

  private cancelDueRound(): void {
    if (this.dueRound !== null) clearTimeout(this.dueRound);
    this.dueRound = null;
  }

  /** One placement round, unless one is running (the ticker's rounds skip; see decideNow). */
  private decide(): Promise<void> {
    if (this.deciding === null) {
      this.deciding = this.round().finally(() => {
        this.deciding = null;
      });
    }
    return this.deciding;
  }

  /** Until the first round of `loop`: run it once every reachable member reported, else look again soon. */
  private checkFirstRound(loop: PlacementLoop): void {
    if (this.loop !== loop || !this.firstRoundPending) return;
    if (this.everyReachableReported()) {
      void this.decide();
      return;
    }
    setTimeout(() => this.checkFirstRound(loop), firstRoundCheckMs).unref();
  }

  /**
   * A new leader's first round need not wait for the placement period (a failover that comes with a leader
   * change would wait up to two): it runs once every member it can reach has told it what it runs.
   */
  private everyReachableReported(): boolean {
    return this.options.coordination
      .memberLiveness()
      .every((m) => m.unreachableMs > 0 || this.reports.has(m.id) || this.isWitness(m.id));
  }

  private isWitness(id: NodeId): boolean {
    return this.options.coordination.members().some((m) => m.id === id && m.role === "witness");
  }

  private async round(): Promise<void> {
    const loop = this.loop;
    if (loop === null) return;
    this.firstRoundPending = false;
    try {
      const services = await loop.round(this.reports);
      if (this.loop !== loop) return;
      this.scheduleDueRound(loop);
      const term = this.options.coordination.leadership().term;
      const table: ServicesTable = { term, services, drained: loop.drained() };
      this.applyTable(table);
      const text = JSON.stringify({ kind: "table", ...table } satisfies ServicesMessage);
      const now = performance.now();
      if (text === this.sent.text && now - this.sent.atMs < reportEveryMs) return;
      this.sent = { text, atMs: now };
      const message = new TextEncoder().encode(text);
      for (const member of this.options.coordination.members()) {
        if (member.id !== this.options.nodeId) this.options.mesh.send(member.id, SERVICES_CHANNEL, message);
      }
    } catch (error) {
      this.options.logger.warn({ err: error }, "placement round failed");
    }
  }

  private receive(from: NodeId, payload: Uint8Array): void {
    const decoded = decodeJsonPayload(payload, servicesMessageSchema);
    if (!decoded.ok) {
      this.options.logger.warn({ peer: from, reason: decoded.reason }, "dropped services message");
      return;
    }
    const message = decoded.value;
    if (message.kind === "report") {
      if (this.loop !== null)
        this.reports.set(from, { services: message.services, receivedAtMs: performance.now() });
      if (this.firstRoundPending && this.everyReachableReported()) void this.decide();
      return;
    }
    // Only the leader of the newest term places services.
    if (message.term < this.table.term || from !== this.options.coordination.leadership().leaderId) return;
    this.applyTable({ term: message.term, services: message.services, drained: message.drained });
  }

  private applyTable(table: ServicesTable): void {
    this.recordChanges(this.table, table);
    this.table = table;
    for (const [name, runner] of this.runners)
      runner.assigned(table.services[name]?.owner === this.options.nodeId);
    this.saved.save(table);
  }

  /**
   * An operator's command, made by the leader wherever it is: here, or over the mesh. Answers once the
   * leader ran a placement round with it (so the table it sent already says so), or why not.
   */
  async command(command: OperatorCommand): Promise<CommandAnswer> {
    const loop = this.loop;
    if (loop !== null) {
      const answer = loop.command(command);
      if (answer.ok) await this.decideNow();
      return answer;
    }
    const leader = this.options.coordination.leadership().leaderId;
    if (leader === null || leader === this.options.nodeId) {
      return { ok: false, reason: "no leader: try again once one is elected", unavailable: true };
    }
    try {
      const timeoutMs = this.options.commandTimeoutMs ?? commandTimeoutMsDefault;
      const payload = encodeJsonPayload(command);
      const reply = await this.options.mesh.request(leader, SERVICES_CONTROL_CHANNEL, payload, { timeoutMs });
      const decoded = decodeJsonPayload(reply, commandAnswerSchema);
      if (decoded.ok) return decoded.value;
      return { ok: false, reason: `the leader's answer is malformed: ${decoded.reason}` };
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      return { ok: false, reason: `leader ${leader} did not answer: ${reason}`, unavailable: true };
    }
  }

  private async commandRequest(payload: Uint8Array): Promise<Uint8Array> {
    const decoded = decodeJsonPayload(payload, operatorCommandSchema);
    const answer: CommandAnswer = !decoded.ok
      ? { ok: false, reason: `malformed command: ${decoded.reason}` }
      : this.loop === null
        ? { ok: false, reason: "not the leader (leadership moved): try again", unavailable: true }
        : await this.command(decoded.value);
    return encodeJsonPayload(answer);
  }

  /** A round that starts after now: after the one in progress, if any. */
  private async decideNow(): Promise<void> {
    if (this.deciding !== null) await this.deciding;
    await this.decide();
  }

  /**
   * A call to where the service runs (an action, its output lines), answered there: here when this node
   * runs it, else forwarded to the owner in the latest table. An owner that no longer runs it answers
   * where its table says it went, so the caller learns the new owner.
   */
  async call(call: ServiceCall): Promise<ServiceCallAnswer> {
    const owner = this.table.services[call.service]?.owner ?? null;
    if (owner === null) return { ok: false, reason: `${call.service} runs nowhere now`, unavailable: true };
    if (owner === this.options.nodeId) return this.answerHere(call);
    const action = call.kind === "action" ? this.configured(call.service)?.actions[call.action] : undefined;
    const timeoutMs = (action?.timeoutMs ?? 0) + callMarginMs;
    let reply: Uint8Array;
    try {
      reply = await this.options.mesh.request(owner, SERVICES_CALL_CHANNEL, encodeJsonPayload(call), {
        timeoutMs,
      });
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      const now = this.table.services[call.service]?.owner ?? null;
      const moved = now !== owner ? { moved: { owner: now } } : {};
      return {
        ok: false,
        reason: `${owner}, where ${call.service} ran, did not answer: ${reason}`,
        unavailable: true,
        ...moved,
      };
    }
    const decoded = decodeJsonPayload(reply, serviceCallAnswerSchema);
    return decoded.ok
      ? decoded.value
      : { ok: false, reason: `${owner} answered malformed: ${decoded.reason}` };
  }

  /** The API address (the TLS port) of a node, as the membership has it. */
  apiAddress(node: NodeId): string | null {
    return this.options.coordination.members().find((m) => m.id === node)?.address ?? null;
  }

  private configured(service: string): ServiceConfig | undefined {
    return this.options.services.find((s) => s.name === service);
  }

  private async answerHere(call: ServiceCall): Promise<ServiceCallAnswer> {
    const node = this.options.nodeId;
    const runner = this.runners.get(call.service);
    const moved = { moved: { owner: this.table.services[call.service]?.owner ?? null } };
    if (runner === undefined) {
      return this.configured(call.service) === undefined
        ? { ok: false, reason: `no service ${call.service}`, notFound: true }
        : { ok: false, reason: `${call.service} does not run on ${node}`, ...moved };
    }
    if (call.kind === "logs") return { ok: true, node, logs: runner.logLines(call.after) };
    const result = await runner.runAction(call.action, call.args);
    if (result.ok) {
      const { ok: _ok, ...outcome } = result;
      const now = runner.report();
      if (now.state === "running" && now.fence === outcome.fence) return { ok: true, node, action: outcome };
      // It ran, but the service left this node meanwhile: what it did may already be moot there.
      const ended = outcome.exitCode === null ? "it did not finish" : `exit ${outcome.exitCode}`;
      const reason = `${call.service} left ${node} while the action ran (under ${outcome.fence}: ${ended})`;
      return { ok: false, reason, moved: { owner: this.table.services[call.service]?.owner ?? null } };
    }
    if (result.notHere) return { ok: false, reason: result.reason, ...moved };
    return { ok: false, reason: result.reason, notFound: true };
  }

  /** Placement decisions and drains as events: what changed from the last table to this one. */
  private recordChanges(before: ServicesTable, after: ServicesTable): void {
    const events = this.options.events;
    if (events === undefined) return;
    for (const [service, entry] of Object.entries(after.services)) {
      const from = before.services[service]?.owner ?? null;
      if (entry.owner === from) continue;
      events.emit("placement", { service, from, to: entry.owner, code: entry.code, reason: entry.reason });
    }
    for (const node of after.drained)
      if (!before.drained.includes(node)) events.emit("drain", { node, drained: true });
    for (const node of before.drained)
      if (!after.drained.includes(node)) events.emit("drain", { node, drained: false });
  }

  private sendReport(): void {
    const services: Record<string, RunnerReport> = {};
    for (const [name, runner] of this.runners) services[name] = runner.report();
    const leader = this.options.coordination.leadership().leaderId;
    if (leader === this.options.nodeId) {
      if (this.loop !== null) this.reports.set(leader, { services, receivedAtMs: performance.now() });
    } else if (leader !== null) {
      this.options.mesh.send(leader, SERVICES_CHANNEL, encodeJsonPayload({ kind: "report", services }));
    }
  }
}
