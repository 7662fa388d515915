//! What authenticating an API key or a client costs when the cache has it, against what
//! the same lookup costs in the database (SQLite, in-process: the query alone, without the
//! trip to the blocking pool a request adds around it).
//!
//! cargo bench --bench caches

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use latchkey::access::Reach;
use latchkey::apikeys::authenticate::{ApiKeyAuth, Standing};
use latchkey::apikeys::{self, KeyClass};
use latchkey::config::{DatabaseTarget, Environment};
use latchkey::crypto::MasterKey;
use latchkey::db::api_keys::{ApiKeyRow, KeyOwner, NewApiKey, find_api_key_with_owner, insert_api_key};
use latchkey::db::changes::{Cached, Changes, Table, Tables};
use latchkey::state::KnownKey;

fn key_row(id: &str) -> ApiKeyRow {
    ApiKeyRow {
        id: id.into(),
        tenant_id: latchkey::db::DEFAULT_TENANT_ID.into(),
        kind: "restricted".into(),
        name: "reports".into(),
        environment: "test".into(),
        display_prefix: "rk_test_AbCd".into(),
        last_four: "wXyZ".into(),
        user_id: None,
        team_id: None,
        team_role: None,
        service_account_id: None,
        permissions: "clients:read".into(),
        tier: None,
        expires_at: None,
        last_used_at: Some(latchkey::db::now()),
        last_used_ip: Some("127.0.0.1".into()),
        revoked_at: None,
        created_by_user_id: None,
        created_at: latchkey::db::now(),
        created_through_client_id: None,
    }
}

fn api_keys(c: &mut Criterion) {
    let hasher = MasterKey::generate().token_hasher();
    let key = apikeys::generate(KeyClass::Restricted, Environment::Test);
    let changes = Arc::new(Changes::new(std::time::Duration::from_secs(60)));
    changes.set_hearing(true);
    let cache: Cached<String, KnownKey> =
        Cached::new(changes, Tables::of(&[Table::ApiKeys, Table::Users, Table::ServiceAccounts, Table::Teams]), 4096);
    let known = KnownKey::new(key_row("k1"), KeyOwner::default(), Reach::default());
    cache.insert(hasher.presented(&key).current().to_owned(), Arc::new(known), cache.start_read());

    let dir = tempfile::tempdir().unwrap();
    let target = DatabaseTarget::Sqlite(dir.path().join("bench.db"));
    let pool = latchkey::db::build_pool(&target, 1).unwrap();
    let mut conn = pool.get().unwrap();
    insert_api_key(
        &mut conn,
        &NewApiKey {
            id: "k1",
            tenant_id: latchkey::db::DEFAULT_TENANT_ID,
            kind: "restricted",
            name: "reports",
            environment: "test",
            key_hash: hasher.hash(&key).as_str(),
            display_prefix: &apikeys::display_prefix(&key),
            last_four: &apikeys::last_four(&key),
            user_id: None,
            created_by_user_id: None,
            service_account_id: None,
            team_id: None,
            team_role: None,
            permissions: "clients:read",
            tier: None,
            expires_at: None,
            created_at: latchkey::db::now(),
            created_through_client_id: None,
        },
    )
    .unwrap();

    let mut group = c.benchmark_group("api key authenticated");
    group.bench_function("from the cache", |b| {
        b.iter(|| {
            let presented = hasher.presented(black_box(&key));
            let known = cache.get(presented.current()).expect("cached");
            assert_eq!(Standing::of(&known.key, &known.owner, latchkey::db::now()), Standing::Live);
            black_box(ApiKeyAuth { key: known.key.clone(), reach: known.reach.clone() })
        })
    });
    group.bench_function("from the database (query only)", |b| {
        b.iter(|| {
            let presented = hasher.presented(black_box(&key));
            let (row, owner) =
                presented.find(|hash| find_api_key_with_owner(&mut conn, hash)).unwrap().expect("stored");
            assert_eq!(Standing::of(&row, &owner, latchkey::db::now()), Standing::Live);
            black_box(row)
        })
    });
    group.finish();
}

criterion_group!(benches, api_keys);
criterion_main!(benches);
