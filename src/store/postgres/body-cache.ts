/** What a read needs of the cache of decoded bodies. */
export interface Bodies {
  get(type: string, id: string, version: number): string | undefined;
  set(type: string, id: string, version: number, json: string): void;
}

/**
 * Decoded bodies of recently served versions (opened, identifiers decrypted), keyed by version: a
 * stored version never changes, so no node's write can make an entry wrong, and nothing needs
 * invalidating. Spares the decryption of a body read again; the read itself still goes to the
 * database, so every node serves a resource's current version, whichever node wrote it.
 * Bounded by the characters it holds; oldest out first.
 */
export class BodyCache implements Bodies {
  private readonly maxChars: number;
  private entries = new Map<string, string>();
  private chars = 0;

  constructor(maxChars: number) {
    this.maxChars = maxChars;
  }

  /**
   * The same entries, never added to: for reads inside a write transaction. What it reads may be
   * its own write, which a rollback undoes; cached, it would be served as that version once
   * another write made the version again with other content.
   */
  readonly committedOnly: Bodies = { get: (type, id, version) => this.get(type, id, version), set: () => undefined };

  get(type: string, id: string, version: number): string | undefined {
    return this.entries.get(`${type}/${id}/${version}`);
  }

  set(type: string, id: string, version: number, json: string): void {
    if (json.length * 4 > this.maxChars) return;
    const key = `${type}/${id}/${version}`;
    if (this.entries.has(key)) return;
    while (this.chars + json.length > this.maxChars) {
      const oldest = this.entries.keys().next().value!;
      this.chars -= this.entries.get(oldest)!.length;
      this.entries.delete(oldest);
    }
    this.entries.set(key, json);
    this.chars += json.length;
  }
}
