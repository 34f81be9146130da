// The membership's HTTP API (docs/membership.md): the list this node holds, with each node's link and the
// version it announced, at GET /api/v1/members; one change per request, made by the leader wherever it is
// asked and answered once a quorum holds it. Ids, addresses and bodies are checked before the cluster is
// asked, so a refused request changes nothing.
//
// Requests with a body, and every POST, must be `Content-Type: application/json`: a web page cannot send
// that cross-site without a CORS preflight, which this API never grants, so a browser on the node cannot
// drive the loopback listener (which has no ACL) into a membership change.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "pino";
import { z } from "zod";
import type { ChangeOutcome, ChangeRefusal, Cluster } from "../cluster/index.ts";
import { formatHostPort, parseHostPort } from "../config/index.ts";
import type { MembershipChange } from "../core/membership.ts";
import { nodeIdPattern } from "../core/types.ts";
import { type Checked, jsonBody, refused } from "./checked_input.ts";
import { ApiErrorCode, sendError, sendJson } from "./errors.ts";
import type { ApiRoute, RouteContext } from "./router.ts";

/** What the routes need of the cluster (a fake in tests). */
export type MembershipControl = Pick<Cluster, "members" | "status" | "changeMembership">;

export interface MemberRoutesOptions {
  logger: Logger;
}

export interface MemberJson {
  id: string;
  address: string;
  role: "member" | "witness";
  priority: number;
  /** False for a learner. */
  voting: boolean;
  /** A learner the leader promotes once it has caught up. */
  autoPromote: boolean;
  /** The node that answered. */
  self: boolean;
  /** This node's mesh link to it ("self" for itself). */
  link: "up" | "down" | "self";
  /** This node's failure detector verdict on it ("self" for itself). */
  state: string;
  /** The membership version it announced at its latest link (this node's own for itself). */
  announcedVersion: number | null;
}

export interface MembersJson {
  version: number;
  hash: string;
  committedVersion: number;
  pendingVersion: number | null;
  standing: string;
  leader: string | null;
  term: number;
  /** How the answering node's tandem.yml differs from the membership; [] when they agree. */
  configDrift: string[];
  members: MemberJson[];
}

export interface MemberChangeJson {
  version: number;
}

/** Bodies are a handful of fields. */
/** As tandem.yml's node.priority. */
const priorityMax = 1000;

const nodeIdRule = "1-63 characters of a-z 0-9 . _ - starting with a letter or digit";
/** host:port, kept in the form peers dial (IPv6 in brackets), as the agent writes its own address. */
const address = z.string().transform((text, ctx) => {
  const parsed = parseHostPort(text);
  if (parsed.ok) return formatHostPort(parsed.value);
  ctx.addIssue({ code: "custom", message: parsed.reason });
  return z.NEVER;
});
const role = z.enum(["member", "witness"]);
const priority = z.int().min(0).max(priorityMax);

const addSchema = z.strictObject({
  id: z.string().regex(nodeIdPattern, { error: `expected ${nodeIdRule}` }),
  address,
  role: role.default("member"),
  priority: priority.default(100),
  /** A learner that stays one (promote it by hand); by default the leader promotes it once caught up. */
  learner: z.boolean().default(false),
});

const updateSchema = z
  .strictObject({ address: address.optional(), priority: priority.optional(), role: role.optional() })
  .refine((b) => b.address !== undefined || b.priority !== undefined || b.role !== undefined, {
    error: "name at least one of address, priority, role",
  });

/** Empty or `{}`: promote and demote take their arguments from the path. */
const emptySchema = z.strictObject({});

const actions = ["promote", "demote"] as const;
type Action = (typeof actions)[number];

/** Status and error code per refusal; the message is the cluster's reason, which says what to do next. */
const refusalAnswers: Record<ChangeRefusal, { status: number; code: string }> = {
  // Would leave fewer healthy voters than a quorum: the operator may insist with force.
  unsafe: { status: 409, code: "membership_unsafe" },
  // Conflicts with the membership as it is (already there, not there, a change in flight, the last member).
  refused: { status: 409, code: "membership_refused" },
  "no-leader": { status: 503, code: ApiErrorCode.Unavailable },
  // Leadership moved while the change was on its way: nothing was made, so a retry is safe.
  "not-leader": { status: 503, code: ApiErrorCode.Unavailable },
  // Proposed, but no quorum confirmed it in time: it may still commit.
  uncertain: { status: 504, code: "membership_uncertain" },
};

