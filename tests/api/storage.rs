//! The storage layer on each backend: migrations reversible, constraints enforced.

use diesel::prelude::*;
use latchkey::config::DatabaseTarget;
use latchkey::db::{self, DbConnection};

use crate::helpers::{Backend, TestDb};

fn table_count(conn: &mut DbConnection) -> i64 {
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let query = match conn {
        DbConnection::Sqlite(_) => {
            "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
             AND name <> '__diesel_schema_migrations'"
        }
        DbConnection::Postgres(_) => {
            "SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema = 'public' \
             AND table_name <> '__diesel_schema_migrations'"
        }
    };
    diesel::sql_query(query).get_result::<Count>(conn).unwrap().n
}

async fn migrations_go_up_down_and_up_again(backend: Backend) {
    // Arrange: build_pool applies every migration.
    let db = TestDb::new(&backend);
    let pool = db::build_pool(&db.target(), 2).unwrap();
    let mut conn = pool.get().unwrap();
    assert_eq!(table_count(&mut conn), 25);

    // Act
    db::revert_all_migrations(&mut conn).unwrap();
    let after_down = table_count(&mut conn);
    let applied = db::run_migrations(&mut conn).unwrap();

    // Assert
    assert_eq!(after_down, 0);
    assert_eq!(applied.len(), 14);
    assert_eq!(table_count(&mut conn), 25);
    assert!(db::run_migrations(&mut conn).unwrap().is_empty(), "nothing left to apply");
}

async fn foreign_keys_and_unique_constraints_are_enforced(backend: Backend) {
    use latchkey::db::clients::{NewClient, insert_client};
    let db = TestDb::new(&backend);
    let pool = db::build_pool(&db.target(), 2).unwrap();
    let mut conn = pool.get().unwrap();
    let now = db::now();
    let client = |id: &'static str, tenant: &'static str| NewClient {
        id,
        tenant_id: tenant,
        team_id: None,
        client_id: "same-client-id",
        name: "x",
        secret_hash: None,
        token_endpoint_auth_method: "none",
        grant_types: "authorization_code",
        scopes: "",
        audiences: "",
        redirect_uris: "",
        post_logout_redirect_uris: "",
        created_at: now,
        updated_at: now,
        permissions: "",
        secret_sealed: None,
        jwks: None,
        acts_for_users: false,
        jwks_uri: None,
        refresh_retry_secs: 30,
    };

    let orphan = insert_client(&mut conn, &client("1", "no-such-tenant"));
    let first = insert_client(&mut conn, &client("2", db::DEFAULT_TENANT_ID));
    let duplicate = insert_client(&mut conn, &client("3", db::DEFAULT_TENANT_ID));

    assert!(orphan.is_err(), "a client of a missing tenant was stored");
    assert!(first.is_ok());
    let conflict = latchkey::error::AppError::from(duplicate.unwrap_err());
    assert!(matches!(conflict, latchkey::error::AppError::Conflict(_)), "{conflict:?}");
}

async fn timestamps_round_trip_exactly(backend: Backend) {
    use latchkey::db::revoked_tokens::{is_revoked, prune_expired_revocations, revoke_token};
    let db = TestDb::new(&backend);
    let pool = db::build_pool(&db.target(), 2).unwrap();
    let mut conn = pool.get().unwrap();
    let now = db::now();

    revoke_token(&mut conn, "jti-expired", now - chrono::TimeDelta::seconds(1), now).unwrap();
    revoke_token(&mut conn, "jti-live", now + chrono::TimeDelta::seconds(60), now).unwrap();
    revoke_token(&mut conn, "jti-live", now + chrono::TimeDelta::seconds(60), now).unwrap();

    assert_eq!(prune_expired_revocations(&mut conn, now).unwrap(), 1);
    assert!(!is_revoked(&mut conn, "jti-expired").unwrap());
    assert!(is_revoked(&mut conn, "jti-live").unwrap());
    let row: chrono::NaiveDateTime = latchkey::db::schema::revoked_tokens::table
        .select(latchkey::db::schema::revoked_tokens::revoked_at)
        .first(&mut *conn)
        .unwrap();
    assert_eq!(row, now);
}

/// A transaction that reads, then writes, while another connection commits a write in
/// between: on SQLite a deferred transaction failed at its first write ("database is
/// locked", which no busy timeout waits out). Found as a 500 from two management calls at once.
async fn a_write_transaction_is_not_undone_by_a_writer_that_commits_meanwhile(backend: Backend) {
    use latchkey::audit::{Context, record};
    fn events(conn: &mut DbConnection) -> i64 {
        latchkey::db::schema::audit_events::table.count().get_result(conn).unwrap()
    }
    let db = TestDb::new(&backend);
    let pool = db::build_pool(&db.target(), 2).unwrap();
    let mut conn = pool.get().unwrap();
    let before = events(&mut conn);

    let outcome = db::write_transaction(&mut conn, |conn| -> QueryResult<_> {
        let seen = events(conn);
        let other = pool.clone();
        let meanwhile = std::thread::spawn(move || record(&mut other.get().unwrap(), &Context::SYSTEM.change("other")));
        // Long enough for the other writer to commit, if it is let.
        std::thread::sleep(std::time::Duration::from_millis(300));
        record(conn, &Context::SYSTEM.change("mine"))?;
        Ok((seen, meanwhile))
    });

    let (seen, meanwhile) = outcome.expect("the transaction that read first commits");
    meanwhile.join().unwrap().expect("the other writer commits too");
    assert_eq!(seen, before);
    assert_eq!(events(&mut conn), before + 2);
}

