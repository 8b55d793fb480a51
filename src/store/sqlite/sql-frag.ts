export type SqlArg = string | number | null;

/** A piece of SQL with the arguments of its placeholders, in order. */
export interface Frag {
  sql: string;
  args: SqlArg[];
}

export const frag = (sql: string, ...args: SqlArg[]): Frag => ({ sql, args });

export function join(parts: Frag[], sep: string): Frag {
  return { sql: parts.map((p) => p.sql).join(sep), args: parts.flatMap((p) => p.args) };
}
