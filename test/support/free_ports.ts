// Finds a base port such that base + 10*i and base + 10*i + 1 are free for i < count (loopback only).
import { createServer } from "node:net";

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

export async function freeBasePort(count: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 3_000) * 10;
    let ok = true;
    for (let i = 0; i < count && ok; i++) {
      ok = (await portFree(base + i * 10)) && (await portFree(base + i * 10 + 1));
    }
    if (ok) return base;
  }
  throw new Error("no free port range on 127.0.0.1");
}
