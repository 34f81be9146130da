// The leader's side of services: each round it gathers what placement needs (who is reachable and for how
// long, which nodes reported, what each owner runs, restore windows), decides (src/core/placement.ts),
// assigns the services that move through Coordination (which then refuses the old owner's renewals and
// gives the grant to the new one once the old one lapsed), and returns the table every node is sent.
//
// A new leader starts from what the nodes run, so a leader change never moves a healthy service: the
// holder whose claim it already adopted (Coordination.grants), else the node that reports the service
// starting or running (under the newest grant if ever two did), else the owner in the last table it got.
import type { Logger } from "pino";
import type { Coordination } from "../cluster/index.ts";
import type { ServiceConfig } from "../config/index.ts";
import { compareFence, type FencingToken, parseFence } from "../core/grants.ts";
import {
  decidePlacement,
  moveRefusal,
  PlacementCode,
  type PlacementNode,
  type PlacementService,
} from "../core/placement.ts";
import type { NodeId } from "../core/types.ts";
import type { CommandAnswer, OperatorCommand, ServiceTableEntry, WireRunnerReport } from "./services_wire.ts";

/** A node's latest report, and when (monotonic ms) it came. */
export interface NodeReport {
  services: Readonly<Record<string, WireRunnerReport>>;
  receivedAtMs: number;
}

export interface PlacementLoopOptions {
  services: readonly ServiceConfig[];
  coordination: Pick<Coordination, "members" | "memberLiveness" | "assignService" | "grants">;
  logger: Logger;
  /** Monotonic ms. */
  now: () => number;
  /** The restore window of `service` open at wall-clock `atMs`, by an id unique to that opening; or null. */
  openWindow: (service: ServiceConfig, atMs: number) => string | null;
  /** The table this node last received from a leader (owners to start from); empty when none. */
  previousTable: () => Readonly<Record<string, ServiceTableEntry>>;
  /** The nodes drained in that table: a drain outlives a leader change. */
  previousDrained: () => readonly NodeId[];
}

/** A node counts as started (ready) while its reports keep coming; a report older than this does not. */
export const reportFreshMs = 5_000;
/** A node where a service failed to start, or failed its health check, is passed over this long. */
export const startFailedForMs = 30_000;

export class PlacementLoop {
  private readonly options: PlacementLoopOptions;
  private readonly owners = new Map<string, NodeId | null>();
  private readonly unownedSinceMs = new Map<string, number>();
  private readonly failbackSpentIn = new Map<string, string>();
  /** service → node → until when (monotonic ms) it is passed over. */
  private readonly startFailed = new Map<string, Map<NodeId, number>>();
  /** Operators' moves, taken by the next round (placement applies each once; then it is sticky there). */
  private readonly moves = new Map<string, NodeId>();
  private readonly drainedNodes = new Set<NodeId>();
  private started = false;
  /** The latest reports, for checking a command against what the next round will see. */
  private lastReports: ReadonlyMap<NodeId, NodeReport> = new Map();
  /** After the last round: when (ms from it) a decision changes by itself; null: none does. */
  private againInMs: number | null = null;

  constructor(options: PlacementLoopOptions) {
    this.options = options;
  }

  /** One round: decide, assign what moved, and return the table for every node. */
  async round(reports: ReadonlyMap<NodeId, NodeReport>): Promise<Record<string, ServiceTableEntry>> {
    const now = this.options.now();
    this.lastReports = reports;
    if (!this.started) {
      await this.adoptOwners(reports);
      for (const node of this.options.previousDrained()) this.drainedNodes.add(node);
    }
    this.started = true;
    this.noteFailures(reports, now);
    const nodes = this.nodes(reports, now);
    // Taken now: a command that comes while this round awaits its assignments waits for the next one.
    const moves = new Map(this.moves);
    this.moves.clear();
    const inputs = this.options.services.map((service) => this.input(service, reports, now, moves));
    const table: Record<string, ServiceTableEntry> = {};
    this.againInMs = null;
    for (const decision of decidePlacement(nodes, inputs)) {
      const service = decision.service;
      if (decision.decideAgainInMs !== null)
        this.againInMs = Math.min(this.againInMs ?? Number.POSITIVE_INFINITY, decision.decideAgainInMs);
      const previous = this.owners.get(service) ?? null;
      if (decision.owner !== previous) {
        await this.options.coordination.assignService(service, decision.owner);
        this.owners.set(service, decision.owner);
        this.options.logger.info(
          { service, from: previous, to: decision.owner, code: decision.code },
          `placement: ${decision.reason}`,
        );
      }
      if (decision.code === PlacementCode.Failback) {
        const window = inputs.find((s) => s.name === service)?.openWindow;
        if (window) this.failbackSpentIn.set(service, window);
      }
      if (decision.owner === null) {
        if (!this.unownedSinceMs.has(service)) this.unownedSinceMs.set(service, now);
      } else this.unownedSinceMs.delete(service);
      const owner = decision.owner;
      table[service] = {
        owner,
        code: decision.code,
        reason: decision.reason,
        report: owner === null ? null : (reports.get(owner)?.services[service] ?? null),
        failbackIn: this.failbackSpentIn.get(service) ?? null,
      };
    }
    return table;
  }

