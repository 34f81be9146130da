// The multi-step membership operations of `tandem member`: waiting until a new node votes (`add --wait`)
// and `replace` (add the new node, wait until it votes, remove the old one). Each step is one committed
// change; a failure names the step and says what state the cluster was left in, so the operator knows
// whether to retry, continue or undo.
import { setTimeout as delay } from "node:timers/promises";
import { MemberApiError, type MemberClient, type MembersJson } from "./member_client.ts";

export type Report = (line: string) => void;

export interface WaitOptions {
  timeoutMs: number;
  /** How often the membership is read (default 1 s). */
  pollMs?: number;
  report: Report;
}

/** Resolves with the membership in which `id` votes; throws when it cannot happen or the deadline passes. */
export async function waitUntilVoting(
  client: Pick<MemberClient, "list">,
  id: string,
  options: WaitOptions,
): Promise<MembersJson> {
  const deadlineMs = Date.now() + options.timeoutMs;
  let said = "";
  const say = (line: string) => {
    if (line !== said) options.report(line);
    said = line;
  };
  for (;;) {
    let doc: MembersJson | null = null;
    try {
      doc = await client.list();
    } catch (error) {
      // A leader change or a restarting agent: keep asking until the deadline.
      say(`cannot read the membership (${(error as Error).message}); retrying`);
    }
    if (doc !== null) {
      const member = doc.members.find((m) => m.id === id);
      if (member === undefined) throw new Error(`${id} is not in membership v${doc.version}`);
      if (member.voting) return doc;
      if (!member.autoPromote) {
        throw new Error(
          `${id} is a learner the leader does not promote (added with --learner): tandem member promote ${id}`,
        );
      }
      say(
        member.link === "up"
          ? `${id} is linked and catching up as a learner in membership v${doc.version}; the leader promotes it once it has caught up`
          : `waiting for ${id} to link: start its agent (tandem agent on ${id}, with its certificate)`,
      );
    }
    if (Date.now() >= deadlineMs) {
      throw new Error(`${id} did not become a voter within ${options.timeoutMs / 1000} s (${said})`);
    }
    await delay(options.pollMs ?? 1_000);
  }
}

export interface ReplaceOptions {
  oldId: string;
  newId: string;
  address: string;
  role: "member" | "witness";
  priority: number;
  /** Passed to the removal: proceed even if it leaves fewer healthy voters than a quorum. */
  force: boolean;
  timeoutMs: number;
  pollMs?: number;
  report: Report;
}

/** One step of a replace that failed, with the state it left. */
export class ReplaceStepError extends Error {
  override name = "ReplaceStepError";
}

/**
 * Adds `newId` (promoted by the leader once caught up), waits until it votes, then removes `oldId`. Run
 * again after a failure, it continues where it stopped: a `newId` already listed at `address` is not added
 * twice. Resolves with the final membership version.
 */
export async function replaceMember(
  client: Pick<MemberClient, "list" | "add" | "remove">,
  o: ReplaceOptions,
): Promise<number> {
  const { oldId, newId } = o;
  if (oldId === newId) throw new Error("the old and the new node must have different ids");
  const start = await client.list();
  if (!start.members.some((m) => m.id === oldId)) {
    throw new Error(`${oldId} is not in membership v${start.version}: nothing to replace`);
  }
  const listed = start.members.find((m) => m.id === newId);
  if (listed !== undefined && listed.address !== o.address) {
    throw new Error(
      `${newId} is already in membership v${start.version} at ${listed.address}, not ${o.address}: ` +
        `move it first (tandem member update ${newId} --address ${o.address}) or pick another id`,
    );
  }
  if (listed === undefined) {
    let version: number;
    try {
      version = await client.add({
        id: newId,
        address: o.address,
        role: o.role,
        priority: o.priority,
        learner: false,
      });
    } catch (error) {
      const state = mayHaveCommitted(error)
        ? `the add may still commit: check tandem member list, then run this command again`
        : `nothing changed: ${oldId} is still a member, ${newId} was not added`;
      throw new ReplaceStepError(`step 1/3 (add ${newId}) failed: ${(error as Error).message}. ${state}`);
    }
    o.report(`step 1/3: added ${newId} at ${o.address} as a learner (membership v${version})`);
  } else {
    o.report(
      `step 1/3: ${newId} is already in membership v${start.version} (an earlier run): not added again`,
    );
  }

  o.report(`step 2/3: waiting up to ${o.timeoutMs / 1000} s for ${newId} to vote`);
  try {
    await waitUntilVoting(client, newId, o);
  } catch (error) {
    throw new ReplaceStepError(
      `step 2/3 (wait for ${newId} to vote) failed: ${(error as Error).message}. ` +
        `State: ${newId} is in the membership, ${oldId} still votes; nothing was removed. ` +
        `Start ${newId} and run this command again to continue, or undo with tandem member remove ${newId}`,
    );
  }
  o.report(`step 2/3: ${newId} votes`);

  let version: number;
  try {
    version = await client.remove(oldId, o.force);
  } catch (error) {
    const state = mayHaveCommitted(error)
      ? `the removal may still commit: check tandem member list`
      : `${newId} votes and ${oldId} is still a member; retry with tandem member remove ${oldId}${o.force ? " --force" : ""}`;
    throw new ReplaceStepError(`step 3/3 (remove ${oldId}) failed: ${(error as Error).message}. ${state}`);
  }
  o.report(`step 3/3: removed ${oldId} (membership v${version}); ${newId} has replaced it`);
  return version;
}

/** Only a typed refusal (4xx, or 503: no leader took it) proves that a change was not made. */
function mayHaveCommitted(error: unknown): boolean {
  return !(error instanceof MemberApiError && (error.status < 500 || error.status === 503));
}
