// The human API docs at /docs: /openapi.json rendered on the server, no scripts, no external assets.
import { Hono } from "hono";
import type { Env } from "../env";
import { pageHeaders, render } from "./layout";

interface Schema {
  $ref?: string;
  type?: string | string[];
  items?: Schema;
  properties?: Record<string, Schema>;
  required?: string[];
  enum?: unknown[];
  anyOf?: Schema[];
  oneOf?: Schema[];
  allOf?: Schema[];
  description?: string;
  nullable?: boolean;
  default?: unknown;
  example?: unknown;
  minimum?: number;
  maximum?: number;
  maxLength?: number;
  additionalProperties?: boolean | Schema;
}

interface Parameter {
  name: string;
  in: string;
  required?: boolean;
  description?: string;
  schema?: Schema;
}

interface Operation {
  tags?: string[];
  summary?: string;
  description?: string;
  security?: Record<string, unknown>[];
  parameters?: Parameter[];
  requestBody?: { required?: boolean; content?: Record<string, { schema?: Schema }> };
  responses?: Record<string, { description?: string; content?: Record<string, { schema?: Schema }> }>;
}

interface OpenApiDoc {
  info: { title: string; version: string; description?: string };
  paths: Record<string, Record<string, Operation>>;
  components?: { schemas?: Record<string, Schema>; securitySchemes?: Record<string, { type: string; scheme?: string; name?: string; in?: string; description?: string }> };
}

const METHODS = ["get", "post", "put", "patch", "delete"];
const anchor = (s: string) => s.replace(/[^A-Za-z0-9_-]+/g, "-");
const refName = (ref: string) => ref.split("/").pop() ?? ref;

/** A schema in one line: a link for a named schema, "array of X", enums, unions, nullability. */
function TypeOf({ schema }: { schema: Schema | undefined }): ReturnType<typeof Mono> {
  if (!schema) return <Mono text="any" />;
  if (schema.$ref) {
    const name = refName(schema.$ref);
    return (
      <a class="mono" href={`#schema-${anchor(name)}`}>
        {name}
      </a>
    );
  }
  const union = schema.anyOf ?? schema.oneOf;
  if (union) {
    return (
      <>
        {union.map((s, i) => (
          <>
            {i > 0 && " | "}
            <TypeOf schema={s} />
          </>
        ))}
      </>
    );
  }
  if (schema.allOf?.length === 1) return <TypeOf schema={schema.allOf[0]} />;
  if (schema.enum) return <Mono text={schema.enum.map((v) => JSON.stringify(v)).join(" | ")} />;
  const types = Array.isArray(schema.type) ? schema.type : schema.type ? [schema.type] : [];
  const nullable = schema.nullable || types.includes("null");
  const main = types.filter((t) => t !== "null");
  const props = Object.entries(schema.properties ?? {});
  if (props.length && props.length <= 6 && (main.length === 0 || main[0] === "object")) {
    // A small inline object (a page of results, an accepted answer) reads best spelled out.
    return (
      <>
        <Mono text="{ " />
        {props.map(([name, s], i) => (
          <>
            {i > 0 && <Mono text=", " />}
            <Mono text={`${name}: `} />
            <TypeOf schema={s} />
          </>
        ))}
        <Mono text={nullable ? " } | null" : " }"} />
      </>
    );
  }
  const label = main.length ? main.join(" | ") : props.length ? "object" : "any";
  if (main[0] === "array") {
    return (
      <>
        <Mono text="array of " />
        <TypeOf schema={schema.items} />
        {nullable && <Mono text=" | null" />}
      </>
    );
  }
  return <Mono text={label + (nullable ? " | null" : "")} />;
}

function Mono({ text }: { text: string }) {
  return <span class="mono">{text}</span>;
}

function constraints(schema: Schema | undefined): string {
  if (!schema) return "";
  const out: string[] = [];
  if (schema.default !== undefined) out.push(`default ${JSON.stringify(schema.default)}`);
  if (schema.minimum !== undefined) out.push(`min ${schema.minimum}`);
  if (schema.maximum !== undefined) out.push(`max ${schema.maximum}`);
  if (schema.maxLength !== undefined) out.push(`at most ${schema.maxLength} characters`);
  return out.join(", ");
}

