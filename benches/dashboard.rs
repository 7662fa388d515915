//! Dashboard list pages with many rows: the first page of API keys (all, filtered by kind,
//! and as a team admin who reaches half of them) and of OAuth apps, each against a database
//! of 100 and of 10,000 keys and clients. Each request goes over loopback to Latchkey
//! running in-process on a fresh SQLite file, signed in as an owner; its time bounds the
//! server's (the client's share is the same for every case). The 100-row database is the
//! baseline: pages that read a page at a time cost the same at 10,000 rows.
//!
//! cargo bench --bench dashboard        # ~1 min, most of it seeding

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use latchkey::config::{DatabaseTarget, Settings};
use latchkey::db::api_keys::{NewApiKey, insert_api_key};
use latchkey::db::clients::{NewClient, insert_client};
use latchkey::db::teams::{NewTeam, insert_team, upsert_member};
use latchkey::db::users::{NewUser, ROLE_MEMBER, ROLE_OWNER, STATUS_ACTIVE, insert_user};
use latchkey::domain::SignInMethods;
use latchkey::startup::Application;
use tokio::runtime::Runtime;

struct Served {
    _dir: tempfile::TempDir,
    base: String,
    owner: reqwest::Client,
    team_admin: reqwest::Client,
}

fn user(conn: &mut latchkey::db::DbConnection, id: &str, role: &str) {
    let now = latchkey::db::now();
    let email = format!("{id}@example.com");
    insert_user(
        conn,
        &NewUser {
            id,
            tenant_id: latchkey::db::DEFAULT_TENANT_ID,
            email: &email,
            name: None,
            password_hash: None,
            status: STATUS_ACTIVE,
            role,
            invite_token_hash: None,
            invite_expires_at: None,
            created_at: now,
            updated_at: now,
        },
    )
    .unwrap();
}

/// A client that presents `cookie` as the session.
fn signed_in(cookie: &actix_web::cookie::Cookie<'_>) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    let value = format!("{}={}", cookie.name(), cookie.value());
    headers.insert(reqwest::header::COOKIE, value.parse().unwrap());
    reqwest::Client::builder().default_headers(headers).build().unwrap()
}

/// Latchkey on a database holding `rows` API keys and `rows` clients, half of each in one team.
fn serve(runtime: &Runtime, rows: usize) -> Served {
    let dir = tempfile::tempdir().unwrap();
    let target = DatabaseTarget::parse(&format!("sqlite://{}", dir.path().join("bench.db").display())).unwrap();
    let settings = Settings { workers: Some(1), ..Settings::for_tests(target) };
    let app = runtime.block_on(Application::build(settings)).unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    let state = app.state();
    runtime.spawn(app.run_until_stopped());

    let mut conn = state.pool.get().unwrap();
    let sessions = latchkey::db::write_transaction(&mut conn, |conn| -> Result<_, latchkey::error::AppError> {
        let now = latchkey::db::now();
        user(conn, "owner", ROLE_OWNER);
        user(conn, "admin", ROLE_MEMBER);
        insert_team(
            conn,
            &NewTeam { id: "team", tenant_id: latchkey::db::DEFAULT_TENANT_ID, name: "Team", created_at: now },
        )?;
        upsert_member(conn, "team", "admin", "admin", now)?;
        for i in 0..rows {
            let id = format!("key-{i:05}");
            let in_team = i % 2 == 0;
            let created = now - chrono::TimeDelta::seconds(i as i64);
            insert_api_key(
                conn,
                &NewApiKey {
                    id: &id,
                    tenant_id: latchkey::db::DEFAULT_TENANT_ID,
                    kind: if in_team { "team" } else { "restricted" },
                    name: &format!("key {i}"),
                    environment: "test",
                    key_hash: &format!("hash-{i}"),
                    display_prefix: "sk_test_abcd",
                    last_four: "wxyz",
                    user_id: None,
                    created_by_user_id: Some("owner"),
                    service_account_id: None,
                    team_id: in_team.then_some("team"),
                    team_role: in_team.then_some("viewer"),
                    permissions: if in_team { "" } else { "clients:read" },
                    tier: None,
                    expires_at: None,
                    created_at: created,
                    created_through_client_id: None,
                },
            )?;
            let client_id = format!("client{i:05}");
            insert_client(
                conn,
                &NewClient {
                    id: &client_id,
                    tenant_id: latchkey::db::DEFAULT_TENANT_ID,
                    team_id: in_team.then_some("team"),
                    client_id: &client_id,
                    name: &format!("app {i}"),
                    secret_hash: Some("hash"),
                    token_endpoint_auth_method: "client_secret_basic",
                    grant_types: "client_credentials",
                    scopes: "read",
                    audiences: "",
                    redirect_uris: "",
                    post_logout_redirect_uris: "",
                    created_at: created,
                    updated_at: created,
                    permissions: "",
                    secret_sealed: None,
                    jwks: None,
                    acts_for_users: false,
                    jwks_uri: None,
                    refresh_retry_secs: 30,
                },
            )?;
        }
        let owner =
            latchkey::web::session::start_session(conn, &state, "owner", &SignInMethods::password(), None, None)?;
        let admin =
            latchkey::web::session::start_session(conn, &state, "admin", &SignInMethods::password(), None, None)?;
        Ok((owner, admin))
    })
    .unwrap();
    Served { _dir: dir, base, owner: signed_in(&sessions.0), team_admin: signed_in(&sessions.1) }
}

fn pages(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let mut group = c.benchmark_group("dashboard");
    group.sample_size(30);
    for rows in [100, 10_000] {
        let served = serve(&runtime, rows);
        let cases = [
            ("api-keys", &served.owner, "/dashboard/api-keys"),
            ("api-keys-by-kind", &served.owner, "/dashboard/api-keys?kind=restricted"),
            ("api-keys-team-admin", &served.team_admin, "/dashboard/api-keys"),
            ("apps", &served.owner, "/dashboard/apps"),
        ];
        for (name, client, path) in cases {
            let url = format!("{}{path}", served.base);
            let check = runtime.block_on(client.get(&url).send()).unwrap();
            assert_eq!(check.status(), 200, "{name}: {url}");
            group.bench_function(format!("{name}/{rows}"), |b| {
                b.iter(|| {
                    runtime.block_on(async {
                        let body = client.get(&url).send().await.unwrap().bytes().await.unwrap();
                        black_box(body.len())
                    })
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, pages);
criterion_main!(benches);
