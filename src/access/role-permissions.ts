import { readFileSync } from 'node:fs';
import type { Principal } from '../auth/principal.ts';
import type { Permission } from './smart-scopes.ts';

/**
 * Role permissions rule: what each role may do to each resource type, from a readable table
 * (role-permissions.default.json, replaceable by a deployment's own file). A user's token may
 * carry broad scopes; the role still decides. Backend services (clients) act under their scopes.
 */
export interface RolePermissionTable {
  groups: Record<string, string[]>;
  roles: Record<string, Record<string, string>>;
}

export interface RolePermissions {
  /** Whether `role` may do `permission` on `resourceType` (undefined type: a system-wide interaction, needing '*'). */
  permits(role: string, resourceType: string | undefined, permission: Permission): boolean;
  /** The types `role` may read or search; undefined: all. */
  readableTypes(role: string): string[] | undefined;
  /** The types `role` may search; undefined: all (what a search across types is held to). */
  searchableTypes(role: string): string[] | undefined;
}

export function loadRolePermissions(path: string | URL = new URL('./role-permissions.default.json', import.meta.url)): RolePermissions {
  let table: RolePermissionTable;
  try {
    table = JSON.parse(readFileSync(path, 'utf8')) as RolePermissionTable;
  } catch (err) {
    throw new Error(`Cannot read the role permissions ${String(path)}: ${(err as Error).message}`);
  }
  if (typeof table?.roles !== 'object' || table.roles === null) throw new Error(`The role permissions ${String(path)} have no "roles"`);
  return compileRolePermissions({ groups: table.groups ?? {}, roles: table.roles });
}

export function compileRolePermissions(table: RolePermissionTable): RolePermissions {
  const byRole = new Map<string, { all: Set<string>; types: Map<string, Set<string>> }>();
  for (const [role, entries] of Object.entries(table.roles)) {
    const all = new Set<string>();
    const types = new Map<string, Set<string>>();
    for (const [key, letters] of Object.entries(entries)) {
      if (!/^[cruds]*$/.test(letters)) throw new Error(`role-permissions: "${letters}" for ${role}/${key} is not a set of c r u d s`);
      const granted = [...letters];
      if (key === '*') granted.forEach((l) => all.add(l));
      else for (const type of table.groups[key] ?? [key]) {
        let set = types.get(type);
        if (!set) types.set(type, (set = new Set()));
        granted.forEach((l) => set!.add(l));
      }
    }
    byRole.set(role, { all, types });
  }
  // Computed once per role: decide() asks on every request.
  const readable = new Map<string, string[] | undefined>();
  const searchable = new Map<string, string[] | undefined>();
  return {
    permits(role, resourceType, permission) {
      const r = byRole.get(role);
      if (!r) return false;
      if (r.all.has(permission)) return true;
      // A search across types (`Patient/7/*`, $everything, `_type`) is held to the types the role
      // may search by a constraint in the query (Obligations.roleReadable): one such type suffices.
      if (resourceType === undefined) return permission === 's' && [...r.types.values()].some((letters) => letters.has('s'));
      return r.types.get(resourceType)?.has(permission) ?? false;
    },
    readableTypes(role) {
      if (!readable.has(role)) {
        const r = byRole.get(role);
        readable.set(role, !r ? [] : r.all.has('r') || r.all.has('s') ? undefined : [...r.types].filter(([, l]) => l.has('r') || l.has('s')).map(([t]) => t));
      }
      return readable.get(role);
    },
    searchableTypes(role) {
      if (!searchable.has(role)) {
        const r = byRole.get(role);
        searchable.set(role, !r ? [] : r.all.has('s') ? undefined : [...r.types].filter(([, l]) => l.has('s')).map(([t]) => t));
      }
      return searchable.get(role);
    },
  };
}

let defaults: RolePermissions | undefined;

/** The table in force: the deployment's (see configureRolePermissions) or the default. */
export function rolePermissions(): RolePermissions {
  return (defaults ??= loadRolePermissions());
}

export function configureRolePermissions(table: RolePermissions): void {
  defaults = table;
}

/** The rule: users act within their role's table; clients and the local principal are not users. */
export function roleRule(principal: Principal, resourceType: string | undefined, permission: Permission | undefined): { permit: boolean; reason: string } {
  if (principal.kind !== 'user' || permission === undefined) return { permit: true, reason: 'not a user: role table does not apply' };
  const ok = rolePermissions().permits(principal.role, resourceType, permission);
  return { permit: ok, reason: `role ${principal.role} ${ok ? 'may' : 'may not'} ${permission} ${resourceType ?? 'across all types'}` };
}
