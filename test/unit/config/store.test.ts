import assert from "node:assert/strict";
import { test } from "node:test";
import { configProblems, parsedConfig } from "../../support/config_text.ts";

const base = "node: { id: n1 }\nlisten: 127.0.0.1:7400\n";
const twoPeers = "peers:\n  - { id: n2, address: 127.0.0.1:7410 }\n  - { id: n3, address: 127.0.0.1:7420 }\n";

test("config: store: defaults (min_acks 1 with peers, 0 alone; nothing materialised)", () => {
  const alone = parsedConfig(base).store;
  assert.equal(alone.minAcks, 0);
  assert.equal(alone.readOnly, false);
  assert.equal(alone.materialise, null);
  assert.equal(alone.valueBytesMax, 4 * 1024 * 1024);
  assert.equal(parsedConfig(base + twoPeers).store.minAcks, 1);
});

test("config: api.inflight_max bounds the whole API (default 256)", () => {
  assert.equal(parsedConfig(base).api.inflightMax, 256);
  assert.equal(parsedConfig(`${base}api:\n  inflight_max: 32\n`).api.inflightMax, 32);
  // Giving another api key keeps the default of this one.
  assert.equal(parsedConfig(`${base}api:\n  listen: null\n`).api.inflightMax, 256);
  assert.match(
    configProblems(`${base}api:\n  inflight_max: 0\n`),
    /tandem.yml:4:17: api.inflight_max: must be >= 1/,
  );
});

test("config: store.inflight_max of earlier versions is refused, pointing at api.inflight_max", () => {
  assert.equal(
    configProblems(`${base}store:\n  inflight_max: 64\n`),
    "tandem.yml:4:3: store.inflight_max: moved to api.inflight_max",
  );
});

test("config: store: materialise resolves the dir, parses octal modes, keeps hooks as argv", () => {
  const store = parsedConfig(
    `${base}${twoPeers}store:\n  min_acks: all\n  read_only: true\n  materialise:\n    dir: www\n    prefix: certs/\n` +
      `    file_mode: "0640"\n    dir_mode: "750"\n    gid: 33\n` +
      "    hooks:\n      - { prefix: certs/, command: [systemctl, reload, nginx], debounce_ms: 200 }\n",
  ).store;
  assert.equal(store.minAcks, "all");
  assert.equal(store.readOnly, true);
  assert.deepEqual(store.materialise, {
    dir: "/etc/tandem/www",
    prefix: "certs/",
    fileMode: 0o640,
    dirMode: 0o750,
    gid: 33,
    hooks: [
      { prefix: "certs/", command: ["systemctl", "reload", "nginx"], debounceMs: 200, timeoutMs: 30_000 },
    ],
  });
});

test("config: store: impossible settings name the key and line", () => {
  // Not an impossible setting any more: the configured peers only bootstrap, and the cluster may grow.
  assert.equal(parsedConfig(`${base}${twoPeers}store:\n  min_acks: 3\n`).store.minAcks, 3);
  assert.match(
    configProblems(`${base}store:\n  materialise: { dir: data }\n`),
    /store\.materialise\.dir: must not be the data_dir/,
  );
  assert.match(
    configProblems(`${base}store:\n  materialise: { dir: x, file_mode: "rw-r--r--" }\n`),
    /file_mode: expected an octal/,
  );
  assert.match(
    configProblems(`${base}store:\n  materialise: { dir: x, hooks: [{ command: [] }] }\n`),
    /hooks\[0\]\.command/,
  );
  assert.match(configProblems(`${base}store:\n  tombstone_horizon_ms: 5\n`), /store\.tombstone_horizon_ms/);
  assert.match(
    configProblems(`${base}store:\n  materialise: { dir: x, prefix: ../etc/ }\n`),
    /store\.materialise\.prefix/,
  );
});
