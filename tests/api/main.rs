//! One test binary: every file here drives the real server over HTTP or the real CLI.

mod helpers;

mod apikeys;
mod authorize;
mod backup;
mod browser;
mod dashboard;
mod device;

mod caches;
mod cli;
mod client_jwt;
mod connect;
mod crash;
mod discovery;
mod guides;
mod instances;
mod introspect;
mod keys;
mod login;
mod management;
mod management_tokens;
mod master_key;
mod operations;
mod operator_cli;
mod overload;
mod packaging;
mod passkeys;
mod password;
mod password_reset;
mod permissions;
mod process;
mod ratelimits;
mod refresh;
mod registration;
mod revoke;
mod second_factors;
mod security;
mod shutdown;
mod sign_in_policy;
mod step_up;
mod storage;
mod tls;
mod token;
mod verify;
