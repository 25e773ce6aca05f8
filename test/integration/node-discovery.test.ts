/**
 * A node is known to the nodes already running as soon as its start has returned, so their
 * broadcasts (store-changed notices: the gateway's stream tail, the dispatcher's wake-ups) reach
 * it from the first one on. Moleculer alone announces a started node's services a second late;
 * moleculer.config.ts announceNode sends them at once.
 */
import { Context, ServiceBroker } from "moleculer";
import { brokerConfig } from "../../moleculer.config";
import { STORE_CHANGED_EVENT } from "../../services/changes.service";
import { TRANSPORTER, uniqueNamespace } from "../support/pool";
import { waitFor } from "../support/wait";

const brokers: ServiceBroker[] = [];
afterEach(async () => {
  await Promise.all(brokers.splice(0).map((b) => b.stop()));
});

function node(namespace: string, nodeId: string): ServiceBroker {
  const broker = new ServiceBroker(brokerConfig({ namespace, nodeId, transporter: TRANSPORTER, logLevel: process.env.TEST_LOG_LEVEL ?? "error" }));
  brokers.push(broker);
  return broker;
}

test("a broadcast sent right after a node started reaches that node", async () => {
  const namespace = uniqueNamespace("hfix-discovery");
  const back = node(namespace, `${namespace}-back`);
  await back.start();
  const front = node(namespace, `${namespace}-front`);
  const heard: unknown[] = [];
  front.createService({ name: "listener", events: { [STORE_CHANGED_EVENT]: (ctx: Context) => void heard.push(ctx.params) } });
  await front.start();
  // A round trip from the front after its start: the transporter keeps one connection's
  // messages in order, so by the pong the back has read whatever the front sent on starting.
  await front.ping(back.nodeID, 5_000);
  const listeners = (back.registry.events.getAllEndpoints(STORE_CHANGED_EVENT) as { id: string }[]).map((e) => e.id);
  expect(listeners).toContain(front.nodeID);
  back.broadcast(STORE_CHANGED_EVENT, { jobIds: ["job-1"] });
  await waitFor(() => heard.length > 0, { timeout: 5_000, message: "the back node's broadcast never reached the front node" });
  expect(heard).toEqual([{ jobIds: ["job-1"] }]);
});
