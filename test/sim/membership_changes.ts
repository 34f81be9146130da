// What the membership swarm asks a leader for: one change drawn from what its list allows (add a node that
// is not in it as a learner, promote a learner, demote or remove another voter, update a priority or role),
// or the next step of a replacement (add a spare, promote it, remove the old voter), as an operator would
// run `tandem member replace`. Changes aimed at the leader itself are left out: the core refuses them.
import type { MemberSpec, Membership, MembershipChange } from "../../src/core/membership.ts";
import type { Prng } from "../../src/core/prng.ts";
import type { NodeId } from "../../src/core/types.ts";

/** A replacement under way: `incoming` is added and promoted, then `outgoing` removed. */
export interface Replacement {
  incoming: NodeId;
  outgoing: NodeId;
}

export interface ChangeDraw {
  change: MembershipChange;
  /** The replacement this change starts or continues; null when it ends one or is no replacement. */
  replacement: Replacement | null;
}

const priorityMax = 3;

/**
 * The next change for the leader `leaderId` holding `list`; `outsiders` may be added. Null when nothing
 * applies. `replacement` continues first, if its steps still fit the list.
 */
export function drawChange(
  rng: Prng,
  list: Membership,
  leaderId: NodeId,
  outsiders: readonly NodeId[],
  replacement: Replacement | null,
): ChangeDraw | null {
  const next = replacement === null ? null : replacementStep(list, leaderId, replacement);
  if (next !== null) return next;
  const others = list.nodes.filter((n) => n.id !== leaderId);
  const learners = others.filter((n) => !n.voting);
  const voters = others.filter((n) => n.voting);
  const draws: (() => ChangeDraw)[] = [];
  if (outsiders.length > 0) draws.push(() => plain(addLearner(rng, rng.pick(outsiders))));
  if (learners.length > 0) draws.push(() => plain({ type: "promote", id: rng.pick(learners).id }));
  if (voters.length > 0) draws.push(() => plain({ type: "demote", id: rng.pick(voters).id }));
  if (voters.length > 0) draws.push(() => plain({ type: "remove", id: rng.pick(voters).id }));
  if (others.length > 0) draws.push(() => plain({ type: "remove", id: rng.pick(others).id }));
  if (others.length > 0) draws.push(() => plain(update(rng, rng.pick(list.nodes))));
  const members = voters.filter((n) => n.role === "member");
  if (outsiders.length > 0 && members.length > 0) {
    draws.push(() => {
      const started = { incoming: rng.pick(outsiders), outgoing: rng.pick(members).id };
      return { change: addLearner(rng, started.incoming, "member"), replacement: started };
    });
  }
  return draws.length === 0 ? null : rng.pick(draws)();
}

function replacementStep(list: Membership, leaderId: NodeId, r: Replacement): ChangeDraw | null {
  const incoming = list.nodes.find((n) => n.id === r.incoming);
  if (incoming === undefined) return null;
  if (!incoming.voting) return { change: { type: "promote", id: r.incoming }, replacement: r };
  const outgoing = list.nodes.some((n) => n.id === r.outgoing);
  if (!outgoing || r.outgoing === leaderId) return null;
  return { change: { type: "remove", id: r.outgoing }, replacement: null };
}

function plain(change: MembershipChange): ChangeDraw {
  return { change, replacement: null };
}

function addLearner(rng: Prng, id: NodeId, role?: MemberSpec["role"]): MembershipChange {
  return {
    type: "add",
    node: {
      id,
      address: "",
      role: role ?? (rng.chance(0.2) ? "witness" : "member"),
      priority: rng.intBetween(0, priorityMax),
      autoPromote: rng.chance(0.5),
    },
  };
}

function update(rng: Prng, node: MemberSpec): MembershipChange {
  if (rng.chance(0.7)) return { type: "update", id: node.id, priority: rng.intBetween(0, priorityMax) };
  return { type: "update", id: node.id, role: node.role === "member" ? "witness" : "member" };
}
