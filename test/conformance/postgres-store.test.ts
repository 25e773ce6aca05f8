import { PostgresJobStore } from "../../lib/store/postgres/postgres-store";
import { SecretBox } from "../../lib/secrets/secret-box";
import { createDatabase, TestDatabase } from "../support/postgres";
import { storeConformance } from "./store-conformance";

/** The PostgreSQL dialect passes the same conformance suite as SQLite, each test on a database of its own. */
const secrets = new SecretBox(Buffer.alloc(32, 9));
const databases: TestDatabase[] = [];
const urls = new WeakMap<object, string>();

afterAll(async () => {
  for (const db of databases.splice(0)) await db.drop();
});

storeConformance(
  "postgres",
  async () => {
    const db = await createDatabase("conf");
    databases.push(db);
    const store = new PostgresJobStore({ url: db.url, secrets });
    urls.set(store, db.url);
    return store;
  },
  { openPeer: async (store) => new PostgresJobStore({ url: urls.get(store)!, secrets }) },
);
