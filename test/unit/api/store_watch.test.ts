import assert from "node:assert/strict";
import { test } from "node:test";
import { MemoryStoreService } from "../../support/memory_store_service.ts";
import { nextChange, openEvents, startStoreServer } from "./store_http.ts";

const write = (service: MemoryStoreService, path: string, value: string | null = "v") =>
  service.write([{ path, value: value === null ? null : Buffer.from(value) }], { minAcks: 0 });

test("store watch: replays from from_seq, then streams live changes under the prefix, ids node:seq", async (t) => {
  const service = new MemoryStoreService();
  const api = await startStoreServer(service);
  t.after(() => api.close());
  await write(service, "certs/a");
  await write(service, "other/x");
  await write(service, "certs/b");
  const stream = await openEvents(api.base, "/api/v1/store-watch?prefix=certs/&from_seq=1&values=1");
  t.after(() => stream.close());
  assert.equal(stream.status, 200);
  const replayed = await nextChange(stream);
  assert.equal(replayed.id, "n1:3");
  assert.equal(replayed.event, "change");
  const data = JSON.parse(replayed.data ?? "");
  assert.equal(data.path, "certs/b");
  assert.equal(data.seq, 3);
  assert.equal(Buffer.from(data.value, "base64").toString(), "v");
  await write(service, "other/y");
  await write(service, "certs/a", null);
  const live = await nextChange(stream);
  assert.equal(live.id, "n1:5");
  assert.equal(JSON.parse(live.data ?? "").deleted, true);
});

test("store watch: Last-Event-ID resumes after the last event seen; a foreign node's id replays all", async (t) => {
  const service = new MemoryStoreService();
  const api = await startStoreServer(service);
  t.after(() => api.close());
  const first = await openEvents(api.base, "/api/v1/store-watch?from_seq=0");
  await write(service, "a");
  await write(service, "b");
  assert.equal((await nextChange(first)).id, "n1:1");
  const seen = await nextChange(first);
  assert.equal(seen.id, "n1:2");
  first.close();
  await first.ended;
  await write(service, "c");

  const resumed = await openEvents(api.base, "/api/v1/store-watch", { "last-event-id": seen.id ?? "" });
  t.after(() => resumed.close());
  assert.equal(JSON.parse((await nextChange(resumed)).data ?? "").path, "c");

  const foreign = await openEvents(api.base, "/api/v1/store-watch", { "last-event-id": "n9:2" });
  t.after(() => foreign.close());
  assert.equal((await nextChange(foreign)).id, "n1:1", "seqs of n9 mean nothing here: replay from the start");

  const bad = await openEvents(api.base, "/api/v1/store-watch", { "last-event-id": "garbage" });
  assert.equal(bad.status, 400);
  await bad.ended;
});

test("store watch: without from_seq only changes after the connection are sent; heartbeats keep it alive", async (t) => {
  const service = new MemoryStoreService();
  const api = await startStoreServer(service, { routes: { watchHeartbeatMs: 5 } });
  t.after(() => api.close());
  await write(service, "before");
  const stream = await openEvents(api.base, "/api/v1/store-watch");
  t.after(() => stream.close());
  assert.match((await stream.next()).comment ?? "", /after n1:1/);
  assert.equal((await stream.next()).comment, "heartbeat");
  await write(service, "after");
  assert.equal(JSON.parse((await nextChange(stream)).data ?? "").path, "after");
});

test("store watch: a consumer that stops reading is cut off with an overflow event; memory stays bounded", async (t) => {
  const service = new MemoryStoreService();
  const api = await startStoreServer(service, { routes: { watchLagMax: 8 } });
  t.after(() => api.close());
  const stream = await openEvents(api.base, "/api/v1/store-watch?values=1");
  t.after(() => stream.close());
  await stream.next();
  stream.pause();
  const value = "x".repeat(256 * 1024);
  let rounds = 0;
  // Bounded: loopback socket buffers hold a few MiB; 400 × 256 KiB is far beyond them.
  while (service.listenerCount > 0 && rounds < 400) {
    await write(service, `big/${rounds++}`, value);
    await new Promise((resolve) => setImmediate(resolve));
  }
  assert.equal(service.listenerCount, 0, "the server stopped watching for this consumer");
  assert.ok(rounds < 400);
  stream.resume();
  let lastChangeId: string | undefined;
  let event = await stream.next();
  for (; event.event !== "overflow"; event = await stream.next()) {
    if (event.event === "change") lastChangeId = event.id;
  }
  await stream.ended;
  assert.ok(lastChangeId, "some changes went out before the cut");
  assert.equal(JSON.parse(event.data ?? "").resume, lastChangeId, "the final event says where to resume");
});

test("store watch: at most watchersMax streams at once, beyond it 429", async (t) => {
  const service = new MemoryStoreService();
  const api = await startStoreServer(service, { routes: { watchersMax: 1 } });
  t.after(() => api.close());
  const first = await openEvents(api.base, "/api/v1/store-watch");
  const second = await openEvents(api.base, "/api/v1/store-watch");
  assert.equal(second.status, 429);
  await second.ended;
  first.close();
  await first.ended;
  while (service.listenerCount > 0) await new Promise((resolve) => setImmediate(resolve));
  const third = await openEvents(api.base, "/api/v1/store-watch");
  t.after(() => third.close());
  assert.equal(third.status, 200);
});