function Properties({ schema }: { schema: Schema }) {
  const props = Object.entries(schema.properties ?? {});
  if (!props.length) return <p class="small">Type: <TypeOf schema={schema} /></p>;
  const required = new Set(schema.required ?? []);
  return (
    <div class="scroll stacked">
      <table class="stack">
        <thead>
          <tr>
            <th>Field</th>
            <th>Type</th>
            <th>Notes</th>
          </tr>
        </thead>
        <tbody>
          {props.map(([name, s]) => (
            <tr>
              <td class="mono wrap">
                <strong>
                  {name}
                  {required.has(name) ? "" : "?"}
                </strong>
              </td>
              <td class="small wrap" data-label="Type">
                <TypeOf schema={s} />
              </td>
              <td class="small wrap full">{[s.description, constraints(s)].filter(Boolean).join(" · ")}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function OperationView({ method, path, op }: { method: string; path: string; op: Operation }) {
  const params = op.parameters ?? [];
  const body = op.requestBody?.content?.["application/json"]?.schema;
  const auth = (op.security ?? []).flatMap((s) => Object.keys(s));
  return (
    <div class="op" id={anchor(`${method}-${path}`)}>
      <h3>
        <span class={`method ${method}`}>{method.toUpperCase()}</span> <span class="mono">{path}</span>
      </h3>
      {op.summary && <p>{op.summary}</p>}
      {op.description && <p class="small muted">{op.description}</p>}
      {auth.length > 0 && (
        <p class="small">
          Authorization:{" "}
          {auth.map((a) => (
            <span class="badge info">{a === "apiKey" ? "Api-Key <key>" : a === "operator" ? "Bearer <ADMIN_TOKEN>" : a}</span>
          ))}
        </p>
      )}
      {params.length > 0 && (
        <div class="scroll stacked">
          <table class="stack">
            <thead>
              <tr>
                <th>Parameter</th>
                <th>In</th>
                <th>Type</th>
                <th>Notes</th>
              </tr>
            </thead>
            <tbody>
              {params.map((p) => (
                <tr>
                  <td class="mono wrap">
                    <strong>
                      {p.name}
                      {p.required ? "" : "?"}
                    </strong>
                  </td>
                  <td class="small" data-label="In">
                    {p.in}
                  </td>
                  <td class="small wrap" data-label="Type">
                    <TypeOf schema={p.schema} />
                  </td>
                  <td class="small wrap full">{[p.description ?? p.schema?.description, constraints(p.schema)].filter(Boolean).join(" · ")}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {body && (
        <p class="small">
          Request body (JSON{op.requestBody?.required ? "" : ", optional"}): <TypeOf schema={body} />
        </p>
      )}
      <ul class="small">
        {Object.entries(op.responses ?? {}).map(([status, r]) => {
          const schema = r.content ? Object.values(r.content)[0]?.schema : undefined;
          return (
            <li>
              <strong>{status}</strong> {r.description}
              {schema && (
                <>
                  {" — "}
                  <TypeOf schema={schema} />
                </>
              )}
            </li>
          );
        })}
      </ul>
    </div>
  );
}

function Docs({ doc }: { doc: OpenApiDoc }) {
  const byTag = new Map<string, { method: string; path: string; op: Operation }[]>();
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const method of METHODS) {
      const op = item[method];
      if (!op) continue;
      const tag = op.tags?.[0] ?? "Other";
      if (!byTag.has(tag)) byTag.set(tag, []);
      byTag.get(tag)!.push({ method, path, op });
    }
  }
  const schemas = Object.entries(doc.components?.schemas ?? {});
  return (
    <>
      <h1>
        {doc.info.title} API <span class="badge">v{doc.info.version}</span>
      </h1>
      {doc.info.description && <p>{doc.info.description}</p>}
      <div class="card">
        <p class="small">
          Machine-readable: <a href="/openapi.json">/openapi.json</a> (OpenAPI 3.1). Errors are always{" "}
          <code>{'{"error": {"code", "message", "details"}}'}</code>. Every path answers with and without a trailing slash.
        </p>
        <h3>Authentication</h3>
        <ul class="small">
          {Object.entries(doc.components?.securitySchemes ?? {}).map(([name, s]) => (
            <li>
              <strong>{name}</strong>: {s.type === "http" ? `Authorization: Bearer …` : `${s.name} header`} {s.description && `(${s.description})`}
            </li>
          ))}
        </ul>
        <h3>Contents</h3>
        <ul class="toc small">
          {[...byTag.keys()].map((tag) => (
            <li>
              <a href={`#tag-${anchor(tag)}`}>{tag}</a>
            </li>
          ))}
          <li>
            <a href="#schemas">Schemas</a>
          </li>
        </ul>
      </div>
      {[...byTag].map(([tag, ops]) => (
        <section class="card" id={`tag-${anchor(tag)}`}>
          <h2>{tag}</h2>
          {ops.map((o) => (
            <OperationView {...o} />
          ))}
        </section>
      ))}
      <section class="card" id="schemas">
        <h2>Schemas</h2>
        {schemas.map(([name, schema]) => (
          <div class="op" id={`schema-${anchor(name)}`}>
            <h3 class="mono">{name}</h3>
            {schema.description && <p class="small">{schema.description}</p>}
            <Properties schema={schema} />
          </div>
        ))}
      </section>
    </>
  );
}

/** `source` is the app that serves /openapi.json, asked in-process so the page shows exactly that document. */
export function docsRoutes(source: { request: (path: string, init: RequestInit | undefined, env: Env) => Response | Promise<Response> }) {
  const docs = new Hono<{ Bindings: Env }>();
  docs.use(pageHeaders);
  docs.get("/", async (c) => {
    const res = await source.request("/openapi.json", undefined, c.env);
    const doc = (await res.json()) as OpenApiDoc;
    return render(c, "API docs", <Docs doc={doc} />, { section: "docs" });
  });
  return docs;
}
