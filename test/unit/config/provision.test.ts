import assert from "node:assert/strict";
import { test } from "node:test";
import { configProblems, parsedConfig } from "../../support/config_text.ts";

const base = "node: { id: n1 }\nlisten: 127.0.0.1:7400\n";

test("config: provision: absent is off; a target resolves its servers, secrets, interval and patterns", () => {
  assert.equal(parsedConfig(base).provision, null);
  const provision = parsedConfig(
    `${base}provision:\n  targets:\n    main:\n` +
      "      primary: { url: postgres://tandem@10.0.0.5:5432/postgres, password_file: keys/pg.pass }\n" +
      "      replicas:\n        - { name: r1, url: postgres://tandem@10.0.0.6:5432/postgres, password_env: PG_R1 }\n" +
      "      exclude: [scratch_*]\n      follower: { password_file: keys/follower.pass }\n",
  ).provision;
  assert.deepEqual(provision, {
    targets: [
      {
        name: "main",
        engine: "postgres",
        primary: {
          url: "postgres://tandem@10.0.0.5:5432/postgres",
          password: { file: "/etc/tandem/keys/pg.pass" },
        },
        replicas: [
          { name: "r1", url: "postgres://tandem@10.0.0.6:5432/postgres", password: { env: "PG_R1" } },
        ],
        mode: "async",
        intervalMs: 10_000,
        include: ["*"],
        exclude: ["scratch_*"],
        follower: { role: "tandem_follower", password: { file: "/etc/tandem/keys/follower.pass" } },
      },
    ],
  });
});

test("config: provision: the modes async, sync and auto are accepted", () => {
  for (const mode of ["async", "sync", "auto"]) {
    const provision = parsedConfig(
      `${base}provision:\n  targets:\n    main:\n      primary: { url: postgres://u@h/db }\n` +
        `      replicas: [{ name: r1, url: postgres://u@h/db }]\n      follower: { password_env: F }\n      mode: ${mode}\n`,
    ).provision;
    assert.equal(provision?.targets[0]?.mode, mode);
  }
});

test("config: provision: mistakes are refused with what to do", () => {
  const target = (body: string) => `${base}provision:\n  targets:\n    main:\n${body}`;
  const replica = "      replicas: [{ name: r1, url: postgres://u@h/db }]\n";
  assert.match(
    configProblems(
      target(
        `      primary: { url: "postgres://u:secret@h/db" }\n${replica}      follower: { password_env: F }\n`,
      ),
    ),
    /no password here: password_file or password_env/,
  );
  assert.match(
    configProblems(target(`      primary: { url: postgres://u@h/db }\n${replica}      follower: {}\n`)),
    /follower.password_file: required: the follower's password/,
  );
  assert.match(
    configProblems(
      target(
        "      primary: { url: postgres://u@h/db }\n      replicas: [{ name: r1, url: postgres://u@h/db }, { name: r1, url: postgres://u@h2/db }]\n      follower: { password_env: F }\n",
      ),
    ),
    /two replicas named r1/,
  );
  assert.match(
    configProblems(
      target(
        `      primary: { url: postgres://u@h/db }\n${replica}      follower: { password_env: F }\n      mode: eventual\n`,
      ),
    ),
    /provision.targets.main.mode/,
  );
  assert.match(configProblems(`${base}provision:\n  targets: {}\n`), /name at least one target/);
});
