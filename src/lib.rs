//! Latchkey: an OAuth 2.0 / OpenID Connect authorization server.

pub mod access;
pub mod api;
pub mod apikeys;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod db;
pub mod domain;
pub mod error;
pub mod health;
pub mod manage;
pub mod metrics;
pub mod oauth;
pub mod passwords;
pub mod ratelimit;
pub mod startup;
pub mod telemetry;
pub mod tokens;
pub mod web;
