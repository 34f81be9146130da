// The state behind the transcript commands: real election cores stepped by hand, no clock and no random
// network. Messages wait in one FIFO list until `deliver` or `stabilize`; ticks happen only on `tick`.
// Every drain goes through drain.ts (persist, send, events, advance) and every input is followed by
// the election safety checks, so a transcript can never show a state the swarm would reject.
import {
  type ElectionConfig,
  type ElectionMessage,
  emptyHardState,
} from "../../../src/core/election_types.ts";
import { Prng } from "../../../src/core/prng.ts";
import type { Envelope, NodeId } from "../../../src/core/types.ts";
import { ElectionSafetyChecker } from "../checkers/election_safety.ts";
import { type ElectionFactory, formatEvent, formatMessage } from "../cluster.ts";
import { bootstrappedState, SimDisk } from "../disk.ts";
import { drainCore, type ElectionCore } from "../drain.ts";
import { CommandError } from "./command.ts";

export interface EnvNode {
  readonly config: ElectionConfig;
  readonly disk: SimDisk;
  core: ElectionCore | null;
  boots: number;
}

export class InteractionEnv {
  readonly nodes = new Map<NodeId, EnvNode>();
  inflight: Envelope<ElectionMessage>[] = [];
  /** Directed paths "from>to" that drop what crosses them. */
  readonly cut = new Set<string>();
  checker = new ElectionSafetyChecker([]);
  private readonly createElection: ElectionFactory;
  private rng = new Prng("interaction");
  private out: string[] = [];

  constructor(createElection: ElectionFactory) {
    this.createElection = createElection;
  }

  /**
   * Replaces the cluster (add-nodes). Nodes start with their list agreed as version 1 on disk, unless
   * `fresh` or joining: then with nothing on disk.
   */
  reset(configs: readonly ElectionConfig[], seed: string, fresh = false): void {
    this.nodes.clear();
    this.inflight = [];
    this.cut.clear();
    this.rng = new Prng(seed);
    this.checker = new ElectionSafetyChecker(configs[0]?.witnesses ?? []);
    for (const config of configs) {
      this.nodes.set(config.selfId, {
        config,
        disk: new SimDisk(fresh || config.join === true ? emptyHardState : bootstrappedState(config)),
        core: null,
        boots: 0,
      });
    }
    for (const config of configs) this.boot(config.selfId);
  }

  boot(id: NodeId): void {
    const node = this.node(id);
    node.boots++;
    const persisted = node.disk.load();
    node.core = this.createElection(node.config, persisted, this.rng.fork(`${id}/boot/${node.boots}`));
    this.print(`${id} boot #${node.boots} (term=${persisted.term} vote=${persisted.votedFor ?? "-"})`);
    this.drain(id);
  }

  /**
   * Runs `input` on a live node, drains it and checks safety. `header` introduces the node's output;
   * with `quiet` it is printed only when output follows (ticks that change nothing stay silent).
   */
  apply(id: NodeId, header: string, input: (core: ElectionCore) => void, quiet = false): void {
    const core = this.live(id);
    const mark = this.out.length;
    this.print(header);
    input(core);
    this.drain(id);
    if (quiet && this.out.length === mark + 1) this.out.length = mark;
    this.check();
  }

  print(line: string): void {
    this.out.push(line);
  }

  /** The lines printed since the last call. */
  takeOutput(): string[] {
    const out = this.out;
    this.out = [];
    return out;
  }

  node(id: NodeId): EnvNode {
    const node = this.nodes.get(id);
    if (node === undefined) throw new CommandError(`no node ${id}`);
    return node;
  }

  live(id: NodeId): ElectionCore {
    const core = this.node(id).core;
    if (core === null) throw new CommandError(`${id} is down`);
    return core;
  }

  check(): void {
    const statuses = [...this.nodes.values()].flatMap((n) => (n.core === null ? [] : [n.core.status()]));
    this.checker.checkAfterEvent(statuses);
  }

  private drain(id: NodeId): void {
    const node = this.node(id);
    if (node.core === null) return;
    drainCore(id, node.core, node.disk, this.checker, {
      crashesHere: () => false,
      persisted: (state) => this.print(`  ${id} persisted term=${state.term} vote=${state.votedFor ?? "-"}`),
      send: (envelope) => {
        this.inflight.push(envelope);
        this.print(`  ${envelope.from}->${envelope.to} ${formatMessage(envelope.message)}`);
      },
      emitted: (events) => {
        for (const event of events) this.print(`  ${id} ${formatEvent(event)}`);
      },
    });
  }
}
