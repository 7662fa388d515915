//! Tenants: for now, the sign-in policy their owners set.

use diesel::prelude::*;

use super::DbConnection;
use super::schema::tenants;

/// Whether every password sign-in must end with a second factor (set one up if need be).
pub fn requires_second_factor(conn: &mut DbConnection, tenant_id: &str) -> QueryResult<bool> {
    tenants::table
        .filter(tenants::id.eq(tenant_id))
        .select(tenants::require_second_factor)
        .get_result::<bool>(conn)
        .optional()
        .map(|required| required.unwrap_or(false))
}

/// Sets the policy; `false` if there is no such tenant.
pub fn set_requires_second_factor(conn: &mut DbConnection, tenant_id: &str, required: bool) -> QueryResult<bool> {
    diesel::update(tenants::table.filter(tenants::id.eq(tenant_id)))
        .set(tenants::require_second_factor.eq(required))
        .execute(conn)
        .map(|updated| updated == 1)
}
