import assert from "node:assert/strict";
import { test } from "node:test";
import { batchesOf, listingPrefixOf, planSync, storePathOf } from "../../../src/cli/sync_plan.ts";

const stamp = (path: string, sha256 = `h-${path}`, size = 10) => ({ path, sha256, size });

test("sync plan: table of local vs store contents", () => {
  const cases = [
    { name: "empty both", local: [], remote: [], upload: [], remove: [], unchanged: [] },
    { name: "new file", local: [stamp("a")], remote: [], upload: ["a"], remove: [], unchanged: [] },
    {
      name: "same content",
      local: [stamp("a")],
      remote: [stamp("a")],
      upload: [],
      remove: [],
      unchanged: ["a"],
    },
    {
      name: "changed content",
      local: [stamp("a", "new")],
      remote: [stamp("a", "old")],
      upload: ["a"],
      remove: [],
      unchanged: [],
    },
    {
      name: "same hash, other size",
      local: [stamp("a", "h", 1)],
      remote: [stamp("a", "h", 2)],
      upload: ["a"],
      remove: [],
      unchanged: [],
    },
    {
      name: "vanished, --delete",
      local: [],
      remote: [stamp("gone")],
      upload: [],
      remove: ["gone"],
      unchanged: [],
      deleteMissing: true,
    },
    {
      name: "vanished, no --delete",
      local: [],
      remote: [stamp("gone")],
      upload: [],
      remove: [],
      unchanged: [],
    },
    {
      name: "mixed, sorted",
      local: [stamp("c"), stamp("a", "x"), stamp("b")],
      remote: [stamp("z"), stamp("b"), stamp("a"), stamp("y")],
      upload: ["a", "c"],
      remove: ["y", "z"],
      unchanged: ["b"],
      deleteMissing: true,
    },
  ];
  for (const c of cases) {
    const plan = planSync(c.local, c.remote, { deleteMissing: c.deleteMissing ?? false });
    assert.deepEqual(
      { upload: plan.upload.map((s) => s.path), remove: plan.remove, unchanged: plan.unchanged },
      { upload: c.upload, remove: c.remove, unchanged: c.unchanged },
      c.name,
    );
  }
});

test("sync plan: batches bounded by count and bytes; an oversize item travels alone", () => {
  const items = [5, 5, 5, 20, 1, 1, 1].map((size, i) => ({ id: i, size }));
  const batches = batchesOf(items, { writesMax: 2, bytesMax: 10 });
  assert.deepEqual(
    batches.map((b) => b.map((item) => item.id)),
    [[0, 1], [2], [3], [4, 5], [6]],
  );
  assert.deepEqual(batchesOf([], { writesMax: 2, bytesMax: 10 }), []);
});

test("sync plan: store paths and the listing prefix a sync owns", () => {
  assert.equal(storePathOf("certs", "web/a.pem"), "certs/web/a.pem");
  assert.equal(storePathOf("certs//", "a"), "certs/a");
  assert.equal(storePathOf("", "a"), "a");
  assert.equal(listingPrefixOf("certs"), "certs/", "never the sibling certs2/ nor an entry named certs");
  assert.equal(listingPrefixOf(""), "");
});
