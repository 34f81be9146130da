import assert from "node:assert/strict";
import { test } from "node:test";
import { configProblems, parsedConfig } from "../../support/config_text.ts";

const base = "node: { id: n1 }\nlisten: 127.0.0.1:7400\n";
const journal = "journal:\n  key_file: keys/journal.key\n";
const hostKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGw0zYoyq7aH0ytw8a7mQRxp0kI9oz2JdS0ldcaWl9eL";

test("config: blob: absent is off; stores resolve, the key defaults to the journal's, offload checks out", () => {
  assert.equal(parsedConfig(base).blob, null);
  const blob = parsedConfig(
    `${base}${journal}blob:\n  stores:\n    archive: { type: local, path: blobs }\n` +
      "    s3main:\n      type: s3\n      bucket: recordings\n      endpoint: http://127.0.0.1:9000\n      path_style: true\n" +
      "      access_key_id_env: S3_KEY_ID\n      secret_access_key_file: keys/s3.secret\n" +
      `    nas:\n      type: sftp\n      host: nas.example\n      username: tandem\n      private_key_file: keys/id_ed25519\n      host_key: ${hostKey}\n      path: /srv/tandem\n` +
      "  offload:\n    store: s3main\n    dirs: [/var/lib/bastion/recordings]\n",
  ).blob;
  assert.deepEqual(blob, {
    stores: [
      { type: "local", name: "archive", path: "/etc/tandem/blobs", recipients: [] },
      {
        type: "s3",
        name: "s3main",
        bucket: "recordings",
        region: "us-east-1",
        endpoint: "http://127.0.0.1:9000",
        pathStyle: true,
        prefix: "",
        accessKeyId: { env: "S3_KEY_ID" },
        secretAccessKey: { file: "/etc/tandem/keys/s3.secret" },
        recipients: [],
      },
      {
        type: "sftp",
        name: "nas",
        host: "nas.example",
        port: 22,
        username: "tandem",
        privateKeyFile: "/etc/tandem/keys/id_ed25519",
        hostKey,
        path: "/srv/tandem",
        recipients: [],
      },
    ],
    backups: { targets: [], schedules: [] },
    keyMaterial: [
      "/etc/tandem/keys/journal.key",
      "/etc/tandem/tls/n1-key.pem",
      "/etc/tandem/tls/n1.pem",
      "/etc/tandem/tls/ca.pem",
    ],
    keyFile: "/etc/tandem/keys/journal.key",
    recipients: [],
    offload: { store: "s3main", dirs: ["/var/lib/bastion/recordings"], types: null, keepLocal: false },
    recordsPrefix: "tandem/blobs",
  });
});

test("config: blob: backup targets name a store and a folder; schedules a target, a cron and what to keep", () => {
  const blob = parsedConfig(
    `${base}${journal}blob:\n  stores:\n    nas: { type: local, path: /mnt/nas }\n  backups:\n` +
      "    targets:\n      nightly: { store: nas }\n      weekly: { store: nas, prefix: archive/weekly }\n" +
      "    schedules:\n      - { target: nightly, cron: '0 3 * * *', keep: { last: 3 } }\n" +
      "      - { target: weekly, cron: '0 4 * * 0', timezone: Europe/Berlin, with_keys: true }\n",
  ).blob;
  assert.deepEqual(blob?.backups, {
    targets: [
      { name: "nightly", store: "nas", prefix: "backups" },
      { name: "weekly", store: "nas", prefix: "archive/weekly" },
    ],
    schedules: [
      {
        target: "nightly",
        cron: "0 3 * * *",
        timezone: "UTC",
        keep: { last: 3, daily: 7, weekly: 4 },
        withKeys: false,
        databases: null,
      },
      {
        target: "weekly",
        cron: "0 4 * * 0",
        timezone: "Europe/Berlin",
        keep: { last: 7, daily: 7, weekly: 4 },
        withKeys: true,
        databases: null,
      },
    ],
  });
  const stores = "blob:\n  stores:\n    nas: { type: local, path: /mnt/nas }\n  backups:\n";
  assert.match(
    configProblems(`${base}${journal}${stores}    targets:\n      t: { store: elsewhere }\n`),
    /blob.backups.targets.t.store: no store named elsewhere/,
  );
  assert.match(
    configProblems(`${base}${journal}${stores}    targets:\n      t: { store: nas, prefix: ../up }\n`),
    /blob.backups.targets.t.prefix: expected folder names joined by \//,
  );
  assert.match(
    configProblems(
      `${base}${journal}${stores}    targets:\n      t: { store: nas }\n    schedules:\n      - { target: u, cron: '0 3 * * *' }\n`,
    ),
    /blob.backups.schedules\[0\].target: no target named u/,
  );
  assert.match(
    configProblems(
      `${base}${journal}${stores}    targets:\n      t: { store: nas }\n    schedules:\n      - { target: t, cron: 'every night' }\n`,
    ),
    /not a cron pattern/,
  );
});

test("config: blob: mistakes are refused with what to do", () => {
  const local = "blob:\n  stores:\n    archive: { type: local, path: blobs }\n";
  assert.match(configProblems(`${base}${local}`), /blob.key_file: required without a journal section/);
  assert.match(
    configProblems(`${base}${local}  key_file: k\n  offload: { store: archive, dirs: [/srv/rec] }\n`),
    /blob.offload: offloads journal entries' files: needs a journal section/,
  );
  assert.match(
    configProblems(`${base}${journal}${local}  offload: { store: other, dirs: [/srv/rec] }\n`),
    /blob.offload.store: no store named other in blob.stores/,
  );
  assert.match(
    configProblems(`${base}${journal}${local}  offload: { store: archive, dirs: [recordings] }\n`),
    /blob.offload.dirs\[0\]: expected an absolute folder, not the root/,
  );
  assert.match(
    configProblems(
      `${base}${journal}blob:\n  stores:\n    b: { type: s3, bucket: rec, access_key_id_env: A }\n`,
    ),
    /give secret_access_key_file or secret_access_key_env/,
  );
  assert.match(
    configProblems(
      `${base}${journal}blob:\n  stores:\n    n: { type: sftp, host: h, username: u, private_key_file: k, host_key: "nas.example ssh-ed25519 AAAA", path: /x }\n`,
    ),
    /without the host/,
  );
  assert.match(configProblems(`${base}${journal}blob:\n  stores: {}\n`), /name at least one store/);
  assert.match(
    configProblems(`${base}${journal}${local}  recipients: [ssh-ed25519 AAAA]\n`),
    /expected an age public key/,
  );
});
