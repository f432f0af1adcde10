// The organisation's known projects and environments (upserted from events), for pickers in the admin pages.
import { asc, eq } from "drizzle-orm";
import type { Db } from "../db/client";
import { environments, projects } from "../db/schema";

export async function projectsOf(db: Db, orgId: number) {
  return db.select({ id: projects.id, name: projects.name }).from(projects).where(eq(projects.orgId, orgId)).orderBy(asc(projects.id));
}

export async function environmentsOf(db: Db, orgId: number) {
  return db
    .select({ id: environments.id, name: environments.name, projectId: environments.projectId, apiKey: environments.apiKey })
    .from(environments)
    .where(eq(environments.orgId, orgId))
    .orderBy(asc(environments.projectId), asc(environments.id));
}
