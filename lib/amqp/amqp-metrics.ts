import client from "prom-client";
import { metricsRegistry } from "../metrics";

const registers = [metricsRegistry];

/** RabbitMQ and Redis traffic of this node, on the node's one registry (`/metrics`). */
export const amqpMetrics = {
  consumed: new client.Counter({ name: "blacktree_amqp_messages_consumed_total", help: "Messages delivered to our consumers", labelNames: ["queue", "redelivered"], registers }),
  acked: new client.Counter({ name: "blacktree_amqp_messages_acked_total", help: "Messages acked after their job, rejection or dead letter was stored", labelNames: ["queue"], registers }),
  nacked: new client.Counter({ name: "blacktree_amqp_messages_nacked_total", help: "Messages nacked (requeue after a delay when neither a retry copy nor a dead letter could be written)", labelNames: ["queue", "requeue"], registers }),
  retried: new client.Counter({ name: "blacktree_amqp_messages_retried_total", help: "execute.queue messages whose handling failed, re-published with a higher failure count after the delay", registers }),
  deadLettered: new client.Counter({ name: "blacktree_amqp_messages_dead_lettered_total", help: "Messages sent to execute.dlq, by reason", labelNames: ["reason"], registers }),
  rejected: new client.Counter({ name: "blacktree_amqp_jobs_rejected_total", help: "Messages stored as rejected jobs (valid JSON, invalid job)", registers }),
  publishConfirms: new client.Counter({ name: "blacktree_amqp_publish_confirms_total", help: "Publishes the broker confirmed", labelNames: ["routing_key"], registers }),
  publishReturns: new client.Counter({ name: "blacktree_amqp_publish_returns_total", help: "Mandatory publishes the broker returned as unroutable", labelNames: ["routing_key"], registers }),
  publishRetries: new client.Counter({ name: "blacktree_status_sink_retries_total", help: "Status sink batches that failed and will be retried", labelNames: ["sink"], registers }),
  resultsSkipped: new client.Counter({ name: "blacktree_amqp_results_already_delivered_total", help: "In-doubt results found in the receipts queue after a reconnect or restart, so not sent again", registers }),
  connected: new client.Gauge({ name: "blacktree_amqp_connected", help: "1 while the named AMQP connection is up", labelNames: ["connection"], registers }),
  redisConnected: new client.Gauge({ name: "blacktree_redis_connected", help: "1 while the Redis status sink is connected", registers }),
};
