import assert from "node:assert/strict";
import { request } from "node:http";
import { test } from "node:test";
import { pino } from "pino";
import { createApiRouter, eventsRoute } from "../../../src/api/index.ts";
import { sseEvents } from "../../../src/cli/store_client.ts";
import { EventLog } from "../../../src/shell/index.ts";
import { rawRequest, serveRouter } from "./store_http.ts";

async function serveEvents(t: { after(fn: () => unknown): void }, log: EventLog) {
  const router = createApiRouter({
    nodeId: "n1",
    status: () => ({}),
    acl: [{ path: "^/", cn: ".*" }],
    logger: pino({ level: "silent" }),
    routes: [eventsRoute(log, { heartbeatMs: 60_000 })],
  });
  const api = await serveRouter(router);
  t.after(() => api.close());
  return api.base;
}

function eventsOf(body: Buffer): Array<{ id?: string; event?: string; data: Record<string, unknown> }> {
  return body
    .toString("utf8")
    .split("\n\n")
    .filter((block) => block.includes("data: "))
    .map((block) => {
      const field = (name: string) =>
        /^(\w+): ?(.*)$/m.exec(block.split("\n").find((l) => l.startsWith(`${name}:`)) ?? "")?.[2];
      return { id: field("id"), event: field("event"), data: JSON.parse(field("data") ?? "{}") };
    });
}

test("events api: follow=false sends what is kept; Last-Event-ID or ?after resumes; a foreign id replays", async (t) => {
  const log = new EventLog("n1", 100, 1);
  const base = await serveEvents(t, log);
  log.emit("leader", { leader: "n1", term: 2 });
  log.emit("placement", { service: "web", from: null, to: "n1" });
  log.emit("driver", { service: "web", driver: "exec", step: "start", ok: true });
  const all = eventsOf((await rawRequest(base, "GET", "/api/v1/events?follow=false")).body);
  assert.deepEqual(
    all.map((e) => [e.id, e.event, e.data.kind]),
    [
      ["n1.1:1", "leader", "leader"],
      ["n1.1:2", "placement", "placement"],
      ["n1.1:3", "driver", "driver"],
    ],
  );
  const resumed = await rawRequest(base, "GET", "/api/v1/events?follow=false", {
    headers: { "last-event-id": "n1.1:2" },
  });
  assert.deepEqual(
    eventsOf(resumed.body).map((e) => e.id),
    ["n1.1:3"],
  );
  const after = await rawRequest(base, "GET", "/api/v1/events?follow=false&after=n1.1:1");
  assert.deepEqual(
    eventsOf(after.body).map((e) => e.id),
    ["n1.1:2", "n1.1:3"],
  );
  const foreign = await rawRequest(base, "GET", "/api/v1/events?follow=false&after=n2.1:9");
  assert.equal(eventsOf(foreign.body).length, 3, "another node's id: everything kept");
});

test("events api: a follower gets new events as they happen; one resuming past the ring is told some were lost", async (t) => {
  const log = new EventLog("n1", 2, 1);
  const base = await serveEvents(t, log);
  for (let i = 0; i < 3; i++) log.emit("drain", { node: `n${i}` });
  const lost = eventsOf((await rawRequest(base, "GET", "/api/v1/events?follow=false&after=n1.1:0")).body);
  assert.deepEqual(
    lost.map((e) => e.event),
    ["lost", "drain", "drain"],
  );

  const url = new URL(`${base}/api/v1/events?after=n1.1:3`);
  const req = request({ host: url.hostname, port: url.port, path: url.pathname + url.search, agent: false });
  const response = await new Promise<import("node:http").IncomingMessage>((resolve, reject) => {
    req.on("response", resolve);
    req.on("error", reject);
    req.end();
  });
  t.after(() => req.destroy());
  assert.equal(response.statusCode, 200);
  const stream = sseEvents(response);
  log.emit("health", { service: "web", healthy: false });
  const next = await stream.next();
  assert.equal(next.value?.event, "health");
  assert.equal(next.value?.id, "n1.1:4");
});