/// A change made of others (each its own write transaction) runs them inside its own: an
/// inner failure undoes only the inner part, an outer failure undoes everything, and on
/// SQLite the inner ones do not wait for the writer turn the outer one holds.
async fn write_transactions_nest(backend: Backend) {
    use latchkey::audit::{Context, record};
    fn events(conn: &mut DbConnection) -> i64 {
        latchkey::db::schema::audit_events::table.count().get_result(conn).unwrap()
    }
    let db = TestDb::new(&backend);
    let pool = db::build_pool(&db.target(), 2).unwrap();
    let mut conn = pool.get().unwrap();
    let before = events(&mut conn);

    db::write_transaction(&mut conn, |conn| -> QueryResult<()> {
        record(conn, &Context::SYSTEM.change("outer"))?;
        db::write_transaction(conn, |conn| record(conn, &Context::SYSTEM.change("inner")))?;
        let failed = db::write_transaction(conn, |conn| -> QueryResult<()> {
            record(conn, &Context::SYSTEM.change("undone"))?;
            Err(diesel::result::Error::RollbackTransaction)
        });
        assert!(failed.is_err());
        Ok(())
    })
    .unwrap();
    assert_eq!(events(&mut conn), before + 2, "the outer and the first inner change stay");

    let failed = db::write_transaction(&mut conn, |conn| -> QueryResult<()> {
        db::write_transaction(conn, |conn| record(conn, &Context::SYSTEM.change("inner")))?;
        Err(diesel::result::Error::RollbackTransaction)
    });
    assert!(failed.is_err());
    assert_eq!(events(&mut conn), before + 2, "a failed outer change undoes its inner ones");
}

#[tokio::test]
async fn sqlite_connections_use_wal_and_foreign_keys() {
    #[derive(QueryableByName)]
    struct Mode {
        #[diesel(sql_type = diesel::sql_types::Text)]
        journal_mode: String,
    }
    #[derive(QueryableByName)]
    struct Fk {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        foreign_keys: i32,
    }
    let db = TestDb::new(&Backend::Sqlite);
    let pool = db::build_pool(&db.target(), 2).unwrap();
    let mut conn = pool.get().unwrap();

    let mode = diesel::sql_query("PRAGMA journal_mode").get_result::<Mode>(&mut *conn).unwrap();
    let fk = diesel::sql_query("PRAGMA foreign_keys").get_result::<Fk>(&mut *conn).unwrap();

    assert_eq!(mode.journal_mode, "wal");
    assert_eq!(fk.foreign_keys, 1);
}

