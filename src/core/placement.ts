// Placement: which node should run each service, and why. A pure function of what the leader knows: the
// members and how long each has been unreachable, the current owners, which nodes finished starting,
// restore windows (and the one last spent on a failback, so a service moves home at most once per window),
// operator commands. The leader turns decisions into grants (src/services/) and may decide as often as it
// likes: the same inputs give the same decisions. Nothing here touches a clock, a timer or the network.
//
// Rules, in order, for each service:
// 0. With stop_must_succeed, a node that reports its stop failed keeps the service from starting anywhere
//    (it may still run there) until its retried stop succeeds.
// 1. An operator's move wins, within eligibility: the target must be eligible, reachable, started and not
//    drained (the API refuses other targets; an impossible one left over is ignored here).
// 2. The owner keeps a service while it may (sticky): while it is eligible, not drained, reports the
//    service healthy, and has been unreachable for less than `failoverAfterMs`. Inside an open restore
//    window, a preferred node ranked above the owner that is up and started takes it back, once per window.
// 3. An owner that is lost (unreachable for `failoverAfterMs`, its health check failing, or the service
//    failed to start there) hands the service on only with `failover`; without, it stays assigned there and is reported down. A drained or
//    no longer eligible owner hands it on either way: those are an operator's decisions.
// 4. A service to place goes to the first preferred node that is usable, else to the usable eligible
//    node running the fewest services (then by id). A node still starting is never chosen; while a
//    preferred node ranked above the best choice is up but still starting, an unowned service waits for
//    it, for at most `failoverAfterMs`.
import type { NodeId } from "./types.ts";

export interface PlacementNode {
  id: NodeId;
  /** Witnesses vote and run no services. */
  witness: boolean;
  /** 0 while the leader hears the node; otherwise how long it has been unreachable, ms. */
  unreachableMs: number;
  /** Its drivers reported their state after it started: only such a node may be given a service. */
  ready: boolean;
  /** An operator drained it: it hands its services on and takes none. */
  drained: boolean;
}

export interface PlacementService {
  name: string;
  /** The eligible nodes; null means every member that is not a witness. */
  nodes: readonly NodeId[] | null;
  /** Home nodes, most preferred first. */
  prefer: readonly NodeId[];
  /** False: a lost owner keeps the service (down) until it returns or an operator moves it. */
  failover: boolean;
  failoverAfterMs: number;
  /** The node it is assigned to now, or null. */
  owner: NodeId | null;
  /** The owner's health check for it has failed past its threshold: as good as losing the owner. */
  ownerUnhealthy: boolean;
  /** How long it has had no owner, ms (0 while it has one). */
  unownedMs: number;
  /** The restore window open now, by an id unique to this opening; null when none is open. */
  openWindow: string | null;
  /** The window in which it last moved home (kept by the service layer once it granted the failback). */
  failbackSpentIn: string | null;
  /** Nodes where starting it failed lately: not chosen until the service layer clears them. */
  startFailedOn: readonly NodeId[];
  /** An operator asked for it to run here. */
  moveTo: NodeId | null;
  /** With stop_must_succeed: a node whose stop of it failed (it may still run there), or null. */
  stopFailedOn: NodeId | null;
}

export const PlacementCode = {
  /** Kept where it runs. */
  Running: "running",
  /** Kept while its owner is unreachable for less than failoverAfterMs. */
  OwnerUnreachable: "owner-unreachable",
  /** Its owner is lost and failover is off: assigned there, down. */
  FailoverDisabled: "failover-disabled",
  Moved: "moved-by-operator",
  Failback: "failback",
  Failover: "failover",
  Drained: "owner-drained",
  Ineligible: "owner-ineligible",
  Placed: "placed",
  WaitingForPreferred: "waiting-for-preferred",
  StopFailed: "stop-failed",
  NoNode: "no-node",
} as const;
export type PlacementCode = (typeof PlacementCode)[keyof typeof PlacementCode];

export interface PlacementDecision {
  service: string;
  /** Where it should run; null when no node can. */
  owner: NodeId | null;
  code: PlacementCode;
  /** For operators: why, in a sentence. */
  reason: string;
  /**
   * The decision changes by itself this many ms from now unless something else does (an unreachable owner
   * reaching failover_after_ms, the wait for a starting preferred node ending); null: it does not.
   */
  decideAgainInMs: number | null;
}

/** Decides every service, in name order (so ties in load are broken the same way on every leader). */
export function decidePlacement(
  nodes: readonly PlacementNode[],
  services: readonly PlacementService[],
): PlacementDecision[] {
  const byId = new Map(nodes.map((node) => [node.id, node]));
  const load = new Map<NodeId, number>();
  const decisions: PlacementDecision[] = [];
  for (const service of [...services].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    const decision = decideOne(service, byId, load);
    if (decision.owner !== null) load.set(decision.owner, (load.get(decision.owner) ?? 0) + 1);
    decisions.push(decision);
  }
  return decisions;
}

