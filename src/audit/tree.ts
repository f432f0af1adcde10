// An organisation's Merkle tree in D1 (table audit_tiles): reading the hashes of any nodes (a few
// tiles, one query), writing grown tiles, and the hash of any range. Proofs, sealing and
// verification all read the tree through this, never through the leaves.
import { sql } from "drizzle-orm";
import { fromHex, toBase64 } from "../domain/crypto";
import { foldRight, subtrees, type Node, type Range } from "../domain/merkle";
import { hashAt, nodeFromTile, tileSpan, tileWidth, TILE_WIDTH, type Tile, type TileKey } from "../domain/tiles";
import type { Db, Statement } from "../db/client";

const key = (t: TileKey) => `${t.level}/${t.index}`;

/** The tiles of one organisation read so far (a request's or a seal's worth). */
export class TreeReader {
  private tiles = new Map<string, Uint8Array>();

  constructor(
    private readonly db: Db,
    readonly orgId: number,
  ) {}

  /** Reads the tiles not read yet, in one query. */
  async load(keys: readonly TileKey[]): Promise<void> {
    const missing = [...new Map(keys.filter((k) => !this.tiles.has(key(k))).map((k) => [key(k), [k.level, k.index]])).values()];
    if (!missing.length) return;
    const rows = await this.db.all<{ level: number; idx: number; hashes: string }>(
      sql`select level, idx, hex(hashes) as hashes from audit_tiles
          where org_id = ${this.orgId} and (level, idx) in (select value ->> 0, value ->> 1 from json_each(${JSON.stringify(missing)}))`,
    );
    for (const row of rows) this.tiles.set(key({ level: row.level, index: row.idx }), fromHex(row.hashes));
  }

  tile(k: TileKey): Uint8Array | undefined {
    return this.tiles.get(key(k));
  }

  /** Keeps tiles just written, so what follows reads them without a query. */
  remember(tiles: readonly Tile[]): void {
    for (const t of tiles) this.tiles.set(key(t), t.hashes);
  }

  /** The nodes' hashes; an error names the first that is not stored. */
  async nodes(nodes: readonly Node[]): Promise<Uint8Array[]> {
    await this.load(nodes.map(tileSpan));
    return Promise.all(
      nodes.map(async (node) => {
        const hash = await nodeFromTile(node, this.tile(tileSpan(node)));
        if (!hash) throw new MissingNode(node);
        return hash;
      }),
    );
  }

  /** MTH(D[start:end]) for each range, from the stored subtrees. */
  async rangeHashes(ranges: readonly Range[]): Promise<Uint8Array[]> {
    const parts = ranges.map(subtrees);
    const hashes = await this.nodes(parts.flat());
    let at = 0;
    return Promise.all(parts.map((p) => foldRight(hashes.slice(at, (at += p.length)))));
  }

  /** The root of the tree of the first `size` leaves. */
  async treeHash(size: number): Promise<Uint8Array> {
    const [root] = await this.rangeHashes([[0, size]]);
    return root;
  }
}

export class MissingNode extends Error {
  constructor(readonly node: Node) {
    super(`the tree has no stored hash for node ${node.level}/${node.index}`);
  }
}

/** Writes tiles; a stored tile is only ever replaced by a longer one (concurrent seals cannot shrink it). */
export function writeTiles(orgId: number, tiles: readonly Tile[]): Statement[] {
  return tiles.map(
    (t) =>
      sql`insert into audit_tiles (org_id, level, idx, hashes) values (${orgId}, ${t.level}, ${t.index}, ${t.hashes})
          on conflict (org_id, level, idx) do update set hashes = excluded.hashes
          where length(excluded.hashes) > length(audit_tiles.hashes)`,
  );
}

/** The sealed leaf hashes (base64) of entries lo..hi, by seq: what is left of entries retention removed. */
export async function removedLeafHashes(db: Db, orgId: number, lo: number, hi: number): Promise<Map<number, string>> {
  const tree = new TreeReader(db, orgId);
  const first = Math.floor((lo - 1) / TILE_WIDTH);
  const last = Math.floor((hi - 1) / TILE_WIDTH);
  await tree.load(Array.from({ length: last - first + 1 }, (_, i) => ({ level: 0, index: first + i })));
  const out = new Map<number, string>();
  for (let seq = lo; seq <= hi; seq++) {
    const tile = tree.tile({ level: 0, index: Math.floor((seq - 1) / TILE_WIDTH) });
    const at = (seq - 1) % TILE_WIDTH;
    if (tile && tileWidth(tile) > at) out.set(seq, toBase64(hashAt(tile, at)));
  }
  return out;
}
