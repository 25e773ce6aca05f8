import { randomUUID } from "node:crypto";
import { rabbitmqctl } from "./amqp";

/** Where the shared test broker listens; a test's own vhost is appended to it. */
const BROKER = (process.env.TEST_AMQP_BROKER ?? "amqp://guest:guest@127.0.0.1:5672").replace(/\/+$/, "");

export interface TestVhost {
  name: string;
  /** `amqp://guest:guest@127.0.0.1:5672/<vhost>`: for the node's AMQP_URL and the test's clients. */
  url: string;
  /** Deletes the vhost with everything in it (queues, connections): call it in afterAll. */
  remove(): void;
}

/**
 * A vhost of the test's own on the shared RabbitMQ (other engineers' tests run on the same
 * broker at the same time): its queues can be purged and filled freely, and deleting it
 * closes only its own connections. `rabbitmqctl add_vhost` + `set_permissions` for guest.
 */
export function createVhost(prefix: string): TestVhost {
  const name = `blacktree-test-${prefix}-${process.pid}-${randomUUID().slice(0, 8)}`;
  rabbitmqctl("add_vhost", name);
  try {
    rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*");
  } catch (err) {
    rabbitmqctl("delete_vhost", name);
    throw err;
  }
  let removed = false;
  return {
    name,
    url: `${BROKER}/${encodeURIComponent(name)}`,
    remove() {
      if (removed) return;
      removed = true;
      rabbitmqctl("delete_vhost", name);
    },
  };
}
