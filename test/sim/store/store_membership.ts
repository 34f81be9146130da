// Membership changes for the store swarm. The cluster's membership changes one node at a time at random
// moments: a member leaves, or a node outside joins (a spare with an empty store, or one that left earlier,
// with what it kept). Each node learns each change after a lag of its own, so for a while nodes disagree
// about who is in, as they would while a change travels through the cluster; a node outside has no peers.
// Healing hands every node the latest membership at once.
import type { Prng } from "../../../src/core/prng.ts";
import type { NodeId } from "../../../src/core/types.ts";
import type { StoreCluster } from "./store_cluster.ts";

interface PendingView {
  atTick: number;
  node: NodeId;
  version: number;
  members: readonly NodeId[];
}

export class MembershipChurn {
  /** Changes made so far. */
  changes = 0;
  private readonly cluster: StoreCluster;
  private readonly rng: Prng;
  private readonly lagTicksMax: number;
  private members: NodeId[];
  private version = 0;
  /** Each node's view: the latest membership it learned, and its version. */
  private readonly views = new Map<NodeId, { version: number; members: readonly NodeId[] }>();
  private pending: PendingView[] = [];

  constructor(cluster: StoreCluster, members: readonly NodeId[], lagTicksMax: number, rng: Prng) {
    this.cluster = cluster;
    this.rng = rng;
    this.lagTicksMax = lagTicksMax;
    this.members = [...members];
    for (const id of cluster.ids) this.views.set(id, { version: 0, members: this.members });
  }

  /** The nodes in the cluster now. */
  get current(): readonly NodeId[] {
    return this.members;
  }

  /** Whether `id` believes it is in the cluster (its view may lag). */
  believesMember(id: NodeId): boolean {
    return this.views.get(id)?.members.includes(id) ?? false;
  }

  /** One fault tick: a change with probability `changeProbability`, then the views due by `nowTick`. */
  tick(nowTick: number, changeProbability: number): void {
    if (this.rng.chance(changeProbability)) this.change(nowTick);
    this.learn((view) => view.atTick <= nowTick);
  }

  /** Every node learns the latest membership now. */
  settle(): void {
    this.learn(() => true);
  }

  private change(nowTick: number): void {
    const outside = this.cluster.ids.filter((id) => !this.members.includes(id));
    const leave = outside.length === 0 || (this.members.length > 1 && this.rng.chance(0.5));
    if (leave && this.members.length === 1) return;
    const node = this.rng.pick(leave ? this.members : outside);
    this.members = leave ? this.members.filter((id) => id !== node) : [...this.members, node];
    this.version++;
    this.changes++;
    this.cluster.line(
      `membership v${this.version}: ${node} ${leave ? "leaves" : "joins"} → [${this.members}]`,
    );
    for (const id of this.cluster.ids) {
      const atTick = nowTick + this.rng.intBetween(0, this.lagTicksMax);
      this.pending.push({ atTick, node: id, version: this.version, members: this.members });
    }
  }

  private learn(due: (view: PendingView) => boolean): void {
    const now = this.pending.filter(due);
    if (now.length === 0) return;
    this.pending = this.pending.filter((view) => !due(view));
    for (const view of now) {
      const held = this.views.get(view.node);
      // A later change learned first makes an earlier one moot.
      if (held !== undefined && held.version >= view.version) continue;
      this.views.set(view.node, { version: view.version, members: view.members });
      const inside = view.members.includes(view.node);
      this.cluster.setPeers(view.node, inside ? view.members.filter((id) => id !== view.node) : []);
    }
  }
}
