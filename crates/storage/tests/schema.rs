//! Schema drift between `migrations/sqlite` and `migrations/postgres`.
//!
//! Both folders are applied the way the application applies them ([`Store::migrate`]),
//! to a fresh SQLite file and to a fresh PostgreSQL database. Each schema is then read
//! back from the database's own catalog (SQLite: `sqlite_master` and the `pragma_*`
//! table functions; PostgreSQL: `pg_catalog`) and described in one vocabulary, one line
//! per object, in these categories:
//!
//! - **tables**, **views**, **triggers**: by name;
//! - **columns**: normalised type, nullability, default (see [`sqlite_type`] and
//!   [`postgres_type`]; an `INTEGER PRIMARY KEY AUTOINCREMENT` and a PostgreSQL identity
//!   column are both `integer NOT NULL IDENTITY`);
//! - **primary keys**: their columns, in order;
//! - **indexes** made by `CREATE INDEX`, by name: table, unique or not, keys (columns or
//!   expressions, with collation and direction) and the `WHERE` predicate of a partial
//!   index;
//! - **unique constraints** (`UNIQUE` in `CREATE TABLE`): by table and columns, because
//!   SQLite names their indexes `sqlite_autoindex_<table>_<n>` and forgets the name (a
//!   `UNIQUE` constraint on one side and a `CREATE UNIQUE INDEX` on the other show up
//!   in both categories);
//! - **foreign keys**: columns, referenced table and columns, `ON DELETE`, `ON UPDATE`;
//! - **check constraints**: by table and name (an unnamed SQLite check gets the name
//!   PostgreSQL would give it), with the expression.
//!
//! A failure lists, per category, the lines only SQLite has and those only PostgreSQL
//! has; a changed object shows up once on each side, with the same key first.
//!
//! Expressions (index keys, partial-index predicates, checks, defaults) are compared as
//! text, not merely for presence, after [`normalize`] undid what PostgreSQL adds when it
//! prints an expression back: casts, parentheses, quoting, case, and `= ANY (ARRAY[…])`
//! for `IN (…)`. It is no SQL parser, so write the SQLite side the way PostgreSQL prints
//! it (`a >= 1 AND a <= 5`, not `a BETWEEN 1 AND 5`, no redundant parentheses around
//! `AND` terms); a difference it cannot see through is reported with both spellings.
//! Not compared: column collations (except where an index uses them), `DEFERRABLE`,
//! and anything else SQLite keeps no catalog entry for.
//!
//! A second test checks `UNIQUE_FIELDS` (src/error.rs), the table that turns unique
//! violations into `Conflict(field)`, against both schemas: each PostgreSQL name exists,
//! each SQLite detail is what SQLite reports for the same uniqueness rule, and every
//! PostgreSQL unique constraint or index is mapped or listed in [`UNMAPPED_UNIQUES`].

#![allow(clippy::unwrap_used)]

use portcullis_storage::{Store, UNIQUE_FIELDS};
use portcullis_testkit::postgres::{TestDatabase, sqlite_url, test_database};
use sqlx::{Connection, PgConnection, Row, SqliteConnection};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// Differences between the two schemas that are known and accepted:
/// (category, side it is only in, the line as the failure message shows it, why).
/// Keep it minimal; an entry that no longer matches a difference fails the test.
const ACCEPTED_DIFFERENCES: &[(&str, Side, &str, &str)] = &[];

/// Unique constraints and indexes deliberately absent from `UNIQUE_FIELDS`: their
/// violation is not a user's input colliding with another row, so it may surface as a
/// backend error. Any other unique constraint must be mapped to a field.
const UNMAPPED_UNIQUES: &[(&str, &str)] = &[
    (
        "application_tokens_token_hash_key",
        "hash of a fresh random token: a collision is not the user's doing",
    ),
    (
        "refresh_tokens_token_hash_key",
        "hash of a fresh random token: a collision is not the user's doing",
    ),
    (
        "password_resets_token_hash_key",
        "hash of a fresh random token: a collision is not the user's doing",
    ),
    (
        "sessions_token_hash_key",
        "hash of a fresh random token: a collision is not the user's doing",
    ),
    (
        "namespaces_global_key",
        "the store creates a registry's one global namespace itself",
    ),
    (
        "registry_events_event_id_key",
        "inserted with ON CONFLICT DO NOTHING: a repeated event is skipped, not refused",
    ),
    (
        "stars_user_id_repository_id_key",
        "inserted with ON CONFLICT DO NOTHING: starring twice is starring",
    ),
    (
        "webhook_deliveries_webhook_id_uuid_key",
        "the uuid is random: a collision is not the user's doing",
    ),
    (
        "webhook_deliveries_webhook_id_event_id_key",
        "inserted with ON CONFLICT DO NOTHING: one delivery per webhook and event",
    ),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Sqlite,
    Postgres,
}

impl Side {
    fn only_in(self) -> &'static str {
        match self {
            Side::Sqlite => "only in SQLite",
            Side::Postgres => "only in PostgreSQL",
        }
    }
}

#[tokio::test]
async fn schemas_agree() {
    let (_keep, sqlite, postgres) = migrated_schemas().await;
    sanity_check(&sqlite, "SQLite");
    sanity_check(&postgres, "PostgreSQL");
    let report = differences(&sqlite, &postgres);
    assert!(
        report.is_empty(),
        "the migrated SQLite and PostgreSQL schemas differ:\n{report}"
    );
}

#[tokio::test]
async fn unique_fields_match_both_schemas() {
    let (_keep, sqlite, postgres) = migrated_schemas().await;
    let problems = unique_field_problems(&sqlite, &postgres);
    assert!(
        problems.is_empty(),
        "UNIQUE_FIELDS (src/error.rs) does not match the migrated schemas:\n  - {}",
        problems.join("\n  - ")
    );
}

#[test]
fn migration_folders_have_the_same_files() {
    let files = |backend: &str| -> BTreeSet<String> {
        std::fs::read_dir(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("migrations")
                .join(backend),
        )
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
    };
    assert!(!files("sqlite").is_empty());
    assert_eq!(files("sqlite"), files("postgres"));
}

