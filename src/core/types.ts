// Data types shared by the pure cores. No I/O, no timers, no imports from outside src/core.

/** A node's stable id from config (e.g. "n1"). Also the CN of its certificate and its PSK identity. */
export type NodeId = string;

/** The grammar of a node id (also what versionKey() in lww.ts relies on). */
export const nodeIdPattern = /^[a-z0-9][a-z0-9._-]{0,62}$/;

/** The grammar of a service name (config, grants on the mesh, API paths). */
export const serviceNamePattern = /^[a-z0-9][a-z0-9_-]{0,62}$/;

/** The grammar of a journal entry's type (what picks its handler on each node). */
export const entryTypePattern = /^[a-z0-9][a-z0-9._-]{0,63}$/;

/** An election term. Monotonic per node; the fencing token handed to drivers and writes. */
export type Term = number;

export const Role = {
  Follower: "follower",
  PreCandidate: "pre-candidate",
  Candidate: "candidate",
  Leader: "leader",
} as const;
export type Role = (typeof Role)[keyof typeof Role];

/** A message addressed from one node to another; cores emit these, shells deliver them. */
export interface Envelope<M> {
  from: NodeId;
  to: NodeId;
  message: M;
}

/** One reason a configuration is impossible; `[]` means valid. */
export interface ConfigProblem {
  key: string;
  message: string;
}
