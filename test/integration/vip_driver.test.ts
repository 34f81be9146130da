// The vip driver on real interfaces: three network namespaces on one bridge, the driver's commands run in the
// owner's. The neighbour first resolves the VIP while a previous holder has it, as before a failover; after
// the owner's start its entry names the owner's MAC address although the neighbour sent nothing in between,
// and a start with `announce: 0` leaves the entry as it was, so it was the announcement that moved it. Start
// and stop are each run twice; a start whose announcing tool is missing fails and leaves no address behind.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { pino } from "pino";
import { toVipDriverConfig, vipDriverSchema } from "../../src/config/vip_driver_schema.ts";
import { VipDriver } from "../../src/services/vip_driver.ts";
import { NetnsLab, netnsTestGate } from "../support/netns.ts";
import {
  addIpv6Addresses,
  addressCount,
  ipIn,
  labIpv6Prefix,
  macOf,
  neighbourMac,
  sendDatagram,
  vipLabInstallHint,
  vipLabSupport,
  waitForValue,
} from "../support/netns_vip.ts";

const { unsupported, skip } = netnsTestGate(vipLabSupport(), vipLabInstallHint);

const context = { service: "web", node: "owner", fence: "1.1" };
/** Bounds each wait on the neighbour's table; its kernel takes an announcement within milliseconds. */
const neighbourWaitMs = 3_000;
/** How long the neighbour's entry must stay as it was after a start that does not announce. */
const quietMs = 500;
/** Warnings carry a failed command's stderr: shown when something fails, silent otherwise. */
const logger = pino({ level: "warn" }, process.stderr);

/** Runs its arguments as a command, except the announcing tools, which it reports missing. */
const withoutAnnouncingTools = `case "$0" in arping|ndptool) echo "$0: not installed" >&2; exit 127;; esac; exec "$0" "$@"`;

/** Per family: readies the lab's link, and names the VIP (in the lab's subnet) with its prefix length. */
const families = [
  { family: 4, prepare: (lab: NetnsLab) => `${lab.host("owner").address.replace(/\.\d+$/, "")}.100/24` },
  {
    family: 6,
    prepare: (lab: NetnsLab) => {
      addIpv6Addresses(lab);
      return `${labIpv6Prefix}100/64`;
    },
  },
] as const;

describe("vip driver in network namespaces (owner, neighbour, previous holder)", {
  skip,
  timeout: 60_000,
}, () => {
  let lab: NetnsLab | undefined;

  before(() => {
    if (unsupported) assert.fail(unsupported);
    lab = NetnsLab.create(["owner", "neighbour", "previous"]);
  });

  after(async () => {
    await lab?.dispose();
  });

  for (const { family, prepare } of families) {
    it(`IPv${family}: start adds and announces the VIP, stop removes it, a failed start takes it back`, async () => {
      const current = lab;
      assert.ok(current, "no lab");
      const [owner, neighbour, previous] = ["owner", "neighbour", "previous"].map((name) =>
        current.host(name),
      );
      assert.ok(owner && neighbour && previous);
      const cidr = prepare(current);
      const address = cidr.replace(/\/\d+$/, "");
      const [ownerMac, previousMac] = [macOf(owner), macOf(previous)];
      const driver = (announce: number, log = logger, wrapper: readonly string[] = []) =>
        new VipDriver(
          toVipDriverConfig(
            vipDriverSchema.parse({ type: "vip", address: cidr, interface: "eth0", announce }),
          ),
          log,
          { commandPrefix: ["ip", "netns", "exec", owner.namespace, ...wrapper] },
        );
      const announcing = driver(3);
      const silent = driver(0);
      const neighbourSees = (what: string, mac: string) =>
        waitForValue(what, () => neighbourMac(neighbour, address), mac, neighbourWaitMs);

      // Before the failover: the previous holder has the VIP and the neighbour has resolved it there.
      ipIn(previous, ["addr", "add", cidr, "dev", "eth0", ...(family === 6 ? ["nodad"] : [])]);
      sendDatagram(neighbour, address);
      await neighbourSees("the neighbour resolves the VIP at the previous holder", previousMac);
      ipIn(previous, ["addr", "del", cidr, "dev", "eth0"]);

      assert.equal(await announcing.status(context), "stopped");
      assert.equal(await announcing.stop(context), true, "stop when the address is absent");

      // The control: the address alone tells the neighbour nothing.
      assert.equal(await silent.start(context), true);
      assert.equal(await silent.status(context), "running");
      await sleep(quietMs);
      assert.equal(neighbourMac(neighbour, address), previousMac);
      assert.equal(await silent.stop(context), true);
      assert.equal(addressCount(owner, address), 0);

      assert.equal(await announcing.start(context), true);
      assert.equal(addressCount(owner, address), 1);
      assert.equal(await announcing.status(context), "running");
      await neighbourSees("the announcement moves the neighbour's entry to the owner", ownerMac);

      // Started again with the address present: still fine, and it announces again.
      ipIn(neighbour, ["neigh", "replace", address, "lladdr", previousMac, "dev", "eth0", "nud", "stale"]);
      assert.equal(await announcing.start(context), true);
      assert.equal(addressCount(owner, address), 1);
      await neighbourSees("the second start announces too", ownerMac);

      assert.equal(await announcing.stop(context), true);
      assert.equal(addressCount(owner, address), 0);
      assert.equal(await announcing.status(context), "stopped");
      assert.equal(await announcing.stop(context), true, "stop again");

      // A host without the announcing tool: start fails, says why, and takes the address back (the runner
      // does not stop a driver whose start failed, and the service moves on).
      const lines: string[] = [];
      const capture = pino({ level: "warn" }, { write: (line: string) => lines.push(line) });
      assert.equal(await driver(3, capture, ["sh", "-c", withoutAnnouncingTools]).start(context), false);
      assert.equal(addressCount(owner, address), 0);
      assert.match(lines.join(""), /"stderr":"(arping|ndptool): not installed".*"msg":"announce failed"/);
    });
  }
});
