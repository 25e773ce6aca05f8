/**
 * The bench's own RabbitMQ virtual host: the broker is shared with other engineers' tests,
 * so everything the bench declares, publishes and consumes lives in `blacktree-bench-<pid>`,
 * which is deleted at the end (also after a failure). Nothing on `/` is ever touched.
 */
import { execFileSync } from "node:child_process";

const BROKER = process.env.BENCH_AMQP_HOST ?? "127.0.0.1:5672";

function rabbitmqctl(...args: string[]): void {
  execFileSync("rabbitmqctl", args, { stdio: ["ignore", "ignore", "pipe"], timeout: 30_000 });
}

export interface Vhost {
  name: string;
  /** amqp://guest:guest@host:port/<vhost> */
  url: string;
  delete(): void;
}

export function createVhost(name = `blacktree-bench-${process.pid}`): Vhost {
  rabbitmqctl("add_vhost", name);
  rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*");
  let deleted = false;
  return {
    name,
    url: `amqp://guest:guest@${BROKER}/${encodeURIComponent(name)}`,
    delete() {
      if (deleted) return;
      deleted = true;
      rabbitmqctl("delete_vhost", name);
    },
  };
}
