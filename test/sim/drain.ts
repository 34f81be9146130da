// The shell's drain loop (src/cluster/election_runner.ts), shared by the cluster and the interaction
// transcripts: while hasReady(): persist the hardState (write, fsync), send the messages, hand out the
// fencing term and the events, advance. `crashesHere` is asked before every write, fsync and send, so a
// crash can tear the drain at exactly those points; the checker sees every message as it leaves and
// every event as it is emitted.
import type { ProposeResult } from "../../src/core/election.ts";
import type {
  ElectionEvent,
  ElectionMessage,
  ElectionReady,
  ElectionStatus,
  HardState,
} from "../../src/core/election_types.ts";
import type { MembershipChange } from "../../src/core/membership.ts";
import type { Envelope, NodeId } from "../../src/core/types.ts";
import type { ElectionSafetyChecker } from "./checkers/election_safety.ts";
import type { SimDisk } from "./disk.ts";

/** The surface of src/core/election.ts the simulator drives. */
export interface ElectionCore {
  tick(): void;
  step(envelope: Envelope<ElectionMessage>): void;
  campaign(): void;
  transferLeadership(to: NodeId): void;
  proposeMembership(change: MembershipChange): ProposeResult;
  peerDisconnected(peer: NodeId): void;
  hasReady(): boolean;
  ready(): ElectionReady;
  advance(ready: ElectionReady): void;
  status(): ElectionStatus;
}

/** One input yields a Ready or two; a core that keeps producing them is stuck in a loop. */
const readiesPerDrainMax = 64;

export interface DrainHooks {
  /** Asked before each write, fsync and send: true when the node crashes at that point. */
  crashesHere(): boolean;
  /** The Ready's hardState is durable. */
  persisted?(state: HardState): void;
  send(envelope: Envelope<ElectionMessage>): void;
  /** The Ready's fencing term is durable and its events are out. */
  emitted(events: readonly ElectionEvent[], ready: ElectionReady): void;
}

/** Drains `core` completely; false when the node crashed part-way. */
export function drainCore(
  id: NodeId,
  core: ElectionCore,
  disk: SimDisk,
  checker: ElectionSafetyChecker,
  hooks: DrainHooks,
): boolean {
  for (let readies = 0; core.hasReady(); readies++) {
    if (readies === readiesPerDrainMax)
      throw new Error(`${id}: drain did not settle after ${readies} Readies`);
    const ready = core.ready();
    if (ready.hardState) {
      if (hooks.crashesHere()) return false;
      disk.write(ready.hardState);
      if (hooks.crashesHere()) return false;
      disk.sync();
      hooks.persisted?.(ready.hardState);
    }
    for (const envelope of ready.messages) {
      if (hooks.crashesHere()) return false;
      checker.observeSend(envelope, disk.durableState);
      hooks.send(envelope);
    }
    // The fencing token is handed out with the events, once its term is durable.
    checker.observeFencingTerm(id, ready.fencingTerm);
    checker.observeEvents(id, ready.events, core.status());
    hooks.emitted(ready.events, ready);
    core.advance(ready);
  }
  return true;
}