/// What PostgreSQL prints back comes out as the SQLite text it was made from.
#[test]
fn normalization() {
    let same = [
        ("lower((username)::text)", "lower(username)"),
        ("LOWER(\"username\")", "lower(username)"),
        ("email <> ''::text", "email <> ''"),
        ("email != ''", "email <> ''"),
        ("(display_name IS NOT NULL)", "display_name IS NOT NULL"),
        ("kind = 'global'::character varying", "kind = 'global'"),
        (
            "CHECK (role = ANY (ARRAY[0::bigint, 1::bigint, 2::bigint]))",
            "CHECK (role IN (0, 1, 2))",
        ),
        (
            "(kind = ANY (ARRAY['global'::text, 'team'::text]))",
            "kind IN ('global','team')",
        ),
        (
            "state <> ALL (ARRAY['a'::text, 'b'::text])",
            "state NOT IN ('a', 'b')",
        ),
        ("'-1'::integer", "-1"),
        (
            "((kind)::text = ANY ((ARRAY['a'::character varying, 'b'::character varying])::text[]))",
            "kind IN ('a', 'b')",
        ),
        ("((a > 0) AND (b < 0))", "(a > 0) AND (b < 0)"),
        ("now() -- comment", "now( /* comment */ )"),
    ];
    for (postgres, sqlite) in same {
        assert_eq!(
            normalize(postgres),
            normalize(sqlite),
            "{postgres} / {sqlite}"
        );
    }
    assert_eq!(normalize("lower((username)::text)"), "lower(username)");
    assert_eq!(normalize("x in (1,2)"), "x IN (1, 2)");
    assert_eq!(
        normalize("(display_name IS NOT NULL)"),
        "display_name IS NOT NULL"
    );
    assert_eq!(normalize("a - 1"), "a - 1");
    assert_ne!(normalize("kind = 'Global'"), normalize("kind = 'global'"));
    assert_ne!(normalize("a < 1"), normalize("a <= 1"));
}

// ---------------------------------------------------------------------------------
// Reading the schemas
// ---------------------------------------------------------------------------------

/// One schema, described in the vocabulary both databases share.
#[derive(Debug, Default)]
struct Schema {
    tables: BTreeSet<String>,
    views: BTreeSet<String>,
    /// `table.trigger`
    triggers: BTreeSet<String>,
    /// `table.column: type [NOT] NULL [DEFAULT …|IDENTITY]`
    columns: BTreeSet<String>,
    /// `table (columns)`
    primary_keys: BTreeSet<String>,
    /// Indexes made by `CREATE INDEX` and those behind `UNIQUE` constraints.
    indexes: Vec<Index>,
    /// `table (columns) REFERENCES table (columns) ON DELETE … ON UPDATE …`
    foreign_keys: BTreeSet<String>,
    /// `table.name: CHECK (expression)`
    checks: BTreeSet<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// `CREATE [UNIQUE] INDEX`
    CreateIndex,
    /// A `UNIQUE` constraint of `CREATE TABLE` / `ALTER TABLE`.
    UniqueConstraint,
}

#[derive(Debug, Clone)]
struct Index {
    /// The index name; for a PostgreSQL unique constraint the constraint name, for a
    /// SQLite one `sqlite_autoindex_…`.
    name: String,
    table: String,
    unique: bool,
    origin: Origin,
    keys: Vec<Key>,
    /// Normalised `WHERE` clause of a partial index.
    predicate: Option<String>,
    /// What else sets the index apart: ` USING hash`, ` INCLUDE (…)`, ` EXCLUDE`.
    extra: String,
}

#[derive(Debug, Clone)]
struct Key {
    /// The column, `None` for an expression.
    column: Option<String>,
    /// Normalised column name or expression, with ` COLLATE …` and ` DESC` if set.
    text: String,
}

