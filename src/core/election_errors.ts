// Exceptions of the election core. Both mean a bug in the caller or the core, never bad network input:
// configs are validated at the shell boundary with validateElectionConfig first.
import type { ConfigProblem } from "./types.ts";

export class ElectionConfigError extends Error {
  override readonly name = "ElectionConfigError";
  readonly problems: readonly ConfigProblem[];

  constructor(problems: readonly ConfigProblem[], options?: ErrorOptions) {
    super(`invalid election config: ${problems.map((p) => `${p.key}: ${p.message}`).join("; ")}`, options);
    this.problems = problems;
  }
}

export class ElectionInvariantError extends Error {
  override readonly name = "ElectionInvariantError";
  readonly violations: readonly string[];

  constructor(selfId: string, violations: readonly string[], options?: ErrorOptions) {
    super(`election invariant violated on ${selfId}: ${violations.join("; ")}`, options);
    this.violations = violations;
  }
}
