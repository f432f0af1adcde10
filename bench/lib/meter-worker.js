// The cost bench's meter (bench/cost.mjs): a Worker entry laid around flaghook's own, in a copy of
// the source it measures (copied there as bench-meter.js, beside src/), so it meters any version,
// and the Worker itself carries nothing of it. It counts what Cloudflare bills:
//   - D1: every statement's meta.rows_read / rows_written (and the database size after it), read from
//     each answer of the D1 binding's client (workerd's D1 client: `_send` of its session, through
//     which prepare/run/all/raw/first/batch/exec all go; raw() alone would not show meta);
//   - Queues: messages written (send, sendBatch), read (handed to a consumer) and deleted (acked);
//   - R2: class A (put, list, multipart) and class B (get, head) operations;
//   - Worker requests: fetch, queue and scheduled invocations.
// GET /_meter answers the counts; POST /_meter/reset zeroes them. CPU is read from /proc by the bench.
import flaghook from "./src/index";

const zero = () => ({
  requests: { fetch: 0, queue: 0, scheduled: 0 },
  d1: { statements: 0, rows_read: 0, rows_written: 0, size_after: 0, by_statement: {} },
  queues: { written: 0, read: 0, deleted: 0, bytes_written: 0 },
  r2: { class_a: 0, class_b: 0, by_method: {} },
});
let counts = zero();

/** A statement's first words, its table named: what the per-statement table groups by. */
function shape(sql) {
  const s = sql.replace(/\s+/g, " ").trim();
  const m = /^(insert into|update|delete from|select .*? from|with .*? from) "?([a-z_]+)"?/i.exec(s);
  const verb = s.split(" ")[0].toLowerCase();
  return m ? `${verb} ${m[2]}` : s.slice(0, 40);
}

function countD1(results, query) {
  const list = Array.isArray(results) ? results : [results];
  const sqls = Array.isArray(query) ? query : [query];
  list.forEach((r, i) => {
    const meta = r?.meta ?? {};
    counts.d1.statements++;
    counts.d1.rows_read += meta.rows_read ?? 0;
    counts.d1.rows_written += meta.rows_written ?? 0;
    if (meta.size_after) counts.d1.size_after = meta.size_after;
    const key = shape(String(sqls[i] ?? sqls[0] ?? ""));
    const s = (counts.d1.by_statement[key] ??= { statements: 0, rows_read: 0, rows_written: 0 });
    s.statements++;
    s.rows_read += meta.rows_read ?? 0;
    s.rows_written += meta.rows_written ?? 0;
  });
}

const patched = new WeakSet();
function meterD1(db) {
  const session = db?.alwaysPrimarySession;
  if (!session || typeof session._send !== "function") {
    throw new Error("the cost bench's D1 meter needs workerd's D1 client (env.DB.alwaysPrimarySession._send); it changed");
  }
  if (patched.has(session)) return db;
  const send = session._send.bind(session);
  session._send = async (endpoint, query, params, format, span) => {
    const results = await send(endpoint, query, params, format, span);
    countD1(results, query);
    return results;
  };
  patched.add(session);
  return db;
}

const size = (body) => new TextEncoder().encode(JSON.stringify(body)).length;
function meterQueue(queue) {
  return {
    async send(body, options) {
      await queue.send(body, options);
      counts.queues.written++;
      counts.queues.bytes_written += size(body);
    },
    async sendBatch(messages, options) {
      await queue.sendBatch(messages, options);
      counts.queues.written += messages.length;
      for (const m of messages) counts.queues.bytes_written += size(m.body);
    },
  };
}

const CLASS_A = new Set(["put", "list", "createMultipartUpload", "resumeMultipartUpload"]);
const CLASS_B = new Set(["get", "head"]);
function meterR2(bucket) {
  return new Proxy(bucket, {
    get(target, name) {
      const value = target[name];
      if (typeof value !== "function") return value;
      return (...args) => {
        const kind = CLASS_A.has(name) ? "class_a" : CLASS_B.has(name) ? "class_b" : null;
        if (kind) counts.r2[kind]++;
        counts.r2.by_method[name] = (counts.r2.by_method[name] ?? 0) + 1;
        return value.apply(target, args);
      };
    },
  });
}

/** One metered env per env object, so flaghook's per-env caches keep working. */
const envs = new WeakMap();
function metered(env) {
  let m = envs.get(env);
  if (!m) {
    m = { ...env, DB: meterD1(env.DB), INGEST_QUEUE: meterQueue(env.INGEST_QUEUE), DELIVERY_QUEUE: meterQueue(env.DELIVERY_QUEUE) };
    if (env.AUDIT_BUCKET) m.AUDIT_BUCKET = meterR2(env.AUDIT_BUCKET);
    for (const [name, value] of Object.entries(env)) {
      if (name !== "DB" && /^DB_/.test(name) && value?.alwaysPrimarySession) m[name] = meterD1(value);
    }
    envs.set(env, m);
  }
  return m;
}

export default {
  async fetch(request, env, ctx) {
    const url = new URL(request.url);
    if (url.pathname === "/_meter") return Response.json(counts);
    if (url.pathname === "/_meter/reset" && request.method === "POST") {
      counts = zero();
      return Response.json(counts);
    }
    counts.requests.fetch++;
    return flaghook.fetch(request, metered(env), ctx);
  },
  async queue(batch, env, ctx) {
    counts.requests.queue++;
    counts.queues.read += batch.messages.length;
    let retried = 0;
    const messages = batch.messages.map((m) => ({
      get id() { return m.id; },
      get timestamp() { return m.timestamp; },
      get body() { return m.body; },
      get attempts() { return m.attempts; },
      ack: () => m.ack(),
      retry: (o) => (retried++, m.retry(o)),
    }));
    const wrapped = {
      queue: batch.queue,
      messages,
      ackAll: () => batch.ackAll(),
      retryAll: (o) => ((retried = batch.messages.length), batch.retryAll(o)),
    };
    try {
      await flaghook.queue(wrapped, metered(env), ctx);
    } catch (err) {
      retried = batch.messages.length;
      throw err;
    } finally {
      counts.queues.deleted += batch.messages.length - retried;
    }
  },
  async scheduled(controller, env, ctx) {
    counts.requests.scheduled++;
    return flaghook.scheduled(controller, metered(env), ctx);
  },
};
