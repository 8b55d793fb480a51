import type pg from 'pg';
import type { Database } from './database.ts';

/**
 * What other nodes commit, heard through PostgreSQL's LISTEN/NOTIFY: each write statement
 * notifies `<node>|<resource type>` (delivered at its commit, never for a rollback). A node counts
 * the other nodes' commits per type; Store.generation adds them to its own, so what a node derives
 * from resources (CareTeam relationships, Consents) is derived again once another node changed
 * them. While the listening connection is down nothing can be heard, so a reconnect counts as a
 * change of everything.
 */
export class ChangeFeed {
  readonly channel: string;
  readonly node: string;
  private readonly db: Database;
  private readonly byType = new Map<string, number>();
  private everything = 0;
  private client: pg.Client | undefined;
  private stopped = false;
  private retry: NodeJS.Timeout | undefined;

  constructor(db: Database, node: string) {
    this.db = db;
    this.node = node;
    // One channel per schema: deployments (and tests) sharing a database never hear each other.
    this.channel = `bastion_${db.schema}`;
  }

  async start(): Promise<void> {
    const client = this.db.dedicatedClient();
    client.on('notification', (n) => this.heard(n.payload));
    client.on('error', () => this.lost(client));
    client.on('end', () => this.lost(client));
    await client.connect();
    await client.query(`LISTEN "${this.channel}"`);
    this.client = client;
  }

  /** Changes other nodes made to any of these types (plus every reconnect) so far. */
  changes(types: readonly string[]): number {
    let n = this.everything;
    for (const t of types) n += this.byType.get(t) ?? 0;
    return n;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retry) clearTimeout(this.retry);
    await this.client?.end().catch(() => undefined);
  }

  private heard(payload: string | undefined): void {
    if (!payload) return;
    const bar = payload.indexOf('|');
    if (bar < 0 || payload.slice(0, bar) === this.node) return;
    const type = payload.slice(bar + 1);
    this.byType.set(type, (this.byType.get(type) ?? 0) + 1);
  }

  private lost(client: pg.Client): void {
    if (this.client !== client) return;
    this.client = undefined;
    this.everything++;
    if (this.stopped) return;
    const again = () => {
      this.retry = undefined;
      if (this.stopped) return;
      // Whatever happened while deaf counts as a change of everything.
      this.start().then(() => this.everything++, () => (this.retry = setTimeout(again, 1000).unref()));
    };
    this.retry = setTimeout(again, 100).unref();
  }
}