  /**
   * When a decision of the last round changes by itself (an unreachable owner reaching failover_after_ms),
   * in ms from that round; null: none does. The caller runs a round then, rather than at its next period.
   */
  decideAgainInMs(): number | null {
    return this.againInMs;
  }

  /** The drained nodes, for the table. */
  drained(): NodeId[] {
    return [...this.drainedNodes].sort();
  }

  /**
   * An operator's command, checked against what the last round saw; taken by the next round. A move is
   * refused unless placement would take it (the target eligible, reachable, started, not drained).
   */
  command(command: OperatorCommand): CommandAnswer {
    const now = this.options.now();
    const nodes = this.nodes(this.lastReports, now);
    if (command.kind === "move") {
      const service = this.options.services.find((s) => s.name === command.service);
      if (service === undefined)
        return { ok: false, reason: `no service ${command.service}`, notFound: true };
      const input = this.input(service, this.lastReports, now, new Map());
      const refusal = moveRefusal(nodes, input, command.node);
      if (refusal !== null) return { ok: false, reason: refusal };
      this.moves.set(service.name, command.node);
      return { ok: true };
    }
    if (!this.options.coordination.members().some((m) => m.id === command.node)) {
      return { ok: false, reason: `${command.node} is not a member`, notFound: true };
    }
    if (command.kind === "drain") this.drainedNodes.add(command.node);
    else this.drainedNodes.delete(command.node);
    return { ok: true };
  }

  /** Before the first decision: who runs what now (see the header). */
  private async adoptOwners(reports: ReadonlyMap<NodeId, NodeReport>): Promise<void> {
    const previous = this.options.previousTable();
    const held = new Map(this.options.coordination.grants().map((g) => [g.service, g.owner]));
    for (const { name } of this.options.services) {
      let running: NodeId | null = null;
      let newest: FencingToken = { term: -1, seq: -1 };
      for (const [node, report] of reports) {
        const runner = report.services[name];
        if (runner === undefined || (runner.state !== "running" && runner.state !== "starting")) continue;
        const fence = parseFence(runner.fence ?? "") ?? { term: -1, seq: -1 };
        if (running === null || compareFence(fence, newest) > 0) {
          running = node;
          newest = fence;
        }
      }
      const owner = held.get(name) ?? running ?? previous[name]?.owner ?? null;
      if (owner !== null) await this.options.coordination.assignService(name, owner);
      this.owners.set(name, owner);
      // A window an earlier leader already failed it back in stays spent (once per window, not per leader).
      const spent = previous[name]?.failbackIn;
      if (spent) this.failbackSpentIn.set(name, spent);
    }
  }

  private noteFailures(reports: ReadonlyMap<NodeId, NodeReport>, now: number): void {
    for (const [node, report] of reports) {
      for (const [service, runner] of Object.entries(report.services)) {
        if (runner.state !== "failed" && runner.healthy) continue;
        const failed = this.startFailed.get(service) ?? new Map<NodeId, number>();
        if (!failed.has(node)) failed.set(node, now + startFailedForMs);
        this.startFailed.set(service, failed);
      }
    }
    for (const failed of this.startFailed.values()) {
      for (const [node, untilMs] of failed) if (untilMs <= now) failed.delete(node);
    }
  }

  private stopFailedOn(service: string, reports: ReadonlyMap<NodeId, NodeReport>): NodeId | null {
    for (const [node, report] of reports) if (report.services[service]?.state === "stop-failed") return node;
    return null;
  }

  private nodes(reports: ReadonlyMap<NodeId, NodeReport>, now: number): PlacementNode[] {
    const liveness = new Map(this.options.coordination.memberLiveness().map((m) => [m.id, m.unreachableMs]));
    return this.options.coordination.members().map((member) => {
      const report = reports.get(member.id);
      return {
        id: member.id,
        witness: member.role === "witness",
        unreachableMs: liveness.get(member.id) ?? Number.POSITIVE_INFINITY,
        ready: report !== undefined && now - report.receivedAtMs < reportFreshMs,
        drained: this.drainedNodes.has(member.id),
      };
    });
  }

  private input(
    service: ServiceConfig,
    reports: ReadonlyMap<NodeId, NodeReport>,
    now: number,
    moves: ReadonlyMap<string, NodeId>,
  ): PlacementService {
    const unownedSince = this.unownedSinceMs.get(service.name);
    const owner = this.owners.get(service.name) ?? null;
    const ownerReport = owner === null ? undefined : reports.get(owner)?.services[service.name];
    return {
      name: service.name,
      nodes: service.nodes,
      prefer: service.prefer,
      failover: service.failover,
      failoverAfterMs: service.failoverAfterMs,
      owner,
      ownerUnhealthy: ownerReport?.state === "running" && !ownerReport.healthy,
      unownedMs: unownedSince === undefined ? 0 : now - unownedSince,
      openWindow: this.options.openWindow(service, Date.now()),
      failbackSpentIn: this.failbackSpentIn.get(service.name) ?? null,
      startFailedOn: [...(this.startFailed.get(service.name)?.keys() ?? [])],
      moveTo: moves.get(service.name) ?? null,
      stopFailedOn: service.stopMustSucceed ? this.stopFailedOn(service.name, reports) : null,
    };
  }
}
