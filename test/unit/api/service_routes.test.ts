import assert from "node:assert/strict";
import { test } from "node:test";
import { pino } from "pino";
import { createApiRouter, type ServicesView, serviceRoutes } from "../../../src/api/index.ts";
import { rawRequest, serveRouter } from "./store_http.ts";

const json = { "content-type": "application/json" };

/** A services node that records the commands it is given and answers what the test says. */
async function serveServices(t: { after(fn: () => unknown): void }) {
  const commands: unknown[] = [];
  const calls: unknown[] = [];
  let next: Awaited<ReturnType<ServicesView["command"]>> = { ok: true };
  let nextCall: Awaited<ReturnType<ServicesView["call"]>> = {
    ok: true,
    node: "n2",
    action: { exitCode: 0, stdout: "reloaded\n" },
  };
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
    call: async (call) => {
      calls.push(call);
      return nextCall;
    },
    apiAddress: (node) => (node === "n9" ? null : `10.0.0.${node.slice(1)}:7400`),
    status: () => ({
      table: {
        term: 4,
        services: { web: { owner: "n2", code: "running", reason: "runs on n2", report: null } },
        drained: ["n3"],
      },
      local: {},
    }),
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
    calls,
    answer: (answer: typeof next) => {
      next = answer;
    },
    answerCall: (answer: typeof nextCall) => {
      nextCall = answer;
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
  assert.deepEqual(listed.json().drained, ["n3"]);
});

test("services api: an action and the logs are answered where the service runs, naming it; a moved owner is a 409 naming the new one", async (t) => {
  const s = await serveServices(t);
  const action = (cn: string | null, body: string, path = "/api/v1/services/web/actions/reload") =>
    rawRequest(s.base, "POST", path, { headers: cn === null ? json : { ...json, "x-test-cn": cn }, body });
  const ran = await action(null, '{"args":["--graceful"]}');
  assert.equal(ran.status, 200);
  assert.deepEqual(ran.json(), { node: "n2", action: { exitCode: 0, stdout: "reloaded\n" } });
  assert.deepEqual(
    [ran.headers["tandem-owner"], ran.headers["tandem-owner-api"]],
    ["n2", "https://10.0.0.2:7400"],
  );
  assert.equal((await action("intruder", "{}")).status, 403);
  assert.equal((await action(null, '{"args":"x"}')).status, 400);
  s.answerCall({ ok: false, reason: "web does not run on n2", moved: { owner: "n3" } });
  const moved = await action(null, "{}");
  assert.equal(moved.status, 409);
  assert.equal(moved.json().error?.code, "owner_changed");
  assert.match(moved.json().error?.message ?? "", /it now runs on n3/);
  assert.equal(moved.headers["tandem-owner"], "n3");
  s.answerCall({ ok: false, reason: "web has no action flush", notFound: true });
  assert.equal((await action(null, "{}", "/api/v1/services/web/actions/flush")).status, 404);
  s.answerCall({ ok: false, reason: "web runs nowhere now", unavailable: true });
  assert.equal((await action(null, "{}")).status, 503);
  s.answerCall({ ok: true, node: "n2", logs: { lines: [], next: 7 } });
  const logs = await rawRequest(s.base, "GET", "/api/v1/services/web/logs?after=3");
  assert.deepEqual([logs.status, logs.json()], [200, { node: "n2", logs: { lines: [], next: 7 } }]);
  assert.equal((await rawRequest(s.base, "GET", "/api/v1/services/web/logs?after=-1")).status, 400);
  assert.deepEqual(s.calls, [
    { kind: "action", service: "web", action: "reload", args: ["--graceful"] },
    { kind: "action", service: "web", action: "reload", args: [] },
    { kind: "action", service: "web", action: "flush", args: [] },
    { kind: "action", service: "web", action: "reload", args: [] },
    { kind: "logs", service: "web", after: 3 },
  ]);
  // A client that prefers to go to the owner itself: sent there, nothing run here.
  const redirected = await rawRequest(s.base, "GET", "/api/v1/services/web/logs?after=3&redirect=true");
  assert.equal(redirected.status, 307);
  assert.equal(redirected.headers.location, "https://10.0.0.2:7400/api/v1/services/web/logs?after=3");
  assert.equal(s.calls.length, 5);
});
