// etcd 3.4 as a StoreTarget, for the side-by-side figures: the same workloads through the `etcd3` client.
// Writes go to member 0 (forwarded to the raft leader when it is not), a batch is one transaction of puts,
// node 2's watch and checks are served by member 2 alone (serializable reads).
import type { Etcd3, Watcher } from "etcd3";
import type { ConvergenceProbe, KeyValue, StoreTarget } from "./store_workloads.ts";
import { EtcdCluster } from "./support/etcd.ts";

/** etcd refuses a transaction with more operations than --max-txn-ops (default 128). */
export const ETCD_TXN_OPS_MAX = 128;

export class EtcdTarget implements StoreTarget {
  private readonly cluster: EtcdCluster;
  private readonly writer: Etcd3;
  private readonly first: Etcd3;
  private readonly third: Etcd3;

  private constructor(cluster: EtcdCluster) {
    this.cluster = cluster;
    this.writer = cluster.client(0);
    this.first = cluster.client(0);
    this.third = cluster.client(2);
  }

  static async start(): Promise<EtcdTarget> {
    return new EtcdTarget(await EtcdCluster.start());
  }

  async writeBatch(entries: readonly KeyValue[]): Promise<number> {
    let acked = 0;
    for (let first = 0; first < entries.length; first += ETCD_TXN_OPS_MAX) {
      const slice = entries.slice(first, first + ETCD_TXN_OPS_MAX);
      const answer = await this.writer.kv.txn({
        compare: [],
        success: slice.map((e) => ({
          request_put: { key: Buffer.from(e.key), value: Buffer.from(e.value) },
        })),
        failure: [],
      });
      if (answer.succeeded) acked += slice.length;
    }
    return acked;
  }

  async writeOne(entry: KeyValue): Promise<boolean> {
    await this.writer.put(entry.key).value(Buffer.from(entry.value));
    return true;
  }

  async watch(prefix: string, seen: (key: string) => void): Promise<() => void> {
    const watcher: Watcher = await this.third.watch().prefix(prefix).create();
    watcher.on("put", (kv) => seen(kv.key.toString()));
    return () => void watcher.cancel();
  }

  pids(): number[] {
    return this.cluster.members.map((_, i) => this.cluster.pid(i));
  }

  pauseNode2(paused: boolean): void {
    process.kill(this.cluster.pid(2), paused ? "SIGSTOP" : "SIGCONT");
  }

  /** Member 2 has applied everything member 0 has: the same revision and count, read locally on each. */
  async convergenceProbe(prefix: string): Promise<ConvergenceProbe> {
    const local = (client: Etcd3) => client.getAll().prefix(prefix).serializable(true).limit(1).exec();
    return {
      node2Identical: async () => {
        const [a, c] = await Promise.all([local(this.first), local(this.third)]);
        return a.header.revision === c.header.revision && a.count === c.count;
      },
      close: () => {},
    };
  }

  stop(): void {
    for (const client of [this.writer, this.first, this.third]) client.close();
    this.cluster.dispose();
  }
}
