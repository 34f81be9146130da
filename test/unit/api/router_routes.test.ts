import assert from "node:assert/strict";
import { test } from "node:test";
import { pino } from "pino";
import { sendJson } from "../../../src/api/errors.ts";
import { createApiRouter } from "../../../src/api/router.ts";
import { rawRequest, serveRouter } from "./store_http.ts";

test("router: prefix routes get the raw rest of the path; the longest prefix wins; dot segments are refused", async (t) => {
  const router = createApiRouter({
    nodeId: "n1",
    status: () => ({}),
    acl: [
      { path: "^/files/secret/", cn: "^admin$" },
      { path: "^/", cn: ".*" },
    ],
    logger: pino({ level: "silent" }),
    routes: [
      {
        path: "/files/",
        prefix: true,
        methods: { GET: (_req, res, c) => sendJson(res, 200, { route: "files", param: c.param }) },
      },
      {
        path: "/files/deep/",
        prefix: true,
        methods: { GET: (_req, res, c) => sendJson(res, 200, { route: "deep", param: c.param }) },
      },
      {
        path: "/check",
        methods: {
          GET: (_req, res, c) => sendJson(res, 200, { allowed: c.allows(c.url.searchParams.get("p") ?? "") }),
        },
      },
    ],
  });
  const { base, close } = await serveRouter(router);
  t.after(close);

  assert.deepEqual((await rawRequest(base, "GET", "/files/a%2Fb?x=1")).json(), {
    route: "files",
    param: "a%2Fb",
  });
  assert.deepEqual((await rawRequest(base, "GET", "/files/deep/x")).json(), { route: "deep", param: "x" });
  const dotted = await rawRequest(base, "GET", "/x/../files/a");
  assert.equal(dotted.status, 400);
  assert.equal(dotted.json().error?.code, "bad_request");

  const ask = async (cn: string | null, p: string) =>
    (
      await rawRequest(base, "GET", `/check?p=${encodeURIComponent(p)}`, {
        headers: cn ? { "x-test-cn": cn } : {},
      })
    ).json().allowed;
  assert.equal(
    await ask("alice", "/files/secret/k"),
    false,
    "handlers ask the ACL about paths the URL does not show",
  );
  assert.equal(await ask("admin", "/files/secret/k"), true);
  assert.equal(await ask(null, "/files/secret/k"), true, "the local listener has no ACL");
});
