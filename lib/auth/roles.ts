/** Gateway roles, each including the ones before it. Worker tokens are separate (lib/auth/callback-token.ts). */
export const ROLES = ["submitter", "operator", "admin"] as const;
export type Role = (typeof ROLES)[number];

export function isRole(value: string): value is Role {
  return (ROLES as readonly string[]).includes(value);
}

/** True when `role` is `required` or above it. */
export function roleAllows(role: Role, required: Role): boolean {
  return ROLES.indexOf(role) >= ROLES.indexOf(required);
}
