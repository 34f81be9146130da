// Loopback port ranges for tests: base + 10*i and base + 10*i + 1 for i < count. Ranges lie below the
// kernel's ephemeral range, so an outgoing connection can never take a port while its agent is down for a
// restart, and each 10-port slot is reserved with a lock file, so test files running at once never share
// one between their probe and their agents' bind.
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

const slotPorts = 10;
const lowestPort = 10_000;
const lockDir = join(tmpdir(), "tandem-test-ports");

/** Linux's default when /proc is not there to say (macOS uses 49152-65535, above this too). */
function ephemeralRange(): { low: number; high: number } {
  try {
    const [low, high] = readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/);
    return { low: Number(low), high: Number(high) };
  } catch {
    return { low: 32_768, high: 60_999 };
  }
}

/** Slots that may be handed out: below the ephemeral range, else above it. */
function slotWindow(count: number): { first: number; last: number } {
  const { low, high } = ephemeralRange();
  const below = { first: Math.ceil(lowestPort / slotPorts), last: Math.floor(low / slotPorts) - count };
  if (below.last - below.first >= 100) return below;
  return { first: Math.ceil((high + 1) / slotPorts), last: Math.floor(65_535 / slotPorts) - count };
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Takes the lock of one slot; a lock whose process is gone is taken over. */
function lockSlot(slot: number): boolean {
  const path = join(lockDir, String(slot));
  for (let tries = 0; tries < 2; tries++) {
    try {
      const fd = openSync(path, "wx");
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      const owner = Number(readFileSync(path, "utf8").trim() || Number.NaN);
      // An owner still writing its pid reads as NaN: leave that lock alone.
      if (Number.isNaN(owner) || pidAlive(owner)) return false;
      rmSync(path, { force: true });
    }
  }
  return false;
}

function unlockSlot(slot: number): void {
  rmSync(join(lockDir, String(slot)), { force: true });
}

const held = new Set<number>();
process.once("exit", () => {
  for (const slot of held) unlockSlot(slot);
});

export interface PortRange {
  base: number;
  /** Frees the slots for other test processes (also done when this process exits). */
  release(): void;
}

/** Reserves `count` slots of 10 ports in a row, every mesh and API port of them free right now. */
export async function reservePortRange(count: number): Promise<PortRange> {
  mkdirSync(lockDir, { recursive: true });
  const { first, last } = slotWindow(count);
  for (let attempt = 0; attempt < 200; attempt++) {
    const start = first + Math.floor(Math.random() * (last - first + 1));
    const slots = Array.from({ length: count }, (_, i) => start + i);
    const locked: number[] = [];
    for (const slot of slots) {
      if (!lockSlot(slot)) break;
      locked.push(slot);
    }
    let ok = locked.length === count;
    for (let i = 0; i < count && ok; i++) {
      const port = (start + i) * slotPorts;
      ok = (await portFree(port)) && (await portFree(port + 1));
    }
    if (!ok) {
      for (const slot of locked) unlockSlot(slot);
      continue;
    }
    for (const slot of slots) held.add(slot);
    return {
      base: start * slotPorts,
      release: () => {
        for (const slot of slots) if (held.delete(slot)) unlockSlot(slot);
      },
    };
  }
  throw new Error(`no free range of ${count} port slots on 127.0.0.1`);
}

/** A reserved range's base, held until this process exits. */
export async function freeBasePort(count: number): Promise<number> {
  return (await reservePortRange(count)).base;
}

/** Waits until the given ports can be bound again (a restarted agent re-binds its own), or throws. */
export async function waitForPortsFree(ports: readonly number[], timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (const port of ports) {
    while (!(await portFree(port))) {
      if (Date.now() > deadline) throw new Error(`port ${port} on 127.0.0.1 is still in use`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}
