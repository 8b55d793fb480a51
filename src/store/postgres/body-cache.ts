/**
 * Decoded bodies of recently served versions (opened, identifiers decrypted), keyed by version: a
 * stored version never changes, so no node's write can make an entry wrong, and nothing needs
 * invalidating. Spares the decryption of a body read again; the read itself still goes to the
 * database, so every node serves a resource's current version, whichever node wrote it.
 * Bounded by the characters it holds; oldest out first.
 */
export class BodyCache {
  private readonly maxChars: number;
  private entries = new Map<string, string>();
  private chars = 0;

  constructor(maxChars: number) {
    this.maxChars = maxChars;
  }

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
