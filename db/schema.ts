/**
 * The catalog's schema: sregistry-cli 0.2.39's two tables, byte for byte as SQLAlchemy created them
 * (so an existing `sregistry.db` opens, and a new one can still be opened by sregistry-cli), plus
 * numbered migrations recorded in `PRAGMA user_version`. Migrations only add: an old column is never
 * dropped or renamed, so the original tool keeps working on a migrated database.
 * @module
 */

import type { DatabaseSync } from "node:sqlite";

/**
 * The `CREATE TABLE` statements of sregistry-cli, in SQLAlchemy 1.4's layout (tab-indented, `, `
 * line ends). SQLite drops `IF NOT EXISTS` from the text it keeps in `sqlite_master`, so a fresh
 * database carries exactly the original's DDL.
 */
export const ORIGINAL_DDL: readonly string[] = [
  "CREATE TABLE IF NOT EXISTS collection (\n" +
  "\tid INTEGER NOT NULL, \n" +
  "\tname VARCHAR(150), \n" +
  "\ttoken VARCHAR(50), \n" +
  "\tcreated_at DATETIME, \n" +
  "\tPRIMARY KEY (id), \n" +
  "\tUNIQUE (name)\n" +
  ")",
  "CREATE TABLE IF NOT EXISTS container (\n" +
  "\tid INTEGER NOT NULL, \n" +
  "\tcreated_at DATETIME, \n" +
  "\tmetrics TEXT NOT NULL, \n" +
  "\tname VARCHAR(250) NOT NULL, \n" +
  "\ttag VARCHAR(250) NOT NULL, \n" +
  "\timage VARCHAR(250), \n" +
  "\turl VARCHAR(500), \n" +
  "\turi VARCHAR(500), \n" +
  "\tclient VARCHAR(50) NOT NULL, \n" +
  "\tversion VARCHAR(250), \n" +
  "\tcollection_id INTEGER NOT NULL, \n" +
  "\tPRIMARY KEY (id), \n" +
  "\tCONSTRAINT _container_uc UNIQUE (collection_id, name, tag, client, version), \n" +
  "\tFOREIGN KEY(collection_id) REFERENCES collection (id)\n" +
  ")",
];

/** One schema change. `columns` are added only when missing, so a half-applied change re-runs. */
export interface Migration {
  /** The `user_version` the database has after this migration. */
  version: number;
  /** What it does, for `--debug`. */
  description: string;
  /** Columns to add: `[table, column, type]`. */
  columns?: readonly (readonly [string, string, string])[];
  /** Further idempotent statements (`CREATE INDEX IF NOT EXISTS ...`). */
  statements?: readonly string[];
}

/** The migrations, in order. Append only; never edit one that has shipped. */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: "container.size and container.digest (sha256:<hex>) of the stored file",
    columns: [["container", "size", "INTEGER"], ["container", "digest", "TEXT"]],
  },
  {
    version: 2,
    description: "index for lookups by collection, name and tag, newest first",
    // The unique constraint's index leads with (collection_id, name, tag) too, but `get` orders by
    // created_at; this one answers "newest row for a name" without a sort.
    statements: [
      "CREATE INDEX IF NOT EXISTS ix_container_lookup ON container (collection_id, name, tag, created_at)",
    ],
  },
  {
    version: 3,
    description: "container.platform (os/arch[/variant]) of a pulled image",
    // Multi-platform pulls of one name and tag (docker://x --platform linux/arm64, then amd64) are
    // separate rows (their files, hence versions, differ); without the platform neither `images`
    // nor `get` could tell them apart. NULL means unknown (rows from sregistry-cli, local adds).
    columns: [["container", "platform", "TEXT"]],
  },
];

/** The `user_version` of a database with every migration applied. */
export const SCHEMA_VERSION: number = MIGRATIONS[MIGRATIONS.length - 1].version;

function hasColumn(db: DatabaseSync, table: string, column: string): boolean {
  const rows = db.prepare(`PRAGMA table_info(${table})`).all() as { name: string }[];
  return rows.some((r) => r.name === column);
}

/** The database's `PRAGMA user_version`. */
export function userVersion(db: DatabaseSync): number {
  const row = db.prepare("PRAGMA user_version").get() as { user_version: number };
  return Number(row.user_version);
}

/**
 * Create the original tables when missing and apply pending migrations, in one `BEGIN IMMEDIATE`
 * transaction: several processes opening a new database at once serialise here, and the one that
 * comes second sees the work done and does nothing.
 * @returns the versions applied (empty when the database was up to date).
 */
export function migrate(db: DatabaseSync, migrations: readonly Migration[] = MIGRATIONS): number[] {
  const target = migrations.length ? migrations[migrations.length - 1].version : 0;
  // Cheap check without a write lock: the common case is an up-to-date database.
  if (userVersion(db) >= target && tablesExist(db) && columnsExist(db, migrations)) return [];
  const applied: number[] = [];
  db.exec("BEGIN IMMEDIATE");
  try {
    for (const ddl of ORIGINAL_DDL) db.exec(ddl);
    const current = userVersion(db);
    for (const m of migrations) {
      // A migration already counted is re-applied when its work is missing: a table dropped and
      // re-created from the original DDL above lost the columns the migrations added.
      if (m.version <= current && migrationDone(db, m)) continue;
      for (const [table, column, type] of m.columns ?? []) {
        if (!hasColumn(db, table, column)) {
          db.exec(`ALTER TABLE ${table} ADD COLUMN ${column} ${type}`);
        }
      }
      for (const sql of m.statements ?? []) db.exec(sql);
      applied.push(m.version);
    }
    const version = Math.max(current, ...applied);
    if (version !== current) db.exec(`PRAGMA user_version = ${version}`);
    db.exec("COMMIT");
  } catch (e) {
    if (db.isTransaction) db.exec("ROLLBACK");
    throw e;
  }
  return applied;
}

/** Whether the database lacks tables, columns or indexes this version reads (read-only opens). */
export function needsMigration(
  db: DatabaseSync,
  migrations: readonly Migration[] = MIGRATIONS,
): boolean {
  return !tablesExist(db) || !columnsExist(db, migrations);
}

/** Whether a migration's columns and indexes are all there. */
function migrationDone(db: DatabaseSync, m: Migration): boolean {
  for (const [table, column] of m.columns ?? []) if (!hasColumn(db, table, column)) return false;
  for (const sql of m.statements ?? []) {
    const index = sql.match(/CREATE INDEX IF NOT EXISTS (\w+)/)?.[1];
    if (index && !indexExists(db, index)) return false;
  }
  return true;
}

function columnsExist(db: DatabaseSync, migrations: readonly Migration[]): boolean {
  return migrations.every((m) => migrationDone(db, m));
}

function indexExists(db: DatabaseSync, name: string): boolean {
  const row = db.prepare(
    "SELECT count(*) AS n FROM sqlite_master WHERE type = 'index' AND name = ?",
  )
    .get(name) as { n: number };
  return Number(row.n) > 0;
}

function tablesExist(db: DatabaseSync): boolean {
  const row = db.prepare(
    "SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name IN ('collection', 'container')",
  ).get() as { n: number };
  return Number(row.n) === 2;
}