impl Index {
    fn keys(&self) -> String {
        self.keys
            .iter()
            .map(|k| k.text.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Everything but the name.
    fn shape(&self) -> String {
        let mut s = format!(
            "{}INDEX ON {} ({}){}",
            if self.unique { "UNIQUE " } else { "" },
            self.table,
            self.keys(),
            self.extra
        );
        if let Some(predicate) = &self.predicate {
            write!(s, " WHERE {predicate}").unwrap();
        }
        s
    }

    /// The detail SQLite gives after "UNIQUE constraint failed: " for this index.
    fn sqlite_detail(&self) -> String {
        if self.keys.iter().all(|k| k.column.is_some()) {
            self.keys
                .iter()
                .map(|k| format!("{}.{}", self.table, k.column.as_deref().unwrap_or("")))
                .collect::<Vec<_>>()
                .join(", ")
        } else {
            format!("index '{}'", self.name)
        }
    }
}

/// Keeps both databases alive while they are inspected.
#[allow(dead_code)]
struct Keep(tempfile::TempDir, TestDatabase);

async fn migrated_schemas() -> (Keep, Schema, Schema) {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path());
    Store::connect(&url).await.unwrap().migrate().await.unwrap();
    let mut conn = SqliteConnection::connect(&url).await.unwrap();
    let sqlite = read_sqlite(&mut conn).await;
    conn.close().await.unwrap();

    let db = test_database()
        .await
        .unwrap_or_else(|e| panic!("no PostgreSQL test database: {e:#}"));
    Store::connect(&db.url)
        .await
        .unwrap()
        .migrate()
        .await
        .unwrap();
    let mut conn = PgConnection::connect(&db.url).await.unwrap();
    let postgres = read_postgres(&mut conn).await;
    conn.close().await.unwrap();
    (Keep(dir, db), sqlite, postgres)
}

/// Guards against a catalog query that silently finds nothing.
fn sanity_check(schema: &Schema, which: &str) {
    assert!(schema.tables.len() >= 7, "{which}: {:?}", schema.tables);
    assert!(schema.columns.len() > 40, "{which}: {:?}", schema.columns);
    assert_eq!(
        schema.primary_keys.len(),
        schema.tables.len(),
        "{which}: {:?}",
        schema.primary_keys
    );
    for origin in [Origin::CreateIndex, Origin::UniqueConstraint] {
        assert!(
            schema.indexes.iter().any(|i| i.origin == origin),
            "{which}: no {origin:?} in {:#?}",
            schema.indexes
        );
    }
    assert!(
        schema.indexes.iter().any(|i| i.predicate.is_some()),
        "{which}: no partial index"
    );
    assert!(!schema.foreign_keys.is_empty(), "{which}: no foreign keys");
    assert!(!schema.checks.is_empty(), "{which}: no checks");
}

/// Tables of the application: neither SQLite's own nor sqlx's bookkeeping.
const SQLITE_OBJECTS: &str = "SELECT type, name, tbl_name, sql FROM sqlite_master \
     WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND tbl_name <> '_sqlx_migrations'";

async fn read_sqlite(conn: &mut SqliteConnection) -> Schema {
    let mut schema = Schema::default();
    let mut table_sql = BTreeMap::new();
    let mut index_sql = BTreeMap::new();
    for row in sqlx::query(SQLITE_OBJECTS)
        .fetch_all(&mut *conn)
        .await
        .unwrap()
    {
        let kind: String = row.get("type");
        let name: String = row.get("name");
        let table: String = row.get("tbl_name");
        let sql: Option<String> = row.get("sql");
        match kind.as_str() {
            "table" => {
                schema.tables.insert(name.clone());
                table_sql.insert(name, sql.unwrap_or_default());
            }
            "view" => {
                schema.views.insert(name);
            }
            "trigger" => {
                schema.triggers.insert(format!("{table}.{name}"));
            }
            "index" => {
                index_sql.insert(name, sql.unwrap_or_default());
            }
            _ => panic!("unexpected {kind} {name} in sqlite_master"),
        }
    }

    // Columns and primary keys.
    let rows = sqlx::query(
        "SELECT m.name AS tbl, p.name AS col, p.type AS ty, p.\"notnull\" AS nn, \
                p.dflt_value AS dflt, p.pk AS pk, p.hidden AS hidden \
         FROM sqlite_master m, pragma_table_xinfo(m.name) p \
         WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\' \
           AND m.name <> '_sqlx_migrations' \
         ORDER BY m.name, p.cid",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    let mut table_columns: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut primary_keys: BTreeMap<String, BTreeMap<i64, (String, String)>> = BTreeMap::new();
    for row in &rows {
        let table: String = row.get("tbl");
        let column: String = row.get("col");
        table_columns
            .entry(table.clone())
            .or_default()
            .push(column.clone());
        let pk: i64 = row.get("pk");
        if pk > 0 {
            let ty: String = row.get("ty");
            primary_keys
                .entry(table)
                .or_default()
                .insert(pk, (column, ty));
        }
    }
    for row in &rows {
        let table: String = row.get("tbl");
        let column: String = row.get("col");
        let declared: String = row.get("ty");
        let mut not_null = row.get::<i64, _>("nn") != 0;
        let sql = tokenize(&table_sql[&table]);
        let without_rowid = sql
            .windows(2)
            .any(|w| w == [word("without"), word("rowid")]);
        let pk = primary_keys.get(&table).cloned().unwrap_or_default();
        let in_pk = pk.values().any(|(c, _)| *c == column);
        // Only `INTEGER PRIMARY KEY` (exactly that type, the only key column) makes the
        // column the rowid: never NULL, and numbered by SQLite. Other key columns may
        // hold NULL in SQLite unless declared NOT NULL (or WITHOUT ROWID).
        let rowid =
            !without_rowid && pk.len() == 1 && in_pk && declared.eq_ignore_ascii_case("INTEGER");
        if rowid || (in_pk && without_rowid) {
            not_null = true;
        }
        let ty = sqlite_type(&declared);
        let default = if rowid {
            // AUTOINCREMENT never hands out an id again, like a PostgreSQL identity;
            // a plain rowid reuses the id of the last row once it is deleted.
            Some(if sql.contains(&word("autoincrement")) {
                "IDENTITY".to_owned()
            } else {
                "ROWID (ids of deleted rows are reused)".to_owned()
            })
        } else {
            match row.get::<i64, _>("hidden") {
                2 | 3 => Some("GENERATED".to_owned()),
                _ => row
                    .get::<Option<String>, _>("dflt")
                    .map(|d| format!("DEFAULT {}", normalize_default(&d, &ty))),
            }
        };
        schema
            .columns
            .insert(column_line(&table, &column, &ty, not_null, default));
    }
    for (table, pk) in &primary_keys {
        let columns: Vec<&str> = pk.values().map(|(c, _)| c.as_str()).collect();
        schema
            .primary_keys
            .insert(format!("{table} ({})", columns.join(", ")));
    }

    // Indexes: pragma_index_list says what each is, pragma_index_xinfo its keys (an
    // expression key is cid -2, its text is only in the CREATE INDEX statement).
    let rows = sqlx::query(
        "SELECT m.name AS tbl, l.name AS idx, l.\"unique\" AS uniq, l.origin AS origin, \
                l.partial AS partial \
         FROM sqlite_master m, pragma_index_list(m.name) l \
         WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\' \
           AND m.name <> '_sqlx_migrations' \
         ORDER BY l.name",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    let key_rows = sqlx::query(
        "SELECT l.name AS idx, x.cid AS cid, x.name AS col, x.\"desc\" AS descending, \
                x.coll AS coll \
         FROM sqlite_master m, pragma_index_list(m.name) l, pragma_index_xinfo(l.name) x \
         WHERE m.type = 'table' AND x.key = 1 \
         ORDER BY l.name, x.seqno",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    for row in rows {
        let name: String = row.get("idx");
        let origin = match row.get::<String, _>("origin").as_str() {
            "c" => Origin::CreateIndex,
            "u" => Origin::UniqueConstraint,
            // The index behind a PRIMARY KEY that is not the rowid: a primary key.
            "pk" => continue,
            other => panic!("index {name}: unknown origin {other}"),
        };
        let (terms, predicate) = match index_sql.get(&name) {
            Some(sql) => parse_create_index(sql),
            None => (Vec::new(), None),
        };
        assert_eq!(
            row.get::<i64, _>("partial") != 0,
            predicate.is_some(),
            "{name}: {terms:?} {predicate:?}"
        );
        let mut keys = Vec::new();
        for (position, key) in key_rows
            .iter()
            .filter(|k| k.get::<String, _>("idx") == name)
            .enumerate()
        {
            let column: Option<String> = key.get("col");
            let mut text = match (&column, key.get::<i64, _>("cid")) {
                (Some(column), _) => normalize(column),
                (None, -2) => normalize(&render(terms.get(position).unwrap_or_else(|| {
                    panic!("{name}: no key expression {position} in {terms:?}")
                }))),
                (None, cid) => panic!("{name}: key {position} has cid {cid} and no name"),
            };
            let collation: String = key.get("coll");
            if !collation.eq_ignore_ascii_case("BINARY") {
                write!(text, " COLLATE {}", collation.to_lowercase()).unwrap();
            }
            if key.get::<i64, _>("descending") != 0 {
                text.push_str(" DESC");
            }
            keys.push(Key { column, text });
        }
        schema.indexes.push(Index {
            name,
            table: row.get("tbl"),
            unique: row.get::<i64, _>("uniq") != 0,
            origin,
            keys,
            predicate: predicate.map(|p| normalize(&render(&p))),
            extra: String::new(),
        });
    }

    // Foreign keys: one row per column; `to` is NULL when the parent's primary key is
    // meant.
    let rows = sqlx::query(
        "SELECT m.name AS tbl, f.id AS id, f.\"table\" AS parent, f.\"from\" AS col, \
                f.\"to\" AS parent_col, f.on_delete AS on_delete, f.on_update AS on_update \
         FROM sqlite_master m, pragma_foreign_key_list(m.name) f \
         WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\' \
           AND m.name <> '_sqlx_migrations' \
         ORDER BY m.name, f.id, f.seq",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    let mut foreign_keys: BTreeMap<(String, i64), ForeignKey> = BTreeMap::new();
    for row in rows {
        let table: String = row.get("tbl");
        let parent: String = row.get("parent");
        let fk = foreign_keys
            .entry((table.clone(), row.get("id")))
            .or_insert_with(|| ForeignKey {
                table,
                parent: parent.clone(),
                on_delete: row.get("on_delete"),
                on_update: row.get("on_update"),
                ..ForeignKey::default()
            });
        fk.columns.push(row.get("col"));
        let parent_column = row
            .get::<Option<String>, _>("parent_col")
            .unwrap_or_else(|| {
                let pk = primary_keys.get(&parent).map(|pk| pk.len()).unwrap_or(0);
                assert_eq!(pk, 1, "{parent}: a key without columns needs a 1-column PK");
                primary_keys[&parent][&1].0.clone()
            });
        fk.parent_columns.push(parent_column);
    }
    schema
        .foreign_keys
        .extend(foreign_keys.values().map(ForeignKey::line));

    // CHECK constraints exist only in the CREATE TABLE text.
    for (table, sql) in &table_sql {
        for (name, expression) in sqlite_checks(table, &table_columns[table], sql) {
            schema.checks.insert(format!(
                "{table}.{name}: CHECK ({})",
                normalize(&render(&expression))
            ));
        }
    }
    schema
}

#[derive(Debug, Default)]
struct ForeignKey {
    table: String,
    columns: Vec<String>,
    parent: String,
    parent_columns: Vec<String>,
    on_delete: String,
    on_update: String,
}

impl ForeignKey {
    fn line(&self) -> String {
        format!(
            "{} ({}) REFERENCES {} ({}) ON DELETE {} ON UPDATE {}",
            self.table,
            self.columns.join(", "),
            self.parent,
            self.parent_columns.join(", "),
            self.on_delete,
            self.on_update
        )
    }
}

fn column_line(
    table: &str,
    column: &str,
    ty: &str,
    not_null: bool,
    default: Option<String>,
) -> String {
    let mut line = format!(
        "{table}.{column}: {ty} {}",
        if not_null { "NOT NULL" } else { "NULL" }
    );
    if let Some(default) = default {
        write!(line, " {default}").unwrap();
    }
    line
}

/// Every check of a SQLite `CREATE TABLE`, column or table constraint, with its name:
/// the one given, else the one PostgreSQL would choose (`<table>_<column>_check` when
/// the expression uses exactly one column, else `<table>_check`).
fn sqlite_checks(table: &str, columns: &[String], sql: &str) -> Vec<(String, Vec<Tok>)> {
    let tokens = tokenize(sql);
    let Some(open) = tokens.iter().position(|t| *t == sym("(")) else {
        return Vec::new();
    };
    let close = matching(&tokens, open);
    let mut checks = Vec::new();
    for item in split_top_level(&tokens[open + 1..close]) {
        let mut i = 0;
        while i < item.len() {
            if item[i] == word("check") && item.get(i + 1) == Some(&sym("(")) {
                let end = matching(item, i + 1);
                let expression = item[i + 2..end].to_vec();
                let name = match i.checked_sub(2).map(|j| &item[j..i]) {
                    Some([c, Tok::Word(name)]) if *c == word("constraint") => name.clone(),
                    _ => {
                        let used: BTreeSet<&String> = expression
                            .iter()
                            .filter_map(|t| match t {
                                Tok::Word(w) if columns.contains(w) => Some(w),
                                _ => None,
                            })
                            .collect();
                        match used.iter().next() {
                            Some(column) if used.len() == 1 => format!("{table}_{column}_check"),
                            _ => format!("{table}_check"),
                        }
                    }
                };
                checks.push((name, expression));
                i = end + 1;
            } else {
                i += 1;
            }
        }
    }
    checks
}

/// The key terms (`COLLATE` and `ASC`/`DESC` removed: pragma_index_xinfo has those)
/// and the `WHERE` clause of `CREATE [UNIQUE] INDEX … ON table (…) [WHERE …]`.
fn parse_create_index(sql: &str) -> (Vec<Vec<Tok>>, Option<Vec<Tok>>) {
    let tokens = tokenize(sql);
    let on = tokens
        .iter()
        .position(|t| *t == word("on"))
        .unwrap_or_else(|| panic!("no ON in {sql}"));
    let open = on
        + tokens[on..]
            .iter()
            .position(|t| *t == sym("("))
            .unwrap_or_else(|| panic!("no key list in {sql}"));
    let close = matching(&tokens, open);
    let terms = split_top_level(&tokens[open + 1..close])
        .into_iter()
        .map(|term| {
            let mut term = term.to_vec();
            if matches!(term.last(), Some(Tok::Word(w)) if w == "asc" || w == "desc") {
                term.pop();
            }
            if term.len() > 2 && term[term.len() - 2] == word("collate") {
                term.truncate(term.len() - 2);
            }
            term
        })
        .collect();
    let predicate =
        (tokens.get(close + 1) == Some(&word("where"))).then(|| tokens[close + 2..].to_vec());
    (terms, predicate)
}

/// The application's tables, views and their columns are in `current_schema()`.
const PG_SCHEMA: &str = "(SELECT oid FROM pg_namespace WHERE nspname = current_schema())";

async fn read_postgres(conn: &mut PgConnection) -> Schema {
    let mut schema = Schema::default();
    let query = |sql: String| sqlx::query(sqlx::AssertSqlSafe(sql));

    for row in query(format!(
        "SELECT relname::text AS name, relkind::text AS kind FROM pg_class \
         WHERE relnamespace = {PG_SCHEMA} AND relkind IN ('r', 'p', 'v', 'm') \
           AND relname <> '_sqlx_migrations'"
    ))
    .fetch_all(&mut *conn)
    .await
    .unwrap()
    {
        let name: String = row.get("name");
        match row.get::<String, _>("kind").as_str() {
            "r" | "p" => schema.tables.insert(name),
            _ => schema.views.insert(name),
        };
    }

    for row in query(format!(
        "SELECT c.relname::text AS tbl, a.attname::text AS col, \
                format_type(a.atttypid, a.atttypmod) AS ty, a.attnotnull AS nn, \
                a.attidentity::text AS ident, a.attgenerated::text AS generated, \
                pg_get_expr(d.adbin, d.adrelid, true) AS dflt \
         FROM pg_attribute a \
         JOIN pg_class c ON c.oid = a.attrelid \
         LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
         WHERE c.relnamespace = {PG_SCHEMA} AND c.relkind IN ('r', 'p') \
           AND c.relname <> '_sqlx_migrations' AND a.attnum > 0 AND NOT a.attisdropped"
    ))
    .fetch_all(&mut *conn)
    .await
    .unwrap()
    {
        let table: String = row.get("tbl");
        let column: String = row.get("col");
        let ty = postgres_type(&row.get::<String, _>("ty"));
        let default: Option<String> = row.get("dflt");
        let default = match (
            row.get::<String, _>("ident").as_str(),
            row.get::<String, _>("generated").as_str(),
        ) {
            // BY DEFAULT, like SQLite, still takes an explicit id.
            ("d", _) => Some("IDENTITY".to_owned()),
            ("a", _) => Some("IDENTITY ALWAYS".to_owned()),
            (_, "s" | "v") => Some("GENERATED".to_owned()),
            // `serial`: numbered by a sequence, which never hands out a value again.
            _ if default
                .as_deref()
                .is_some_and(|d| d.starts_with("nextval(")) =>
            {
                Some("IDENTITY".to_owned())
            }
            _ => default.map(|d| format!("DEFAULT {}", normalize_default(&d, &ty))),
        };
        schema
            .columns
            .insert(column_line(&table, &column, &ty, row.get("nn"), default));
    }

    // Indexes, with the constraint behind them if any (FOREIGN KEY constraints point
    // at the referenced index, hence the contype filter). Key k (1-based) is column
    // indkey[k-1] (0 for an expression); the vectors are 0-based.
    for row in query(format!(
        "SELECT COALESCE(con.conname, ic.relname)::text AS name, t.relname::text AS tbl, \
                i.indisunique AS uniq, COALESCE(con.contype::text, '') AS contype, \
                am.amname::text AS method, i.indnatts > i.indnkeyatts AS has_include, \
                pg_get_expr(i.indpred, i.indrelid, true) AS pred, \
                ARRAY(SELECT pg_get_indexdef(i.indexrelid, k, true) \
                      FROM generate_series(1, i.indnkeyatts) k ORDER BY k) AS keys, \
                ARRAY(SELECT i.indkey[k - 1] = 0 \
                      FROM generate_series(1, i.indnkeyatts) k ORDER BY k) AS exprs, \
                ARRAY(SELECT (i.indoption[k - 1] & 1) = 1 \
                      FROM generate_series(1, i.indnkeyatts) k ORDER BY k) AS descs, \
                ARRAY(SELECT COALESCE((SELECT co.collname::text FROM pg_collation co \
                                       WHERE co.oid = i.indcollation[k - 1] \
                                         AND co.collname <> 'default'), '') \
                      FROM generate_series(1, i.indnkeyatts) k ORDER BY k) AS colls \
         FROM pg_index i \
         JOIN pg_class ic ON ic.oid = i.indexrelid \
         JOIN pg_class t ON t.oid = i.indrelid \
         JOIN pg_am am ON am.oid = ic.relam \
         LEFT JOIN pg_constraint con \
           ON con.conindid = i.indexrelid AND con.contype IN ('p', 'u', 'x') \
         WHERE t.relnamespace = {PG_SCHEMA} AND t.relname <> '_sqlx_migrations'"
    ))
    .fetch_all(&mut *conn)
    .await
    .unwrap()
    {
        let name: String = row.get("name");
        let table: String = row.get("tbl");
        let texts: Vec<String> = row.get("keys");
        let exprs: Vec<bool> = row.get("exprs");
        let descs: Vec<bool> = row.get("descs");
        let colls: Vec<String> = row.get("colls");
        let keys: Vec<Key> = (0..texts.len())
            .map(|k| {
                let mut text = normalize(&texts[k]);
                let column = (!exprs[k]).then(|| text.clone());
                if !colls[k].is_empty() {
                    write!(text, " COLLATE {}", colls[k].to_lowercase()).unwrap();
                }
                if descs[k] {
                    text.push_str(" DESC");
                }
                Key { column, text }
            })
            .collect();
        let contype: String = row.get("contype");
        if contype == "p" {
            let columns: Vec<&str> = keys.iter().map(|k| k.text.as_str()).collect();
            schema
                .primary_keys
                .insert(format!("{table} ({})", columns.join(", ")));
            continue;
        }
        let mut extra = String::new();
        let method: String = row.get("method");
        if method != "btree" {
            write!(extra, " USING {method}").unwrap();
        }
        if row.get::<bool, _>("has_include") {
            extra.push_str(" INCLUDE (…)");
        }
        if contype == "x" {
            extra.push_str(" EXCLUDE");
        }
        schema.indexes.push(Index {
            name,
            table,
            unique: row.get("uniq"),
            origin: if contype == "u" {
                Origin::UniqueConstraint
            } else {
                Origin::CreateIndex
            },
            keys,
            predicate: row.get::<Option<String>, _>("pred").map(|p| normalize(&p)),
            extra,
        });
    }
    schema.indexes.sort_by(|a, b| a.name.cmp(&b.name));

    let action = |code: &str| match code {
        "a" => "NO ACTION",
        "r" => "RESTRICT",
        "c" => "CASCADE",
        "n" => "SET NULL",
        "d" => "SET DEFAULT",
        other => panic!("unknown foreign key action {other}"),
    };
    for row in query(format!(
        "SELECT t.relname::text AS tbl, p.relname::text AS parent, \
                con.confdeltype::text AS on_delete, con.confupdtype::text AS on_update, \
                ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY u(n, o) \
                      JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = u.n \
                      ORDER BY u.o) AS cols, \
                ARRAY(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY u(n, o) \
                      JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = u.n \
                      ORDER BY u.o) AS parent_cols \
         FROM pg_constraint con \
         JOIN pg_class t ON t.oid = con.conrelid \
         JOIN pg_class p ON p.oid = con.confrelid \
         WHERE con.contype = 'f' AND t.relnamespace = {PG_SCHEMA}"
    ))
    .fetch_all(&mut *conn)
    .await
    .unwrap()
    {
        let fk = ForeignKey {
            table: row.get("tbl"),
            columns: row.get("cols"),
            parent: row.get("parent"),
            parent_columns: row.get("parent_cols"),
            on_delete: action(&row.get::<String, _>("on_delete")).to_owned(),
            on_update: action(&row.get::<String, _>("on_update")).to_owned(),
        };
        schema.foreign_keys.insert(fk.line());
    }

    for row in query(format!(
        "SELECT t.relname::text AS tbl, con.conname::text AS name, \
                pg_get_constraintdef(con.oid, true) AS def \
         FROM pg_constraint con JOIN pg_class t ON t.oid = con.conrelid \
         WHERE con.contype = 'c' AND t.relnamespace = {PG_SCHEMA}"
    ))
    .fetch_all(&mut *conn)
    .await
    .unwrap()
    {
        let table: String = row.get("tbl");
        let name: String = row.get("name");
        let definition: String = row.get("def");
        let expression = definition
            .trim_end_matches(" NOT VALID")
            .strip_prefix("CHECK ")
            .unwrap_or_else(|| panic!("{table}.{name}: {definition}"));
        schema
            .checks
            .insert(format!("{table}.{name}: CHECK ({})", normalize(expression)));
    }

    for row in query(format!(
        "SELECT t.relname::text AS tbl, tg.tgname::text AS name \
         FROM pg_trigger tg JOIN pg_class t ON t.oid = tg.tgrelid \
         WHERE NOT tg.tgisinternal AND t.relnamespace = {PG_SCHEMA}"
    ))
    .fetch_all(&mut *conn)
    .await
    .unwrap()
    {
        let table: String = row.get("tbl");
        let name: String = row.get("name");
        schema.triggers.insert(format!("{table}.{name}"));
    }
    schema
}

// ---------------------------------------------------------------------------------
// Types and defaults
// ---------------------------------------------------------------------------------

/// The shared name of a SQLite declared type. SQLite stores every integer in up to 64
/// bits, whatever its declared name, so `INTEGER` and `BIGINT` are both `integer`, the
/// counterpart of PostgreSQL's `bigint`; lengths (`VARCHAR(64)`) are not enforced and
/// dropped. A type without a mapping keeps its name, marked, and so never matches.
fn sqlite_type(declared: &str) -> String {
    let base = declared
        .split('(')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_uppercase();
    match base.as_str() {
        "INTEGER" | "INT" | "BIGINT" | "INT8" | "SMALLINT" | "TINYINT" | "MEDIUMINT" => "integer",
        "TEXT" | "VARCHAR" | "CHARACTER VARYING" | "CHAR" | "CHARACTER" | "CLOB" => "text",
        "BOOLEAN" | "BOOL" => "boolean",
        "REAL" | "DOUBLE" | "DOUBLE PRECISION" | "FLOAT" => "real",
        "BLOB" | "BYTEA" => "blob",
        "NUMERIC" | "DECIMAL" => "numeric",
        _ => return format!("unmapped SQLite type {declared:?}"),
    }
    .to_owned()
}

/// The shared name of a PostgreSQL type (as `format_type` prints it). Only `bigint`
/// is `integer`: the store decodes integers as `i64`, which sqlx refuses to read from
/// an `integer` (int4) or `smallint` column, so those stay apart and show as a drift.
/// Likewise a length limit, which only PostgreSQL would enforce.
fn postgres_type(formatted: &str) -> String {
    match formatted {
        "bigint" => "integer",
        "text" | "character varying" => "text",
        "boolean" => "boolean",
        "double precision" => "real",
        "bytea" => "blob",
        "numeric" => "numeric",
        other if other.starts_with("numeric(") => "numeric",
        "integer" => "int4 (32-bit integer)",
        "smallint" => "int2 (16-bit integer)",
        "real" => "float4 (32-bit float)",
        other if other.starts_with("character varying(") => {
            return format!("text limited to a length, which only PostgreSQL enforces: {other}");
        }
        other => return format!("unmapped PostgreSQL type {other:?}"),
    }
    .to_owned()
}

/// A default as both databases would spell it; for booleans, SQLite's `0`/`1`
/// are `false`/`true`.
fn normalize_default(default: &str, ty: &str) -> String {
    let normalized = normalize(default);
    match (ty, normalized.as_str()) {
        ("boolean", "0" | "'0'" | "'f'" | "'false'") => "false".to_owned(),
        ("boolean", "1" | "'1'" | "'t'" | "'true'") => "true".to_owned(),
        _ => normalized,
    }
}

// ---------------------------------------------------------------------------------
// Comparing
// ---------------------------------------------------------------------------------

impl Schema {
    /// Every category as its set of lines.
    fn categories(&self) -> Vec<(&'static str, BTreeSet<String>)> {
        let indexes = |origin: Origin| -> BTreeSet<String> {
            self.indexes
                .iter()
                .filter(|i| i.origin == origin)
                .map(|i| match origin {
                    Origin::CreateIndex => format!("{}: {}", i.name, i.shape()),
                    // By table and columns: SQLite has no name for it.
                    Origin::UniqueConstraint => {
                        format!("{} UNIQUE ({}){}", i.table, i.keys(), i.extra)
                    }
                })
                .collect()
        };
        vec![
            ("tables", self.tables.clone()),
            ("views", self.views.clone()),
            ("triggers", self.triggers.clone()),
            ("columns", self.columns.clone()),
            ("primary keys", self.primary_keys.clone()),
            ("indexes", indexes(Origin::CreateIndex)),
            ("unique constraints", indexes(Origin::UniqueConstraint)),
            ("foreign keys", self.foreign_keys.clone()),
            ("check constraints", self.checks.clone()),
        ]
    }
}

/// The report of every difference not in [`ACCEPTED_DIFFERENCES`], and of every
/// accepted one that no longer occurs; empty when the schemas agree.
fn differences(sqlite: &Schema, postgres: &Schema) -> String {
    let mut report = String::new();
    let mut accepted_seen = BTreeSet::new();
    for ((category, in_sqlite), (_, in_postgres)) in
        sqlite.categories().into_iter().zip(postgres.categories())
    {
        let mut section = String::new();
        for (side, mine, theirs) in [
            (Side::Sqlite, &in_sqlite, &in_postgres),
            (Side::Postgres, &in_postgres, &in_sqlite),
        ] {
            let only: Vec<&String> = mine
                .difference(theirs)
                .filter(|line| {
                    let accepted = ACCEPTED_DIFFERENCES.iter().position(|(c, s, l, _)| {
                        *c == category && *s == side && *l == line.as_str()
                    });
                    accepted_seen.extend(accepted);
                    accepted.is_none()
                })
                .collect();
            if !only.is_empty() {
                writeln!(section, "  {}:", side.only_in()).unwrap();
                for line in only {
                    writeln!(section, "    {line}").unwrap();
                }
            }
        }
        if !section.is_empty() {
            write!(report, "{category}:\n{section}").unwrap();
        }
    }
    for (i, (category, side, line, why)) in ACCEPTED_DIFFERENCES.iter().enumerate() {
        if !accepted_seen.contains(&i) {
            writeln!(
                report,
                "accepted difference no longer found, remove it from ACCEPTED_DIFFERENCES: \
                 {category}, {}: {line} ({why})",
                side.only_in()
            )
            .unwrap();
        }
    }
    report
}

/// What is wrong with `UNIQUE_FIELDS`: every entry must name a unique constraint or
/// index on PostgreSQL, and give the detail SQLite reports for the same uniqueness
/// rule; every PostgreSQL unique constraint or index must be mapped or be in
/// [`UNMAPPED_UNIQUES`].
fn unique_field_problems(sqlite: &Schema, postgres: &Schema) -> Vec<String> {
    let mut problems = Vec::new();
    let mut pg_names = BTreeSet::new();
    let mut details = BTreeSet::new();
    for &(pg_name, detail, field) in UNIQUE_FIELDS {
        let entry = format!("({pg_name:?}, {detail:?}, {field:?})");
        if !pg_names.insert(pg_name) {
            problems.push(format!("{entry}: {pg_name} is listed twice"));
        }
        if !details.insert(detail) {
            problems.push(format!("{entry}: {detail:?} is listed twice"));
        }
        let Some(on_postgres) = postgres
            .indexes
            .iter()
            .find(|i| i.unique && i.name == pg_name)
        else {
            problems.push(format!(
                "{entry}: PostgreSQL has no unique constraint or unique index {pg_name}"
            ));
            continue;
        };
        match sqlite_unique_for_detail(sqlite, detail) {
            Err(why) => problems.push(format!("{entry}: on SQLite, {why}")),
            Ok(on_sqlite) => {
                if on_sqlite.shape() != on_postgres.shape() {
                    problems.push(format!(
                        "{entry}: SQLite reports {detail:?} for {} `{}`, but PostgreSQL's \
                         {pg_name} is `{}`",
                        on_sqlite.name,
                        on_sqlite.shape(),
                        on_postgres.shape()
                    ));
                }
            }
        }
    }
    for (name, _) in UNMAPPED_UNIQUES {
        if pg_names.contains(name) {
            problems.push(format!("{name} is in UNMAPPED_UNIQUES and UNIQUE_FIELDS"));
        }
        if !postgres.indexes.iter().any(|i| i.unique && i.name == *name) {
            problems.push(format!(
                "{name} is in UNMAPPED_UNIQUES (tests/schema.rs) but PostgreSQL has no such \
                 unique constraint or index"
            ));
        }
    }
    for index in postgres.indexes.iter().filter(|i| i.unique) {
        let name = index.name.as_str();
        if !pg_names.contains(name) && !UNMAPPED_UNIQUES.iter().any(|(n, _)| *n == name) {
            let detail = sqlite
                .indexes
                .iter()
                .find(|i| i.unique && i.shape() == index.shape())
                .map_or_else(|| "?".to_owned(), Index::sqlite_detail);
            problems.push(format!(
                "{name} (`{}`) is in neither UNIQUE_FIELDS nor UNMAPPED_UNIQUES: its \
                 violation would be a backend error, not a conflict naming the field; \
                 add (\"{name}\", {detail:?}, \"<field>\") to UNIQUE_FIELDS",
                index.shape()
            ));
        }
    }
    problems
}

/// The one SQLite unique index that makes SQLite report `detail`: `index 'name'` for
/// an index with an expression key, else `table.column, …` for the unique index (or
/// UNIQUE constraint) over exactly those columns.
fn sqlite_unique_for_detail<'s>(sqlite: &'s Schema, detail: &str) -> Result<&'s Index, String> {
    if let Some(name) = detail
        .strip_prefix("index '")
        .and_then(|rest| rest.strip_suffix('\''))
    {
        let index = sqlite
            .indexes
            .iter()
            .find(|i| i.name == name)
            .ok_or_else(|| format!("there is no index {name}"))?;
        if !index.unique {
            return Err(format!("index {name} is not unique"));
        }
        if index.keys.iter().all(|k| k.column.is_some()) {
            return Err(format!(
                "index {name} has no expression key, so SQLite reports {:?}",
                index.sqlite_detail()
            ));
        }
        return Ok(index);
    }
    let mut table = None;
    let mut columns = Vec::new();
    for part in detail.split(", ") {
        let (t, c) = part
            .split_once('.')
            .ok_or_else(|| format!("{part:?} is not table.column"))?;
        if *table.get_or_insert(t) != t {
            return Err(format!("{detail:?} names more than one table"));
        }
        columns.push(c);
    }
    let table = table.unwrap_or_default();
    let candidates: Vec<&Index> = sqlite
        .indexes
        .iter()
        .filter(|i| {
            i.unique
                && i.table == table
                && i.keys
                    .iter()
                    .map(|k| k.column.as_deref())
                    .eq(columns.iter().map(|c| Some(*c)))
        })
        .collect();
    match candidates.as_slice() {
        [] => Err(format!(
            "no unique index or UNIQUE constraint is on exactly {table} ({})",
            columns.join(", ")
        )),
        [one] => Ok(one),
        more => Err(format!(
            "{} unique indexes give that detail, so it cannot tell them apart: {}",
            more.len(),
            more.iter()
                .map(|i| i.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

// ---------------------------------------------------------------------------------
// Expressions
// ---------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    /// A keyword or identifier: lower case, quotes removed.
    Word(String),
    /// A string literal, quotes included.
    Str(String),
    Num(String),
    Sym(String),
}

fn word(w: &str) -> Tok {
    Tok::Word(w.to_owned())
}

fn sym(s: &str) -> Tok {
    Tok::Sym(s.to_owned())
}

impl Tok {
    fn text(&self) -> &str {
        match self {
            Tok::Word(s) | Tok::Str(s) | Tok::Num(s) | Tok::Sym(s) => s,
        }
    }
}

/// SQL text as tokens; comments are dropped, `!=` is `<>`. (`[` is a symbol, as in
/// PostgreSQL's `ARRAY[…]`, not SQLite's `[identifier]` quoting, which the migrations
/// do not use.)
fn tokenize(sql: &str) -> Vec<Tok> {
    let s: Vec<char> = sql.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    let text = |from: usize, to: usize| -> String { s[from..to.min(s.len())].iter().collect() };
    while i < s.len() {
        let c = s[i];
        let next = s.get(i + 1).copied();
        if c.is_whitespace() {
            i += 1;
        } else if c == '-' && next == Some('-') {
            while i < s.len() && s[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            i += 2;
            while i < s.len() && !(s[i] == '*' && s.get(i + 1) == Some(&'/')) {
                i += 1;
            }
            i += 2;
        } else if c == '\'' {
            let start = i;
            i += 1;
            while i < s.len() {
                if s[i] == '\'' && s.get(i + 1) == Some(&'\'') {
                    i += 2;
                } else if s[i] == '\'' {
                    i += 1;
                    break;
                } else {
                    i += 1;
                }
            }
            tokens.push(Tok::Str(text(start, i)));
        } else if c == '"' || c == '`' {
            let start = i + 1;
            i = start;
            while i < s.len() && s[i] != c {
                i += 1;
            }
            tokens.push(Tok::Word(text(start, i).to_lowercase()));
            i += 1;
        } else if c.is_ascii_digit() || (c == '.' && next.is_some_and(|n| n.is_ascii_digit())) {
            let start = i;
            while i < s.len() && (s[i].is_ascii_alphanumeric() || s[i] == '.') {
                i += 1;
            }
            tokens.push(Tok::Num(text(start, i)));
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < s.len() && (s[i].is_alphanumeric() || s[i] == '_' || s[i] == '$') {
                i += 1;
            }
            tokens.push(Tok::Word(text(start, i).to_lowercase()));
        } else {
            let two = text(i, i + 2);
            let (symbol, len) = match two.as_str() {
                "::" | "<>" | "<=" | ">=" | "||" => (two.clone(), 2),
                "!=" => ("<>".to_owned(), 2),
                "==" => ("=".to_owned(), 2),
                _ => (c.to_string(), 1),
            };
            tokens.push(Tok::Sym(symbol));
            i += len;
        }
    }
    tokens
}

/// Keywords after which `(` opens a group, not an argument list, and after which `-`
/// is a sign.
const OPERATOR_WORDS: &[&str] = &[
    "and", "or", "not", "is", "when", "then", "else", "case", "where", "check", "default", "like",
    "between", "select",
];

/// Words that continue a type name after `::`, as in `::character varying`.
const TYPE_WORDS: &[&str] = &["varying", "precision", "with", "without", "time", "zone"];

const NUMERIC_TYPES: &[&str] = &[
    "bigint", "integer", "smallint", "int8", "int4", "int2", "numeric", "real", "double",
];

/// `expression` in a canonical spelling: tokens separated by single spaces (none inside
/// parentheses and before commas, none between a function and its arguments), words
/// lower case but for a few keywords, casts dropped, `= ANY (ARRAY[…])` as `IN (…)`,
/// redundant parentheses removed.
fn normalize(expression: &str) -> String {
    let drop_parens = |mut tokens: Vec<Tok>| {
        while let Some(fewer) = drop_one_paren_pair(&tokens) {
            tokens = fewer;
        }
        tokens
    };
    // Parentheses go before and after the rewrite: PostgreSQL may print
    // `= ANY ((ARRAY[…])::text[])`.
    let tokens = drop_parens(drop_casts(tokenize(expression)));
    render(&drop_parens(fold_signs(any_array_as_in(tokens))))
}

fn drop_casts(tokens: Vec<Tok>) -> Vec<Tok> {
    let mut out: Vec<Tok> = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        if tokens[i] != sym("::") {
            out.push(tokens[i].clone());
            i += 1;
            continue;
        }
        i += 1;
        let ty = match tokens.get(i) {
            Some(Tok::Word(w)) => {
                i += 1;
                w.clone()
            }
            _ => String::new(),
        };
        while matches!(tokens.get(i), Some(Tok::Word(w)) if TYPE_WORDS.contains(&w.as_str())) {
            i += 1;
        }
        if tokens.get(i) == Some(&sym("(")) {
            i = matching(&tokens, i) + 1;
        }
        if tokens.get(i) == Some(&sym("[")) && tokens.get(i + 1) == Some(&sym("]")) {
            i += 2;
        }
        // PostgreSQL prints a negative number as '-1'::integer.
        if NUMERIC_TYPES.contains(&ty.as_str())
            && let Some(Tok::Str(literal)) = out.last()
        {
            let inner = &literal[1..literal.len() - 1];
            if inner.parse::<f64>().is_ok() {
                let number = Tok::Num(inner.to_owned());
                out.pop();
                out.push(number);
            }
        }
    }
    out
}

/// `x = ANY (ARRAY[a, b])` → `x IN (a, b)`, `x <> ALL (ARRAY[a, b])` → `x NOT IN (a, b)`.
fn any_array_as_in(tokens: Vec<Tok>) -> Vec<Tok> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let head = |op: &str, quantifier: &str| {
            tokens.get(i..i + 5)
                == Some(&[sym(op), word(quantifier), sym("("), word("array"), sym("[")][..])
        };
        let replacement = if head("=", "any") {
            vec![word("in")]
        } else if head("<>", "all") {
            vec![word("not"), word("in")]
        } else {
            out.push(tokens[i].clone());
            i += 1;
            continue;
        };
        let close_bracket = matching(&tokens, i + 4);
        if tokens.get(close_bracket + 1) != Some(&sym(")")) {
            out.push(tokens[i].clone());
            i += 1;
            continue;
        }
        out.extend(replacement);
        out.push(sym("("));
        out.extend_from_slice(&tokens[i + 5..close_bracket]);
        out.push(sym(")"));
        i = close_bracket + 2;
    }
    out
}

/// A `-` that cannot be a subtraction joins the number after it.
fn fold_signs(tokens: Vec<Tok>) -> Vec<Tok> {
    let mut out: Vec<Tok> = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        if tokens[i] == sym("-")
            && let Some(Tok::Num(n)) = tokens.get(i + 1)
        {
            let unary = match out.last() {
                None => true,
                Some(Tok::Sym(s)) => s != ")" && s != "]",
                Some(Tok::Word(w)) => OPERATOR_WORDS.contains(&w.as_str()) || w == "in",
                _ => false,
            };
            if unary {
                out.push(Tok::Num(format!("-{n}")));
                i += 2;
                continue;
            }
        }
        out.push(tokens[i].clone());
        i += 1;
    }
    out
}

/// Removes one pair of parentheses that changes nothing: around the whole expression,
/// directly inside another pair, or around a single token that is not an argument list.
fn drop_one_paren_pair(tokens: &[Tok]) -> Option<Vec<Tok>> {
    let is_call = |open: usize| -> bool {
        open > 0
            && matches!(&tokens[open - 1], Tok::Word(w) if !OPERATOR_WORDS.contains(&w.as_str()))
    };
    let without = |a: usize, b: usize| -> Vec<Tok> {
        tokens
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != a && *i != b)
            .map(|(_, t)| t.clone())
            .collect()
    };
    for open in (0..tokens.len()).filter(|&i| tokens[i] == sym("(")) {
        let close = matching(tokens, open);
        if close >= tokens.len() {
            return None;
        }
        if open == 0 && close == tokens.len() - 1 {
            return Some(without(open, close));
        }
        if tokens.get(open + 1) == Some(&sym("(")) && matching(tokens, open + 1) == close - 1 {
            return Some(without(open + 1, close - 1));
        }
        if close == open + 2 && !is_call(open) {
            return Some(without(open, close));
        }
    }
    None
}

/// Index of the bracket closing the one at `open` (`(` or `[`); past the end if none.
fn matching(tokens: &[Tok], open: usize) -> usize {
    let (up, down) = if tokens[open] == sym("[") {
        (sym("["), sym("]"))
    } else {
        (sym("("), sym(")"))
    };
    let mut depth = 0usize;
    for (i, t) in tokens.iter().enumerate().skip(open) {
        if *t == up {
            depth += 1;
        } else if *t == down {
            depth -= 1;
            if depth == 0 {
                return i;
            }
        }
    }
    tokens.len()
}

/// The comma-separated items of a list, commas inside brackets left alone.
fn split_top_level(tokens: &[Tok]) -> Vec<&[Tok]> {
    let mut items = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, t) in tokens.iter().enumerate() {
        match t.text() {
            "(" | "[" if matches!(t, Tok::Sym(_)) => depth += 1,
            ")" | "]" if matches!(t, Tok::Sym(_)) => depth -= 1,
            "," if depth == 0 && matches!(t, Tok::Sym(_)) => {
                items.push(&tokens[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if start < tokens.len() {
        items.push(&tokens[start..]);
    }
    items
}

fn render(tokens: &[Tok]) -> String {
    let mut out = String::new();
    for (i, token) in tokens.iter().enumerate() {
        if let Some(previous) = i.checked_sub(1).map(|p| &tokens[p]) {
            let tight = matches!(previous, Tok::Sym(s) if s == "(" || s == "[" || s == ".")
                || matches!(token, Tok::Sym(s) if s == ")" || s == "]" || s == "," || s == ".")
                || (*token == sym("(")
                    && matches!(previous, Tok::Word(w)
                        if !OPERATOR_WORDS.contains(&w.as_str()) && w != "in"));
            if !tight {
                out.push(' ');
            }
        }
        match token {
            Tok::Word(w) if UPPER_CASE_WORDS.contains(&w.as_str()) => {
                out.push_str(&w.to_uppercase());
            }
            _ => out.push_str(token.text()),
        }
    }
    out
}

/// Keywords rendered in upper case, for messages that read like the migrations.
const UPPER_CASE_WORDS: &[&str] = &[
    "and", "or", "not", "in", "is", "null", "like", "between", "case", "when", "then", "else",
    "end", "exists",
];
