// Durable election state (term, vote). Saved with write-temp, fsync, rename, fsync-dir, so that a crash at
// any instant leaves either the old or the new state on disk, never a torn file: a restarted node must
// never vote twice in one term.
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { emptyHardState, type HardState } from "../core/election_types.ts";
import { writeFileAtomic } from "../shell/index.ts";
import { checkMembership } from "./membership_schema.ts";

export interface HardStateStore {
  load(): HardState;
  save(state: HardState): void;
}

const hardStateSchema = z.strictObject({
  term: z.number().int().nonnegative(),
  votedFor: z.string().nullable(),
  // Absent in files written before membership was cluster state: such a node bootstraps from its config.
  membership: z.strictObject({ config: z.unknown(), term: z.number().int().nonnegative() }).optional(),
});

export class CorruptStateError extends Error {
  override name = "CorruptStateError";
}

export const HARD_STATE_FILE = "election-state.json";

export class FileHardStateStore implements HardStateStore {
  readonly path: string;

  constructor(dataDir: string) {
    this.path = join(dataDir, HARD_STATE_FILE);
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  }

  load(): HardState {
    let text: string;
    try {
      text = readFileSync(this.path, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return emptyHardState;
      throw error;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (cause) {
      throw new CorruptStateError(`${this.path}: not JSON; refusing to start with an unknown term`, {
        cause,
      });
    }
    const result = hardStateSchema.safeParse(parsed);
    if (!result.success) {
      throw new CorruptStateError(`${this.path}: ${result.error.issues[0]?.message ?? "invalid"}`);
    }
    const { term, votedFor, membership } = result.data;
    if (membership === undefined) return { term, votedFor };
    const checked = checkMembership(membership.config);
    if (!checked.ok) throw new CorruptStateError(`${this.path}: membership: ${checked.reason}`);
    return { term, votedFor, membership: { config: checked.membership, term: membership.term } };
  }

  save(state: HardState): void {
    writeFileAtomic(this.path, JSON.stringify(state), 0o600);
  }
}

export class MemoryHardStateStore implements HardStateStore {
  private state: HardState = emptyHardState;
  saves = 0;
  load(): HardState {
    return this.state;
  }
  save(state: HardState): void {
    this.state = { ...state };
    this.saves++;
  }
}
