import type pg from 'pg';
import type { Database } from './database.ts';

export interface Listening {
  /** Each notification's payload on the channel. */
  heard(payload: string): void;
  /** The connection was lost: nothing can be heard until it is back. */
  lost?(): void;
  /** Listening again after a loss: whatever was sent meanwhile was missed. */
  back(): void;
}

/**
 * LISTEN on a connection of its own (a pooled one would be handed to others), reconnected when
 * lost: after 100 ms, then every second until it is back. Returns the function that stops it.
 */
export async function listen(db: Database, channel: string, on: Listening): Promise<() => Promise<void>> {
  let client: pg.Client | undefined;
  let stopped = false;
  let retry: NodeJS.Timeout | undefined;
  const connect = async (): Promise<void> => {
    const c = db.dedicatedClient();
    c.on('notification', (n) => {
      if (n.payload) on.heard(n.payload);
    });
    const lost = () => {
      if (client !== c || stopped) return;
      client = undefined;
      on.lost?.();
      const again = () => {
        retry = undefined;
        if (stopped) return;
        connect().then(() => on.back(), () => (retry = setTimeout(again, 1000).unref()));
      };
      retry = setTimeout(again, 100).unref();
    };
    c.on('error', lost);
    c.on('end', lost);
    await c.connect();
    // The channel is made of a schema name checked to be a plain SQL name.
    await c.query(`LISTEN "${channel}"`);
    client = c;
  };
  await connect();
  return async () => {
    stopped = true;
    if (retry) clearTimeout(retry);
    await client?.end().catch(() => undefined);
  };
}