export function memberRoutes(cluster: MembershipControl, options: MemberRoutesOptions): ApiRoute[] {
  const { logger } = options;

  const change = async (
    res: ServerResponse,
    context: RouteContext,
    requested: MembershipChange,
    force: boolean,
  ) => {
    const outcome: ChangeOutcome = await cluster.changeMembership(requested, force);
    logger.info(
      { change: requested, force, identity: context.identity.name, outcome },
      outcome.ok ? "membership change committed" : "membership change not made",
    );
    if (outcome.ok) return sendJson(res, 200, { version: outcome.version } satisfies MemberChangeJson);
    const { status, code } = refusalAnswers[outcome.refusal];
    const headers: Record<string, string> = status === 503 ? { "retry-after": "1" } : {};
    sendJson(res, status, { error: { code, message: outcome.reason } }, headers);
  };

  const list = (_req: IncomingMessage, res: ServerResponse) => sendJson(res, 200, membersJson(cluster));

  const add = async (req: IncomingMessage, res: ServerResponse, context: RouteContext) => {
    const force = forceOf(context);
    if (refused(res, force)) return;
    const body = await jsonBody(req, addSchema);
    if (refused(res, body)) return;
    const { id, role, priority, learner } = body.value;
    const node = { id, address: body.value.address, role, priority, autoPromote: !learner };
    await change(res, context, { type: "add", node }, force.value);
  };

  const getOne = (_req: IncomingMessage, res: ServerResponse, context: RouteContext) => {
    const target = targetOf(context.param);
    if (refused(res, target)) return;
    if (target.value.action !== null)
      return sendError(res, ApiErrorCode.NotFound, `no route ${context.url.pathname}`);
    const member = membersJson(cluster).members.find((m) => m.id === target.value.id);
    if (member === undefined)
      return sendError(res, ApiErrorCode.NotFound, `${target.value.id} is not a member`);
    sendJson(res, 200, member);
  };

  const remove = async (_req: IncomingMessage, res: ServerResponse, context: RouteContext) => {
    const target = idOnly(targetOf(context.param));
    const force = forceOf(context);
    if (refused(res, target) || refused(res, force)) return;
    await change(res, context, { type: "remove", id: target.value }, force.value);
  };

  const update = async (req: IncomingMessage, res: ServerResponse, context: RouteContext) => {
    const target = idOnly(targetOf(context.param));
    const force = forceOf(context);
    if (refused(res, target) || refused(res, force)) return;
    const body = await jsonBody(req, updateSchema);
    if (refused(res, body)) return;
    const { address, priority, role } = body.value;
    const fields = {
      ...(address === undefined ? {} : { address }),
      ...(priority === undefined ? {} : { priority }),
      ...(role === undefined ? {} : { role }),
    };
    await change(res, context, { type: "update", id: target.value, ...fields }, force.value);
  };

  const act = async (req: IncomingMessage, res: ServerResponse, context: RouteContext) => {
    const target = targetOf(context.param);
    const force = forceOf(context);
    if (refused(res, target) || refused(res, force)) return;
    const { id, action } = target.value;
    if (action === null) {
      return sendError(
        res,
        ApiErrorCode.MethodNotAllowed,
        `POST ${context.url.pathname}: use promote or demote`,
        {
          allow: "GET, DELETE, PATCH",
        },
      );
    }
    const body = await jsonBody(req, emptySchema);
    if (refused(res, body)) return;
    await change(res, context, { type: action, id }, force.value);
  };

  return [
    { path: "/api/v1/members", methods: { GET: list, POST: add } },
    {
      path: "/api/v1/members/",
      prefix: true,
      methods: { GET: getOne, DELETE: remove, PATCH: update, POST: act },
    },
  ];
}

function membersJson(cluster: MembershipControl): MembersJson {
  const status = cluster.status();
  const peers = new Map(status.peers.map((p) => [p.id, p]));
  const members = cluster.members().map((m): MemberJson => {
    const self = m.id === status.nodeId;
    const peer = peers.get(m.id);
    return {
      id: m.id,
      address: m.address,
      role: m.role,
      priority: m.priority,
      voting: m.voting,
      autoPromote: m.autoPromote,
      self,
      link: self ? "self" : (peer?.link ?? "down"),
      state: self ? "self" : (peer?.state ?? "unknown"),
      announcedVersion: self ? status.membership.version : (peer?.membership?.version ?? null),
    };
  });
  const { membership } = status;
  return {
    version: membership.version,
    hash: membership.hash,
    committedVersion: membership.committedVersion,
    pendingVersion: membership.pendingVersion,
    standing: membership.standing,
    leader: status.leaderId,
    term: status.term,
    configDrift: membership.configDrift,
    members,
  };
}

/** Sends the error of a failed check; true when it did. */

/** `{id}` or `{id}/promote|demote`, as the client sent it after the prefix. */
function targetOf(param: string): Checked<{ id: string; action: Action | null }> {
  const [rawId = "", rawAction, ...rest] = param.split("/");
  let id: string;
  try {
    id = decodeURIComponent(rawId);
  } catch {
    return { ok: false, reason: "the node id in the path is not valid percent-encoding" };
  }
  if (!nodeIdPattern.test(id)) {
    return {
      ok: false,
      reason: `invalid node id ${JSON.stringify(id.slice(0, 80))}: expected ${nodeIdRule}`,
    };
  }
  if (rawAction === undefined) return { ok: true, value: { id, action: null } };
  if (rest.length > 0 || !(actions as readonly string[]).includes(rawAction)) {
    return {
      ok: false,
      reason: `unknown member action ${JSON.stringify(param.slice(0, 120))}: promote or demote`,
    };
  }
  return { ok: true, value: { id, action: rawAction as Action } };
}

/** DELETE and PATCH address the member itself. */
function idOnly(target: Checked<{ id: string; action: Action | null }>): Checked<string> {
  if (!target.ok) return target;
  if (target.value.action !== null) {
    return {
      ok: false,
      reason: `${target.value.action} is a POST: POST /api/v1/members/{id}/${target.value.action}`,
    };
  }
  return { ok: true, value: target.value.id };
}

/** `?force=true`: skip the check that a quorum of healthy voters remains. */
function forceOf(context: RouteContext): Checked<boolean> {
  const raw = context.url.searchParams.get("force");
  if (raw === null || raw === "false" || raw === "0") return { ok: true, value: false };
  if (raw === "true" || raw === "1") return { ok: true, value: true };
  return { ok: false, reason: `force must be true or false, got ${JSON.stringify(raw.slice(0, 20))}` };
}
