/** A bound value (bytes: a sealed body); arrays only for PostgreSQL, whose dialect passes lists as one parameter. */
export type SqlArg = string | number | null | Uint8Array | readonly string[] | readonly number[];

/** A piece of SQL with the arguments of its placeholders, in order. */
export interface Frag {
  sql: string;
  args: SqlArg[];
}

export const frag = (sql: string, ...args: SqlArg[]): Frag => ({ sql, args });

export function join(parts: Frag[], sep: string): Frag {
  return { sql: parts.map((p) => p.sql).join(sep), args: parts.flatMap((p) => p.args) };
}
