import assert from "node:assert/strict";
import { test } from "node:test";
import { configProblems, parsedConfig } from "../../support/config_text.ts";

const base = "node: { id: n1 }\nlisten: 127.0.0.1:7400\n";

test("config: journal: absent is off; present resolves the key file and each handler", () => {
  assert.equal(parsedConfig(base).journal, null);
  const journal = parsedConfig(
    `${base}journal:\n  key_file: keys/journal.key\n  handlers:\n` +
      "    user.create: { exec: [/usr/local/bin/create-user] }\n" +
      '    "*": { webhook: "http://127.0.0.1:8080/hooks/tandem", timeout_ms: 5000 }\n',
  ).journal;
  assert.deepEqual(journal, {
    keyFile: "/etc/tandem/keys/journal.key",
    queue: { type: "mesh" },
    handlers: {
      "user.create": { kind: "exec", argv: ["/usr/local/bin/create-user"], timeoutMs: 30_000 },
      "*": { kind: "webhook", url: "http://127.0.0.1:8080/hooks/tandem", timeoutMs: 5_000 },
    },
    steps: [],
    maxAttempts: 10,
    retryBaseMs: 1_000,
    retryMaxMs: 300_000,
    concurrency: 4,
    outboxRetentionMs: 7 * 86_400_000,
  });
});

test("config: journal: a webhook's batch is its batchMax", () => {
  const journal = parsedConfig(
    `${base}journal:\n  key_file: k\n  handlers:\n    "*": { webhook: "http://127.0.0.1:8080/h", batch: 64 }\n`,
  ).journal;
  assert.deepEqual(journal?.handlers["*"], {
    kind: "webhook",
    url: "http://127.0.0.1:8080/h",
    timeoutMs: 30_000,
    batchMax: 64,
  });
  assert.match(
    configProblems(
      `${base}journal:\n  key_file: k\n  handlers:\n    t: { webhook: "http://x/y", batch: 0 }\n`,
    ),
    /batch/,
  );
});

test("config: journal: mistakes are refused with their line", () => {
  assert.match(configProblems(`${base}journal: {}\n`), /journal.key_file/);
  assert.match(
    configProblems(`${base}journal:\n  key_file: k\n  handlers:\n    "User Create": { exec: [x] }\n`),
    /tandem.yml:6:5: journal.handlers.User Create: expected an entry type/,
  );
  assert.match(
    configProblems(`${base}journal:\n  key_file: k\n  handlers:\n    t: { webhook: "ftp://x/y" }\n`),
    /expected an http:\/\/ or https:\/\/ URL/,
  );
  assert.match(
    configProblems(
      `${base}journal:\n  key_file: k\n  handlers:\n    t: { exec: [x], webhook: "http://x/" }\n`,
    ),
    /journal.handlers.t/,
  );
  assert.match(
    configProblems(`${base}journal:\n  key_file: k\n  retry_base_ms: 5000\n  retry_max_ms: 1000\n`),
    /journal.retry_max_ms: must be at least retry_base_ms \(5000\)/,
  );
  assert.match(configProblems(`${base}journal:\n  key_file: k\n  queue: { type: kafka }\n`), /journal.queue/);
});

test("config: journal: outbox_retention is a duration up to days, 0 keeps every entry", () => {
  const retention = (value: string) =>
    parsedConfig(`${base}journal:\n  key_file: k\n  outbox_retention: ${value}\n`).journal?.outboxRetentionMs;
  assert.equal(retention("0"), 0);
  assert.equal(retention("3d"), 3 * 86_400_000);
  assert.equal(retention("12h"), 12 * 3_600_000);
  assert.equal(retention("90000"), 90_000);
  assert.match(
    configProblems(`${base}journal:\n  key_file: k\n  outbox_retention: 1w\n`),
    /journal.outbox_retention/,
  );
});