/// The server copies SQLite's log back into the database file by itself, however little was
/// written (its connections would only do so past 10,000 pages; src/db/checkpoints.rs).
#[tokio::test]
async fn the_server_checkpoints_sqlite_in_the_background() {
    #[derive(QueryableByName)]
    struct Frames {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        log: i32,
        #[diesel(sql_type = diesel::sql_types::Integer)]
        checkpointed: i32,
    }
    // Arrange: a few writes, far fewer pages than any connection's own threshold.
    let app = crate::helpers::spawn_app(Backend::Sqlite).await;
    let owner = app.owner_key();
    for name in ["Payments", "Billing", "Search"] {
        let (status, _) = app.api("POST", "/teams", &owner, Some(serde_json::json!({ "name": name }))).await;
        assert_eq!(status, 201);
    }

    // Act: watch the log, without copying anything (NOOP).
    let mut conn = app.pool.get().unwrap();
    let mut uncopied = || {
        let frames: Frames = diesel::sql_query("PRAGMA wal_checkpoint(NOOP)").get_result(&mut *conn).unwrap();
        frames.log - frames.checkpointed
    };
    // (Another write may follow the copy at any time: the keys' last-used stamps.)
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let copied = loop {
        if uncopied() == 0 {
            break true;
        }
        if std::time::Instant::now() > deadline {
            break false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };

    // Assert
    assert!(copied, "the log was never copied back");
}

/// The pool opens two connections and the others only when requests hold them at once, up to
/// its size (docs/configuration.md, `database_pool_size`).
async fn the_pool_opens_connections_as_requests_need_them(backend: Backend) {
    // Arrange
    let db = TestDb::new(&backend);
    let pool = db::build_pool(&db.target(), 10).unwrap();
    // Two kept open, and at most one more that r2d2 opened while migrations held one.
    let at_rest = pool.state().connections;

    // Act
    let held: Vec<_> = (0..6).map(|_| pool.get().expect("a connection while six are held")).collect();

    // Assert
    assert!((2..=3).contains(&at_rest), "{at_rest} connections open at rest");
    assert!(pool.state().connections >= 6, "{:?}", pool.state());
    assert_eq!(held.len(), 6);
}

crate::on_both_backends!(
    the_pool_opens_connections_as_requests_need_them,
    migrations_go_up_down_and_up_again,
    foreign_keys_and_unique_constraints_are_enforced,
    timestamps_round_trip_exactly,
    a_write_transaction_is_not_undone_by_a_writer_that_commits_meanwhile,
    write_transactions_nest,
);

/// Set by `a_process_exits_cleanly_while_threads_are_in_libpq` in the copies of this test
/// binary it runs: the URL they connect to.
const EXIT_CHILD_URL: &str = "LATCHKEY_TEST_EXIT_CHILD_URL";

/// A process that exits while other threads are inside libpq exits cleanly: OpenSSL's own
/// clean-up at exit is off (`db::establish_postgres`). The test runs this test binary again,
/// forty times, as a process that connects over TLS on four threads and exits while they do;
/// with OpenSSL's clean-up on, about one such exit in five crashed (a double free or a
/// segmentation fault).
#[test]
fn a_process_exits_cleanly_while_threads_are_in_libpq() {
    if let Ok(url) = std::env::var(EXIT_CHILD_URL) {
        // The copy: connect on four threads until the process ends, and end it at once.
        for _ in 0..4 {
            let url = url.clone();
            std::thread::spawn(move || {
                loop {
                    let _ = db::establish_postgres(&url);
                }
            });
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        return;
    }
    let Some(Backend::Postgres(server)) = Backend::postgres() else {
        return eprintln!("LATCHKEY_TEST_POSTGRES_URL is not set: PostgreSQL not tested");
    };
    let mut url = url::Url::parse(&server).unwrap();
    url.query_pairs_mut().append_pair("sslmode", "require");
    if db::establish_postgres(url.as_str()).is_err() {
        return eprintln!("this PostgreSQL server offers no TLS: exits during TLS connections not tested");
    }
    for _ in 0..40 {
        let child = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "storage::a_process_exits_cleanly_while_threads_are_in_libpq", "--test-threads=1"])
            .env(EXIT_CHILD_URL, url.as_str())
            .output()
            .unwrap();
        assert!(child.status.success(), "the process crashed on its way out: {:?}", child.status);
    }
}

/// The libpq built into the binary speaks TLS (it is linked to OpenSSL) and checks the
/// server's certificate when the URL says so, as docs/deployment.md advises: a certificate
/// that the given root did not sign stops the connection with libpq's reason.
#[tokio::test]
async fn postgres_urls_ask_for_tls_and_for_the_certificate_check() {
    #[derive(QueryableByName)]
    struct Setting {
        #[diesel(sql_type = diesel::sql_types::Text)]
        ssl: String,
    }
    #[derive(QueryableByName)]
    struct Encrypted {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        ssl: bool,
    }
    let Some(backend) = Backend::postgres() else {
        return eprintln!("LATCHKEY_TEST_POSTGRES_URL is not set: PostgreSQL not tested");
    };
    let db = TestDb::new(&backend);
    let mut plain = db::build_pool(&db.target(), 1).unwrap().get().unwrap();
    if diesel::sql_query("SHOW ssl").get_result::<Setting>(&mut *plain).unwrap().ssl != "on" {
        return eprintln!("this PostgreSQL server offers no TLS: libpq's TLS not tested");
    }
    let with = |parameters: &[(&str, &str)]| {
        let mut url = url::Url::parse(db.url()).unwrap();
        url.query_pairs_mut().extend_pairs(parameters);
        DatabaseTarget::parse(url.as_str()).unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    let other_root = dir.path().join("other-root.pem");
    let made = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"])
        .args(["-subj", "/CN=not the database's", "-keyout"])
        .arg(dir.path().join("other-root.key"))
        .arg("-out")
        .arg(&other_root)
        .output()
        .expect("openssl is installed");
    assert!(made.status.success(), "{made:?}");

    // Act
    let required = db::build_pool(&with(&[("sslmode", "require")]), 1);
    let unverified =
        db::build_pool(&with(&[("sslmode", "verify-full"), ("sslrootcert", other_root.to_str().unwrap())]), 1);

    // Assert
    let mut conn = required.expect("sslmode=require connects").get().unwrap();
    let session = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()";
    assert!(diesel::sql_query(session).get_result::<Encrypted>(&mut *conn).unwrap().ssl, "the session is encrypted");
    let refused = format!("{:#}", unverified.err().expect("a certificate the root did not sign is refused"));
    assert!(refused.contains("certificate verify failed"), "{refused}");
}
