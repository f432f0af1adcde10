// Who did something in the admin pages: the person behind a change, as its audit entry's author.
// Kept to one small seam so the submitter/provenance of audit entries can build on it.

/** A person signed in to the admin pages (today through Cloudflare Access). */
export interface Actor {
  email: string;
  via: "cloudflare_access";
}

/** The actor as a Flagsmith audit author: no numeric id (flaghook has no user table), email, empty names. */
export const authorOf = (actor: Actor) => ({ id: null, email: actor.email, first_name: "", last_name: "" });
