import assert from "node:assert/strict";
import { test } from "node:test";
import { pino } from "pino";
import { createApiRouter, type ServicesView, serviceRoutes } from "../../../src/api/index.ts";
import { rawRequest, serveRouter } from "./store_http.ts";

const json = { "content-type": "application/json" };

/** A services node that records the commands it is given and answers what the test says. */
async function serveServices(t: { after(fn: () => unknown): void }) {
  const commands: unknown[] = [];
  let next: Awaited<ReturnType<ServicesView["command"]>> = { ok: true };
  const view: ServicesView = {
    admins: () =>
      new Map([
        ["web", ["^ops-", "^web-team$"]],
        ["db", ["^ops-"]],
      ]),
    command: async (command) => {
      commands.push(command);
      return next;
    },
    status: () => ({ table: { term: 4, services: {}, drained: ["n3"] }, local: {} }),
  };
  const router = createApiRouter({
    nodeId: "n1",
    status: () => ({}),
    acl: [{ path: "^/", cn: ".*" }],
    logger: pino({ level: "silent" }),
    routes: serviceRoutes(view),
  });
  const api = await serveRouter(router);
  t.after(() => api.close());
  return {
    base: api.base,
    commands,
    answer: (answer: typeof next) => {
      next = answer;
    },
  };
}

test("services api: a move goes to the leader's command path; only the service's admins or a local operator may", async (t) => {
  const s = await serveServices(t);
  const move = (cn: string | null, body: string, path = "/api/v1/services/web/move") =>
    rawRequest(s.base, "POST", path, { headers: cn === null ? json : { ...json, "x-test-cn": cn }, body });
  assert.equal((await move(null, '{"node":"n2"}')).status, 200, "local operator");
  assert.equal((await move("web-team", '{"node":"n3"}')).status, 200, "an admin of web");
  const denied = await move("web-team", '{"node":"n3"}', "/api/v1/services/db/move");
  assert.equal(denied.status, 403);
  assert.match(denied.json().error?.message ?? "", /web-team is not an admin of db/);
  assert.equal((await move("intruder", '{"node":"n2"}')).status, 403);
  assert.deepEqual(s.commands, [
    { kind: "move", service: "web", node: "n2" },
    { kind: "move", service: "web", node: "n3" },
  ]);
  assert.equal((await move(null, '{"node":"n2"}', "/api/v1/services/mail/move")).status, 404);
  assert.equal((await move(null, '{"node":"n2"}', "/api/v1/services/web/jump")).status, 404);
  const bad = await move(null, '{"node":"N 2"}');
  assert.equal(bad.status, 400);
  assert.match(bad.json().error?.message ?? "", /node: expected a node id/);
  s.answer({ ok: false, reason: "n2 is drained" });
  const refused = await move(null, '{"node":"n2"}');
  assert.deepEqual([refused.status, refused.json().error?.message], [409, "n2 is drained"]);
  s.answer({ ok: false, reason: "no leader: try again once one is elected", unavailable: true });
  const noLeader = await move(null, '{"node":"n2"}');
  assert.deepEqual([noLeader.status, noLeader.headers["retry-after"]], [503, "1"]);
});

test("services api: drain and undrain need an admin of every service; GET lists the drained nodes", async (t) => {
  const s = await serveServices(t);
  const post = (cn: string | null, path: string) =>
    rawRequest(s.base, "POST", path, {
      headers: cn === null ? json : { ...json, "x-test-cn": cn },
      body: "",
    });
  assert.equal((await post("web-team", "/api/v1/nodes/n1/drain")).status, 403, "not an admin of db");
  assert.equal((await post("ops-anna", "/api/v1/nodes/n1/drain")).status, 200);
  assert.equal((await post(null, "/api/v1/nodes/n1/undrain")).status, 200);
  assert.equal((await post(null, "/api/v1/nodes/n1/flood")).status, 404);
  assert.deepEqual(s.commands, [
    { kind: "drain", node: "n1" },
    { kind: "undrain", node: "n1" },
  ]);
  s.answer({ ok: false, reason: "n9 is not a member", notFound: true });
  assert.equal((await post(null, "/api/v1/nodes/n9/drain")).status, 404);
  const listed = await rawRequest(s.base, "GET", "/api/v1/services");
  assert.deepEqual(listed.json(), { term: 4, services: [], drained: ["n3"] });
});
