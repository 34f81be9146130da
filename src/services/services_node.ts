// Services on one node: a runner per service this node may run, the reports they make (sent to the leader
// every reportEveryMs and at each change), and, while this node leads, the placement loop whose table goes
// to every member (at each change, and every reportEveryMs unchanged). A table from a leader tells each
// runner whether its service is assigned here.
import type { Logger } from "pino";
import type { Coordination } from "../cluster/index.ts";
import type { ServiceConfig } from "../config/index.ts";
import type { NodeId } from "../core/types.ts";
import { decodeJsonPayload, encodeJsonPayload, type MeshApi } from "../mesh/index.ts";
import type { MonotonicTicker, Ticker } from "../shell/index.ts";
import type { Driver } from "./exec_driver.ts";
import { type NodeReport, PlacementLoop } from "./placement_loop.ts";
import { type RunnerReport, ServiceRunner } from "./service_runner.ts";
import {
  SERVICES_CHANNEL,
  type ServicesMessage,
  type ServiceTableEntry,
  servicesMessageSchema,
} from "./services_wire.ts";

export interface ServicesNodeOptions {
  nodeId: NodeId;
  services: readonly ServiceConfig[];
  /** The drivers of a service, in start order. */
  drivers: (service: ServiceConfig) => Driver[];
  mesh: Pick<MeshApi, "send" | "onMessage">;
  coordination: Coordination;
  ticker: Ticker;
  /** The grants' lease (the cluster's grantLeaseMs). */
  leaseMs: number;
  logger: Logger;
  /** The restore window of `service` open at wall-clock `atMs`, or null. */
  openWindow: (service: ServiceConfig, atMs: number) => string | null;
}

/** Reports refresh this often without a change (placement counts a node started while they come). */
export const reportEveryMs = 2_000;
/** The leader decides this often. */
export const placementEveryMs = 500;

export interface ServicesTable {
  /** The term of the leader that made it; 0 before any. */
  term: number;
  services: Record<string, ServiceTableEntry>;
}

export class ServicesNode {
  private readonly options: ServicesNodeOptions;
  private readonly runners = new Map<string, ServiceRunner>();
  private readonly reporter: MonotonicTicker;
  private readonly placement: MonotonicTicker;
  private loop: PlacementLoop | null = null;
  private deciding = false;
  /** Leader: the latest report of each node. */
  private readonly reports = new Map<NodeId, NodeReport>();
  private table: ServicesTable = { term: 0, services: {} };
  /** Leader: the last table sent, and when (monotonic ms): unchanged, it goes out every reportEveryMs. */
  private sent: { text: string; atMs: number } = { text: "", atMs: Number.NEGATIVE_INFINITY };
  private readonly unsubscribes: Array<() => void> = [];

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
          leaseMs: options.leaseMs,
          logger: options.logger,
          onReport: () => this.sendReport(),
        }),
      );
    }
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
    this.loop = null;
    await Promise.all([...this.runners.values()].map((runner) => runner.close()));
  }

  /** The latest table from a leader, and what this node's runners report. */
  status(): { table: ServicesTable; local: Record<string, RunnerReport> } {
    const local: Record<string, RunnerReport> = {};
    for (const [name, runner] of this.runners) local[name] = runner.report();
    return { table: this.table, local };
  }

  private leadershipChanged(): void {
    const view = this.options.coordination.leadership();
    if (view.role === "leader" && this.loop === null) {
      this.reports.clear();
      this.loop = new PlacementLoop({
        services: this.options.services,
        coordination: this.options.coordination,
        logger: this.options.logger,
        now: () => performance.now(),
        openWindow: this.options.openWindow,
        previousTable: () => this.table.services,
      });
      this.placement.start();
    } else if (view.role !== "leader" && this.loop !== null) {
      this.loop = null;
      this.placement.stop();
    }
    this.sendReport();
  }

  private async decide(): Promise<void> {
    const loop = this.loop;
    if (loop === null || this.deciding) return;
    this.deciding = true;
    try {
      const services = await loop.round(this.reports);
      if (this.loop !== loop) return;
      const table: ServicesTable = { term: this.options.coordination.leadership().term, services };
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
    } finally {
      this.deciding = false;
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
      return;
    }
    // Only the leader of the newest term places services.
    if (message.term < this.table.term || from !== this.options.coordination.leadership().leaderId) return;
    this.applyTable({ term: message.term, services: message.services });
  }

  private applyTable(table: ServicesTable): void {
    this.table = table;
    for (const [name, runner] of this.runners)
      runner.assigned(table.services[name]?.owner === this.options.nodeId);
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
