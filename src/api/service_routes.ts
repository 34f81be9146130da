// The services' HTTP API (docs/services.md): GET /api/v1/services, on any node, answers from the latest
// table of the leader (who runs each service, what its owner reports, why it is placed there) and what this
// node's own runners report.
import type { IncomingMessage, ServerResponse } from "node:http";
import { sendJson } from "./errors.ts";
import type { ApiRoute } from "./router.ts";

export interface ServiceJson {
  name: string;
  /** The node it is assigned to; null when none can run it. */
  owner: string | null;
  /** What the owner last reported: stopped, starting, running, stopping or failed; null before a report. */
  state: string | null;
  /** ISO time of the owner's last state change. */
  since: string | null;
  /** The grant the owner runs it under, "term.seq". */
  fence: string | null;
  /** Placement's code and sentence for operators. */
  code: string;
  reason: string;
  /** The owner's detail (a refusal, a failed driver, a failing health check). */
  detail: string;
  /** The owner's health check verdict (true without a check); null before a report. */
  healthy: boolean | null;
}

export interface ServicesJson {
  /** The term of the leader whose table this is; 0 when no table has come yet. */
  term: number;
  services: ServiceJson[];
}

/** What the routes read (ServicesNode.status). */
export interface ServicesView {
  status(): {
    table: {
      term: number;
      services: Record<
        string,
        {
          owner: string | null;
          code: string;
          reason: string;
          report: {
            state: string;
            fence: string | null;
            sinceMs: number;
            detail: string;
            healthy: boolean;
          } | null;
        }
      >;
    };
  };
}

export function servicesJson(view: ServicesView): ServicesJson {
  const { table } = view.status();
  const services = Object.entries(table.services)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([name, entry]) => ({
      name,
      owner: entry.owner,
      state: entry.report?.state ?? null,
      since: entry.report === null ? null : new Date(entry.report.sinceMs).toISOString(),
      fence: entry.report?.fence ?? null,
      code: entry.code,
      reason: entry.reason,
      detail: entry.report?.detail ?? "",
      healthy: entry.report?.healthy ?? null,
    }));
  return { term: table.term, services };
}

export function serviceRoutes(view: ServicesView): ApiRoute[] {
  const list = (_req: IncomingMessage, res: ServerResponse) => sendJson(res, 200, servicesJson(view));
  return [{ path: "/api/v1/services", methods: { GET: list } }];
}