function decideOne(
  service: PlacementService,
  byId: ReadonlyMap<NodeId, PlacementNode>,
  load: ReadonlyMap<NodeId, number>,
): PlacementDecision {
  const eligible = eligibleNodes(service, byId);
  const usable = (id: NodeId): boolean => unusableBecause(service, id, byId) === null;
  const decision = (
    owner: NodeId | null,
    code: PlacementCode,
    reason: string,
    decideAgainInMs: number | null = null,
  ): PlacementDecision => ({ service: service.name, owner, code, reason, decideAgainInMs });

  if (service.stopFailedOn !== null) {
    return decision(
      null,
      PlacementCode.StopFailed,
      `its stop failed on ${service.stopFailedOn}; it starts nowhere until that stop succeeds (stop_must_succeed)`,
    );
  }
  const target = service.moveTo;
  if (target !== null && usable(target)) {
    return decision(target, PlacementCode.Moved, `moved to ${target} by an operator`);
  }

  const owner = service.owner;
  let handOff: { code: PlacementCode; reason: string } | null = null;
  if (owner !== null) {
    const node = byId.get(owner);
    if (node === undefined || !eligible.includes(owner)) {
      handOff = { code: PlacementCode.Ineligible, reason: `${owner} may no longer run it` };
    } else if (node.drained) {
      handOff = { code: PlacementCode.Drained, reason: `${owner} was drained` };
    } else if (
      service.ownerUnhealthy ||
      service.startFailedOn.includes(owner) ||
      node.unreachableMs >= service.failoverAfterMs
    ) {
      const lost = service.ownerUnhealthy
        ? `its health check fails on ${owner}`
        : service.startFailedOn.includes(owner)
          ? `it failed to start on ${owner}`
          : `${owner} unreachable for ${node.unreachableMs} ms`;
      if (!service.failover) {
        return decision(owner, PlacementCode.FailoverDisabled, `${lost}; failover is off, so it stays down`);
      }
      handOff = { code: PlacementCode.Failover, reason: lost };
    } else if (node.unreachableMs > 0) {
      return decision(
        owner,
        PlacementCode.OwnerUnreachable,
        `${owner} unreachable for ${node.unreachableMs} ms; it moves after ${service.failoverAfterMs} ms`,
        service.failoverAfterMs - node.unreachableMs,
      );
    } else {
      const home = service.prefer.find((id) => usable(id));
      const window = service.openWindow;
      if (
        window !== null &&
        home !== undefined &&
        ranksAbove(service.prefer, home, owner) &&
        service.failbackSpentIn !== window
      ) {
        return decision(home, PlacementCode.Failback, `back home to ${home} in its restore window`);
      }
      return decision(owner, PlacementCode.Running, `runs on ${owner}`);
    }
  }

  const candidates = eligible.filter((id) => id !== owner && usable(id));
  const preferred = service.prefer.find((id) => candidates.includes(id));
  const choice = preferred ?? leastLoaded(candidates, load);
  if (owner === null && service.unownedMs < service.failoverAfterMs) {
    // A preferred node that is up but still starting outranks the choice: wait for it, not for long.
    const starting = service.prefer.find((id) => {
      const node = byId.get(id);
      return node !== undefined && eligible.includes(id) && node.unreachableMs === 0 && !node.ready;
    });
    if (starting !== undefined && (choice === undefined || ranksAbove(service.prefer, starting, choice))) {
      return decision(
        null,
        PlacementCode.WaitingForPreferred,
        `waiting for ${starting} to finish starting`,
        service.failoverAfterMs - service.unownedMs,
      );
    }
  }
  if (choice === undefined) {
    const why = handOff === null ? "" : `${handOff.reason}; `;
    return decision(null, PlacementCode.NoNode, `${why}no eligible node is up, started and undrained`);
  }
  if (handOff !== null) return decision(choice, handOff.code, `${handOff.reason}: moved to ${choice}`);
  return decision(choice, PlacementCode.Placed, `placed on ${choice}`);
}

/**
 * Why an operator may not move `service` to `target` now (the API's answer), or null when placement would
 * take the move: the same test as for any node it chooses.
 */
export function moveRefusal(
  nodes: readonly PlacementNode[],
  service: PlacementService,
  target: NodeId,
): string | null {
  return unusableBecause(service, target, new Map(nodes.map((node) => [node.id, node])));
}

function unusableBecause(
  service: PlacementService,
  id: NodeId,
  byId: ReadonlyMap<NodeId, PlacementNode>,
): string | null {
  const node = byId.get(id);
  if (node === undefined) return `${id} is not a member`;
  if (!eligibleNodes(service, byId).includes(id)) return `${id} may not run ${service.name}`;
  if (node.unreachableMs > 0) return `${id} is unreachable`;
  if (!node.ready) return `${id} has not reported its services yet`;
  if (node.drained) return `${id} is drained`;
  if (service.startFailedOn.includes(id)) return `${service.name} failed on ${id} lately`;
  return null;
}

function eligibleNodes(service: PlacementService, byId: ReadonlyMap<NodeId, PlacementNode>): NodeId[] {
  const ids = service.nodes ?? [...byId.keys()];
  return ids.filter((id) => byId.get(id)?.witness === false);
}

/** `a` is preferred over `b`: listed earlier, or listed when `b` is not. */
function ranksAbove(prefer: readonly NodeId[], a: NodeId, b: NodeId): boolean {
  const rankA = prefer.indexOf(a);
  const rankB = prefer.indexOf(b);
  return rankA !== -1 && (rankB === -1 || rankA < rankB);
}

function leastLoaded(candidates: readonly NodeId[], load: ReadonlyMap<NodeId, number>): NodeId | undefined {
  let best: NodeId | undefined;
  for (const id of [...candidates].sort()) {
    if (best === undefined || (load.get(id) ?? 0) < (load.get(best) ?? 0)) best = id;
  }
  return best;
}
