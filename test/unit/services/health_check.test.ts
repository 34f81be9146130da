import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import type { HealthCheckConfig } from "../../../src/config/index.ts";
import { runHealthCheck } from "../../../src/services/health_check.ts";

const context = { service: "web", node: "n1", fence: "3.7" };

function exec(argv: string[], timeoutMs = 5_000): HealthCheckConfig {
  return { check: { type: "exec", argv }, intervalMs: 1_000, timeoutMs, failures: 1 };
}

test("health check exec: exit 0 passes; another exit, a missing program or a timeout fails, saying which", async () => {
  assert.deepEqual(await runHealthCheck(exec(["true"]), context), { ok: true, detail: "" });
  assert.deepEqual(await runHealthCheck(exec(["sh", "-c", "exit 3"]), context), {
    ok: false,
    detail: "sh: exit 3",
  });
  const missing = await runHealthCheck(exec(["/nonexistent/check"]), context);
  assert.equal(missing.ok, false);
  assert.match(missing.detail, /ENOENT/);
  const slow = await runHealthCheck(exec(["sleep", "5"], 100), context);
  assert.deepEqual(slow, { ok: false, detail: "sleep: timed out after 100 ms" });
});

test("health check exec: the command sees the service, node and fence", async () => {
  const ok = await runHealthCheck(
    exec(["sh", "-c", 'test "$TANDEM_SERVICE/$TANDEM_NODE/$TANDEM_TERM" = web/n1/3.7']),
    context,
  );
  assert.equal(ok.ok, true);
});

test("health check http: 2xx passes; another status, a refused connection or a timeout fails", async (t) => {
  const server = createServer((request, response) => {
    if (request.url === "/slow") return; // never answers
    response.statusCode = request.url === "/ok" ? 204 : request.url === "/moved" ? 302 : 503;
    response.end("body");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const http = (path: string, timeoutMs = 5_000): HealthCheckConfig => ({
    check: { type: "http", url: `${base}${path}` },
    intervalMs: 1_000,
    timeoutMs,
    failures: 1,
  });
  assert.deepEqual(await runHealthCheck(http("/ok"), context), { ok: true, detail: "" });
  assert.deepEqual(await runHealthCheck(http("/bad"), context), {
    ok: false,
    detail: `GET ${base}/bad: 503`,
  });
  assert.deepEqual(await runHealthCheck(http("/moved"), context), {
    ok: false,
    detail: `GET ${base}/moved: 302`,
  });
  assert.deepEqual(await runHealthCheck(http("/slow", 200), context), {
    ok: false,
    detail: `GET ${base}/slow: timed out after 200 ms`,
  });
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  const refused = await runHealthCheck(http("/ok"), context);
  assert.equal(refused.ok, false);
  assert.match(refused.detail, /ECONNREFUSED/);
});
