//! Diesel table definitions, kept by hand in step with `migrations/{sqlite,postgres}`:
//! only types both backends share (Text, BigInt, Bool, Timestamp, Binary).

diesel::table! {
    tenants (id) {
        id -> Text,
        name -> Text,
        created_at -> Timestamp,
        require_second_factor -> Bool,
    }
}

diesel::table! {
    users (id) {
        id -> Text,
        tenant_id -> Text,
        email -> Text,
        name -> Nullable<Text>,
        password_hash -> Nullable<Text>,
        status -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        deleted_at -> Nullable<Timestamp>,
        role -> Text,
        invite_token_hash -> Nullable<Text>,
        invite_expires_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    teams (id) {
        id -> Text,
        tenant_id -> Text,
        name -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    team_members (team_id, user_id) {
        team_id -> Text,
        user_id -> Text,
        role -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    service_accounts (id) {
        id -> Text,
        tenant_id -> Text,
        name -> Text,
        permissions -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    apis (id) {
        id -> Text,
        tenant_id -> Text,
        team_id -> Nullable<Text>,
        name -> Text,
        audience -> Text,
        signing_alg -> Text,
        secret_sealed -> Nullable<Binary>,
        scopes -> Text,
        token_lifetime_secs -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    clients (id) {
        id -> Text,
        tenant_id -> Text,
        team_id -> Nullable<Text>,
        client_id -> Text,
        name -> Text,
        secret_hash -> Nullable<Text>,
        previous_secret_hash -> Nullable<Text>,
        previous_secret_expires_at -> Nullable<Timestamp>,
        token_endpoint_auth_method -> Text,
        grant_types -> Text,
        scopes -> Text,
        audiences -> Text,
        redirect_uris -> Text,
        post_logout_redirect_uris -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        permissions -> Text,
        secret_sealed -> Nullable<Binary>,
        jwks -> Nullable<Text>,
        acts_for_users -> Bool,
        jwks_uri -> Nullable<Text>,
        refresh_retry_secs -> BigInt,
    }
}

diesel::table! {
    used_assertions (assertion_hash) {
        assertion_hash -> Text,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    master_keys (id) {
        id -> Text,
        is_current -> Bool,
        became_current_at -> Timestamp,
        retired_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    signing_keys (kid) {
        kid -> Text,
        algorithm -> Text,
        private_key_sealed -> Binary,
        public_jwk -> Text,
        created_at -> Timestamp,
        retired_at -> Nullable<Timestamp>,
        publish_until -> Nullable<Timestamp>,
    }
}

diesel::table! {
    sessions (id_hash) {
        id_hash -> Text,
        user_id -> Text,
        created_at -> Timestamp,
        last_seen_at -> Timestamp,
        expires_at -> Timestamp,
        ip -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        amr -> Text,
    }
}

diesel::table! {
    authorization_codes (code_hash) {
        code_hash -> Text,
        client_id -> Text,
        user_id -> Text,
        redirect_uri -> Text,
        scope -> Text,
        audience -> Text,
        code_challenge -> Nullable<Text>,
        nonce -> Nullable<Text>,
        auth_time -> Timestamp,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        consumed_at -> Nullable<Timestamp>,
        access_token_jti -> Nullable<Text>,
        access_token_expires_at -> Nullable<Timestamp>,
        redirect_uri_given -> Bool,
        requested_token_type -> Nullable<Text>,
        key_request -> Nullable<Text>,
        issued_key_id -> Nullable<Text>,
        amr -> Nullable<Text>,
    }
}

diesel::table! {
    device_authorizations (device_code_hash) {
        device_code_hash -> Text,
        user_code_hash -> Text,
        client_id -> Text,
        scope -> Text,
        audience -> Text,
        requested_from -> Nullable<Text>,
        requested_by -> Nullable<Text>,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        interval_secs -> BigInt,
        last_polled_at -> Nullable<Timestamp>,
        status -> Text,
        user_id -> Nullable<Text>,
        auth_time -> Nullable<Timestamp>,
        decided_at -> Nullable<Timestamp>,
        requested_token_type -> Nullable<Text>,
        key_request -> Nullable<Text>,
        amr -> Nullable<Text>,
    }
}

diesel::table! {
    refresh_tokens (id) {
        id -> Text,
        token_hash -> Text,
        family_id -> Text,
        parent_id -> Nullable<Text>,
        client_id -> Text,
        user_id -> Text,
        scope -> Text,
        audience -> Text,
        auth_code_hash -> Nullable<Text>,
        access_token_jti -> Text,
        access_token_expires_at -> Timestamp,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
        retry_answer_sealed -> Nullable<Binary>,
        retry_until -> Nullable<Timestamp>,
        amr -> Nullable<Text>,
        auth_time -> Nullable<Timestamp>,
    }
}

diesel::table! {
    revoked_tokens (jti) {
        jti -> Text,
        expires_at -> Timestamp,
        revoked_at -> Timestamp,
    }
}

diesel::table! {
    consents (id) {
        id -> Text,
        user_id -> Text,
        client_id -> Text,
        scope -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        remembered -> Bool,
        audience -> Text,
    }
}

diesel::table! {
    setup_tokens (token_hash) {
        token_hash -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    api_keys (id) {
        id -> Text,
        tenant_id -> Text,
        kind -> Text,
        name -> Text,
        environment -> Text,
        key_hash -> Text,
        display_prefix -> Text,
        last_four -> Text,
        user_id -> Nullable<Text>,
        created_by_user_id -> Nullable<Text>,
        service_account_id -> Nullable<Text>,
        team_id -> Nullable<Text>,
        team_role -> Nullable<Text>,
        permissions -> Text,
        tier -> Nullable<Text>,
        expires_at -> Nullable<Timestamp>,
        last_used_at -> Nullable<Timestamp>,
        last_used_ip -> Nullable<Text>,
        revoked_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        created_through_client_id -> Nullable<Text>,
    }
}

diesel::table! {
    audit_events (id) {
        id -> Text,
        tenant_id -> Nullable<Text>,
        occurred_at -> Timestamp,
        actor_type -> Text,
        actor_id -> Nullable<Text>,
        action -> Text,
        target_type -> Nullable<Text>,
        target_id -> Nullable<Text>,
        outcome -> Text,
        ip -> Nullable<Text>,
        request_id -> Nullable<Text>,
        details -> Text,
    }
}

diesel::table! {
    totp_factors (user_id) {
        user_id -> Text,
        secret_sealed -> Binary,
        created_at -> Timestamp,
        confirmed_at -> Nullable<Timestamp>,
        last_step -> Nullable<BigInt>,
        last_used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    recovery_codes (code_hash) {
        code_hash -> Text,
        user_id -> Text,
        created_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    pending_sign_ins (id_hash) {
        id_hash -> Text,
        user_id -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        ip -> Nullable<Text>,
        user_agent -> Nullable<Text>,
    }
}

diesel::table! {
    password_resets (token_hash) {
        token_hash -> Text,
        user_id -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    passkeys (id) {
        id -> Text,
        user_id -> Text,
        credential_id -> Text,
        user_handle -> Text,
        name -> Text,
        credential -> Text,
        backup_eligible -> Bool,
        created_at -> Timestamp,
        last_used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    passkey_ceremonies (id_hash) {
        id_hash -> Text,
        purpose -> Text,
        user_id -> Nullable<Text>,
        state -> Text,
        expires_at -> Timestamp,
    }
}

diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(passkeys -> users (user_id));
diesel::joinable!(pending_sign_ins -> users (user_id));
diesel::joinable!(password_resets -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(
    tenants,
    users,
    teams,
    team_members,
    service_accounts,
    apis,
    clients,
    signing_keys,
    master_keys,
    sessions,
    authorization_codes,
    refresh_tokens,
    revoked_tokens,
    consents,
    api_keys,
    audit_events,
    setup_tokens,
    used_assertions,
    device_authorizations,
    totp_factors,
    recovery_codes,
    pending_sign_ins,
    password_resets,
    passkeys,
    passkey_ceremonies,
);
