// The membership API client behind `tandem member`: GET /api/v1/members and one change per request. A
// change is answered once a quorum holds it, which may take the leader a hand-off and a commit timeout, so
// its requests wait longer than a status query.
import type { MemberChangeJson, MemberJson, MembersJson } from "../api/index.ts";
import { type ApiCredentials, ApiResponseError, requestApi } from "./api_client.ts";

export type { MemberJson, MembersJson };

/** The server refused with a typed error; `code` tells e.g. an unsafe change (retry with --force) apart. */
export class MemberApiError extends ApiResponseError {
  override name = "MemberApiError";
  readonly code: string;
  constructor(message: string, status: number, code: string) {
    super(message, status);
    this.code = code;
  }
}

export interface NewMember {
  id: string;
  address: string;
  role: "member" | "witness";
  priority: number;
  /** Stays a learner until promoted by hand; otherwise the leader promotes it once caught up. */
  learner: boolean;
}

export interface MemberUpdate {
  address?: string;
  priority?: number;
  role?: "member" | "witness";
}

const listTimeoutMs = 5_000;
/** Above the leader's hand-off (5 s), the forward to it (15 s) and its commit wait (10 s). */
const changeTimeoutMs = 45_000;

export class MemberClient {
  private readonly base: string;
  private readonly credentials: ApiCredentials;

  constructor(base: string, credentials: ApiCredentials = {}) {
    this.base = base.replace(/\/+$/, "");
    this.credentials = credentials;
  }

  list(): Promise<MembersJson> {
    return this.request("GET", "/api/v1/members", undefined, listTimeoutMs) as Promise<MembersJson>;
  }

  add(member: NewMember): Promise<number> {
    return this.change("POST", "/api/v1/members", member);
  }

  remove(id: string, force: boolean): Promise<number> {
    return this.change("DELETE", `${memberPath(id)}${forceQuery(force)}`);
  }

  promote(id: string, force: boolean): Promise<number> {
    return this.change("POST", `${memberPath(id)}/promote${forceQuery(force)}`, {});
  }

  demote(id: string, force: boolean): Promise<number> {
    return this.change("POST", `${memberPath(id)}/demote${forceQuery(force)}`, {});
  }

  update(id: string, fields: MemberUpdate): Promise<number> {
    return this.change("PATCH", memberPath(id), fields);
  }

  /** The membership version that holds the change. */
  private async change(method: string, path: string, body?: unknown): Promise<number> {
    const answer = (await this.request(method, path, body, changeTimeoutMs)) as MemberChangeJson;
    return answer.version;
  }

  private async request(method: string, path: string, body: unknown, timeoutMs: number): Promise<unknown> {
    const response = await requestApi(this.base, path, {
      method,
      body,
      timeoutMs,
      credentials: this.credentials,
    });
    let parsed: unknown = null;
    try {
      parsed = JSON.parse(response.text);
    } catch {
      // Not JSON (a proxy's page): the status says enough.
    }
    if (response.status >= 200 && response.status < 300) return parsed;
    const error = (parsed as { error?: { code?: string; message?: string } } | null)?.error;
    throw new MemberApiError(
      error?.message ?? `HTTP ${response.status}`,
      response.status,
      error?.code ?? `http_${response.status}`,
    );
  }
}

function memberPath(id: string): string {
  return `/api/v1/members/${encodeURIComponent(id)}`;
}

function forceQuery(force: boolean): string {
  return force ? "?force=true" : "";
}
