import type { Database } from './database.ts';
import { listen } from './listen.ts';

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
  private stopListening: (() => Promise<void>) | undefined;

  constructor(db: Database, node: string) {
    this.db = db;
    this.node = node;
    // One channel per schema: deployments (and tests) sharing a database never hear each other.
    this.channel = `bastion_${db.schema}`;
  }

  async start(): Promise<void> {
    this.stopListening = await listen(this.db, this.channel, {
      heard: (payload) => this.heard(payload),
      // Whatever happened while deaf counts as a change of everything.
      lost: () => this.everything++,
      back: () => this.everything++,
    });
  }

  /** Changes other nodes made to any of these types (plus every reconnect) so far. */
  changes(types: readonly string[]): number {
    let n = this.everything;
    for (const t of types) n += this.byType.get(t) ?? 0;
    return n;
  }

  async stop(): Promise<void> {
    await this.stopListening?.();
  }

  private heard(payload: string): void {
    const bar = payload.indexOf('|');
    if (bar < 0 || payload.slice(0, bar) === this.node) return;
    const type = payload.slice(bar + 1);
    this.byType.set(type, (this.byType.get(type) ?? 0) + 1);
  }
}
