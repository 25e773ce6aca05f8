import { randomBytes, randomUUID } from "node:crypto";
import { rabbitmqctl } from "./amqp";

/** Where the shared test broker listens; a test's own vhost is appended to it. */
export const BROKER = (process.env.TEST_AMQP_BROKER ?? "amqp://guest:guest@127.0.0.1:5672").replace(/\/+$/, "");

export interface TestVhost {
  name: string;
  /** `amqp://guest:guest@127.0.0.1:5672/<vhost>`: for the test's own clients (and nodes that keep their access). */
  url: string;
  /** With `{ user: true }`: a user of this vhost only, `amqp://<user>:<password>@…/<vhost>`, whose access the test may take away. */
  userUrl: string | null;
  user: string | null;
  password: string | null;
  /** Closes every client connection of this vhost, and only of this vhost (`close_all_connections -p`). */
  closeConnections(reason?: string): void;
  /** The vhost's own user loses (`clear_permissions`) or gets back (`set_permissions`) its access to this vhost. */
  revokeUser(): void;
  grantUser(): void;
  /** Deletes the vhost with everything in it (queues, connections) and its user: call it in afterAll. */
  remove(): void;
}

/**
 * A vhost of the test's own on the shared RabbitMQ (other engineers' tests and a developer's
 * own apps use the same broker at the same time): its queues can be purged and filled
 * freely, its connections cut, and deleting it touches nothing else. `rabbitmqctl
 * add_vhost` + `set_permissions` for guest; with `{ user: true }` also a user of its own
 * (permissions on this vhost only), deleted with the vhost.
 */
export function createVhost(prefix: string, opts: { user?: boolean } = {}): TestVhost {
  const tag = `${process.pid}-${randomUUID().slice(0, 8)}`;
  const name = `blacktree-test-${prefix}-${tag}`;
  const user = opts.user ? `blacktree-test-${prefix}-${tag}` : null;
  const password = opts.user ? randomBytes(12).toString("hex") : null;
  rabbitmqctl("add_vhost", name);
  try {
    rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*");
    if (user) {
      rabbitmqctl("add_user", user, password!);
      rabbitmqctl("set_permissions", "-p", name, user, ".*", ".*", ".*");
    }
  } catch (err) {
    rabbitmqctl("delete_vhost", name);
    if (user) tryCtl("delete_user", user);
    throw err;
  }
  const base = new URL(BROKER);
  const userUrl = user ? `${base.protocol}//${encodeURIComponent(user)}:${password}@${base.host}/${encodeURIComponent(name)}` : null;
  let removed = false;
  return {
    name,
    url: `${BROKER}/${encodeURIComponent(name)}`,
    userUrl,
    user,
    password,
    closeConnections(reason = "test") {
      rabbitmqctl("close_all_connections", "-p", name, reason);
    },
    revokeUser() {
      if (!user) throw new Error("createVhost(…, { user: true }) makes the vhost's own user");
      rabbitmqctl("clear_permissions", "-p", name, user);
    },
    grantUser() {
      if (!user) throw new Error("createVhost(…, { user: true }) makes the vhost's own user");
      rabbitmqctl("set_permissions", "-p", name, user, ".*", ".*", ".*");
    },
    remove() {
      if (removed) return;
      removed = true;
      try {
        rabbitmqctl("delete_vhost", name);
      } finally {
        if (user) tryCtl("delete_user", user);
      }
    },
  };
}

function tryCtl(...args: string[]): void {
  try {
    rabbitmqctl(...args);
  } catch {
    // already gone
  }
}
