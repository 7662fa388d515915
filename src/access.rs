//! Who may do what through the management API: permissions, team roles, and the reach of
//! each kind of API key (INTERFACE §5). Plain data and decisions, no I/O: the extractor
//! loads a [`Reach`] once per request and handlers ask it.
//!
//! A resource outside the caller's reach answers 404, so its existence is not revealed; a
//! resource the caller can see but not change answers 403.
//!
//! Floor: core (docs/architecture.md); pure policy: names no storage.

use std::fmt;
use std::str::FromStr;

/// What the management API manages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resource {
    Clients,
    Apis,
    Users,
    Teams,
    ApiKeys,
    Consents,
    SigningKeys,
    AuditLog,
}

impl Resource {
    pub const ALL: [Resource; 8] = [
        Self::Clients,
        Self::Apis,
        Self::Users,
        Self::Teams,
        Self::ApiKeys,
        Self::Consents,
        Self::SigningKeys,
        Self::AuditLog,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Clients => "clients",
            Self::Apis => "apis",
            Self::Users => "users",
            Self::Teams => "teams",
            Self::ApiKeys => "api_keys",
            Self::Consents => "consents",
            Self::SigningKeys => "signing_keys",
            Self::AuditLog => "audit_log",
        }
    }

    /// Resources that can belong to a team, and so are reached through team roles.
    pub fn is_team_scoped(self) -> bool {
        matches!(self, Self::Clients | Self::Apis | Self::Teams | Self::ApiKeys)
    }
}

/// What is done to a resource. `write` and `delete` include `read` (one cannot change what
/// one cannot see); `admin` includes everything, and alone allows handing out access
/// (keys, roles, service-account permissions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    Read,
    Write,
    Delete,
    Admin,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Delete => "delete",
            Self::Admin => "admin",
        }
    }

    pub fn covers(self, needed: Action) -> bool {
        self == needed || self == Self::Admin || (needed == Self::Read && self != Self::Read)
    }

    /// What both allow: the narrower of the two, or `read` for `write` and `delete`.
    fn meet(self, other: Action) -> Action {
        if self.covers(other) {
            other
        } else if other.covers(self) {
            self
        } else {
            Self::Read
        }
    }
}

/// One permission: an action on one resource, or on every resource (`read`, `admin`).
/// Written `clients:read` or, as tenant permissions are often spelled, `CLIENTS_READ`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Permission {
    pub resource: Option<Resource>,
    pub action: Action,
}

impl Permission {
    pub fn allows(self, resource: Resource, action: Action) -> bool {
        self.resource.is_none_or(|r| r == resource) && self.action.covers(action)
    }

    /// Whether everything `other` allows, this allows too.
    pub fn includes(self, other: Permission) -> bool {
        match other.resource {
            Some(resource) => self.allows(resource, other.action),
            None => self.resource.is_none() && self.action.covers(other.action),
        }
    }

    /// What both allow, if anything: `admin` and `clients:read` meet in `clients:read`.
    fn meet(self, other: Permission) -> Option<Permission> {
        let resource = match (self.resource, other.resource) {
            (Some(mine), Some(theirs)) if mine != theirs => return None,
            (mine, theirs) => mine.or(theirs),
        };
        Some(Permission { resource, action: self.action.meet(other.action) })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown permission `{0}` (expected read, write, delete, admin, or <resource>:<action> such as clients:read or AUDIT_LOG_READ)"
)]
pub struct UnknownPermission(pub String);

impl FromStr for Permission {
    type Err = UnknownPermission;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let unknown = || UnknownPermission(value.to_owned());
        let action_named = |name: &str| {
            [Action::Read, Action::Write, Action::Delete, Action::Admin].into_iter().find(|a| a.as_str() == name)
        };
        let lower = value.to_ascii_lowercase();
        if let Some(action) = action_named(&lower) {
            return Ok(Self { resource: None, action });
        }
        // `clients:read`, or the upper-case `CLIENTS_READ` / `AUDIT_LOG_READ`.
        let (resource, action) = if let Some(split) = lower.split_once(':') {
            split
        } else if value.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
            lower.rsplit_once('_').ok_or_else(unknown)?
        } else {
            return Err(unknown());
        };
        let resource = Resource::ALL.into_iter().find(|r| r.as_str() == resource).ok_or_else(unknown)?;
        Ok(Self { resource: Some(resource), action: action_named(action).ok_or_else(unknown)? })
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.resource {
            Some(resource) => write!(f, "{}:{}", resource.as_str(), self.action.as_str()),
            None => f.write_str(self.action.as_str()),
        }
    }
}

/// A set of permissions, stored space-separated in canonical form.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Permissions(Vec<Permission>);

impl Permissions {
    pub fn everything() -> Self {
        Self(vec![Permission { resource: None, action: Action::Admin }])
    }

    pub fn parse_list<S: AsRef<str>>(values: impl IntoIterator<Item = S>) -> Result<Self, UnknownPermission> {
        let mut set = Vec::new();
        for value in values {
            let permission: Permission = value.as_ref().trim().parse()?;
            if !set.contains(&permission) {
                set.push(permission);
            }
        }
        Ok(Self(set))
    }

    /// Stored values were validated on write; anything unreadable grants nothing.
    pub fn from_stored(stored: &str) -> Self {
        Self(stored.split(' ').filter_map(|p| p.parse().ok()).collect())
    }

    /// The permissions an access token's scopes name (`read`, `clients:write` …); other
    /// scopes (`openid`, `offline_access`, an API's own) grant nothing here.
    pub fn from_scopes<'a>(scopes: impl IntoIterator<Item = &'a str>) -> Self {
        let mut set = Vec::new();
        for permission in scopes.into_iter().filter_map(|s| s.parse::<Permission>().ok()) {
            if !set.contains(&permission) {
                set.push(permission);
            }
        }
        Self(set)
    }

    /// What both sets allow.
    pub fn intersection(&self, other: &Permissions) -> Permissions {
        let mut set: Vec<Permission> = Vec::new();
        for met in self.0.iter().flat_map(|mine| other.0.iter().filter_map(|theirs| mine.meet(*theirs))) {
            if !set.iter().any(|kept| kept.includes(met)) {
                set.retain(|kept| !met.includes(*kept));
                set.push(met);
            }
        }
        Self(set)
    }

    fn allows_everything(&self) -> bool {
        self.allows_all(Permission { resource: None, action: Action::Admin })
    }

    fn allows_all(&self, permission: Permission) -> bool {
        self.0.iter().any(|p| p.includes(permission))
    }

    pub fn allows(&self, resource: Resource, action: Action) -> bool {
        self.0.iter().any(|p| p.allows(resource, action))
    }

    pub fn is_subset_of(&self, other: &Permissions) -> bool {
        self.0.iter().all(|mine| other.0.iter().any(|theirs| theirs.includes(*mine)))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn names(&self) -> Vec<String> {
        self.0.iter().map(Permission::to_string).collect()
    }

    pub fn to_stored(&self) -> String {
        self.names().join(" ")
    }
}

/// A member's role in a team.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum TeamRole {
    /// Sees the team's clients, APIs, members and keys.
    Viewer,
    /// Also creates, changes and deletes the team's clients and APIs.
    Editor,
    /// Also manages members and the team's keys.
    Admin,
}

impl TeamRole {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Editor => "editor",
            Self::Admin => "admin",
        }
    }

    /// The actions the role allows on its team's resources.
    pub fn actions(self) -> &'static [Action] {
        match self {
            Self::Viewer => &[Action::Read],
            Self::Editor => &[Action::Read, Action::Write, Action::Delete],
            Self::Admin => &[Action::Read, Action::Write, Action::Delete, Action::Admin],
        }
    }

    pub fn allows(self, action: Action) -> bool {
        match self {
            Self::Viewer => action == Action::Read,
            Self::Editor => action != Action::Admin,
            Self::Admin => true,
        }
    }
}

impl FromStr for TeamRole {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        [Self::Viewer, Self::Editor, Self::Admin]
            .into_iter()
            .find(|r| r.as_str() == value)
            .ok_or_else(|| format!("unknown team role `{value}` (expected viewer, editor or admin)"))
    }
}

/// Why a request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// The resource is outside the caller's reach: answer as if it did not exist.
    NotFound,
    /// The caller sees the resource but may not do this to it.
    Forbidden,
}

/// The resource a request touches: its kind, the team it belongs to, and the user it
/// belongs to (a user's own record, keys and consents).
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub resource: Resource,
    pub team: Option<&'a str>,
    pub user: Option<&'a str>,
}

impl<'a> Target<'a> {
    pub fn of(resource: Resource) -> Self {
        Self { resource, team: None, user: None }
    }

    pub fn in_team(mut self, team: Option<&'a str>) -> Self {
        self.team = team;
        self
    }

    pub fn of_user(mut self, user: Option<&'a str>) -> Self {
        self.user = user;
        self
    }
}

/// Which part of a collection a caller may list.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Listing {
    /// All of it.
    pub all: bool,
    /// Or what belongs to these teams,
    pub teams: Vec<String>,
    /// and what belongs to this user.
    pub user: Option<String>,
}

/// Everything a caller can reach, loaded once per request.
#[derive(Debug, Clone, Default)]
pub struct Reach {
    /// Full owner access (a tenant-owner key, or a personal key of an owner).
    pub owner: bool,
    /// Permissions across the whole tenant.
    pub tenant: Permissions,
    /// Roles in teams.
    pub teams: Vec<(String, TeamRole)>,
    /// The user a personal key acts as: its own record, keys and consents are in reach.
    pub user: Option<String>,
    /// The most the credential may do, whatever its holder reaches: an access token's
    /// scopes. `None` for API keys and sessions, which carry their holder's whole reach.
    pub limit: Option<Permissions>,
}

/// What a user may do to their own things through a personal key.
fn self_service_allows(resource: Resource, action: Action) -> bool {
    match resource {
        Resource::Users => matches!(action, Action::Read | Action::Write),
        Resource::ApiKeys | Resource::Consents => action != Action::Admin,
        _ => false,
    }
}

impl Reach {
    pub fn owner() -> Self {
        Self { owner: true, tenant: Permissions::everything(), ..Self::default() }
    }

    /// A person's reach, signed in or through a personal key: a tenant owner reaches
    /// everything; a member their own things and, through their roles, their teams'.
    /// `memberships` are (team, stored role); an unreadable role grants nothing.
    pub fn of_person(user: &str, is_owner: bool, memberships: impl IntoIterator<Item = (String, String)>) -> Self {
        if is_owner {
            return Self { user: Some(user.to_owned()), ..Self::owner() };
        }
        let teams =
            memberships.into_iter().filter_map(|(team, role)| role.parse().ok().map(|role| (team, role))).collect();
        Self { teams, user: Some(user.to_owned()), ..Self::default() }
    }

    /// This reach, as far as `limit` (an access token's scopes) allows.
    pub fn limited_to(mut self, limit: Permissions) -> Self {
        self.limit = Some(match self.limit.take() {
            Some(already) => already.intersection(&limit),
            None => limit,
        });
        self
    }

    /// Full owner access, not narrowed by a limit: what handing out owner keys, roles and
    /// tenant permissions takes.
    pub fn is_owner(&self) -> bool {
        self.owner && self.limit.as_ref().is_none_or(Permissions::allows_everything)
    }

    fn limit_allows(&self, resource: Resource, action: Action) -> bool {
        self.limit.as_ref().is_none_or(|limit| limit.allows(resource, action))
    }

    pub fn role_in(&self, team: &str) -> Option<TeamRole> {
        self.teams.iter().find(|(id, _)| id == team).map(|(_, role)| *role)
    }

    pub fn can(&self, resource: Resource, action: Action) -> bool {
        (self.owner || self.tenant.allows(resource, action)) && self.limit_allows(resource, action)
    }

    /// May the caller do `action` to `target`? What is out of reach stays out of sight
    /// (404) whatever the limit; a limit only turns a yes into 403.
    pub fn check(&self, target: Target<'_>, action: Action) -> Result<(), Denied> {
        match self.check_unlimited(target, action) {
            Ok(()) if !self.limit_allows(target.resource, action) => Err(Denied::Forbidden),
            verdict => verdict,
        }
    }

    fn check_unlimited(&self, target: Target<'_>, action: Action) -> Result<(), Denied> {
        if self.owner || self.tenant.allows(target.resource, action) {
            return Ok(());
        }
        let own = target.user.is_some() && target.user == self.user.as_deref();
        if own && self_service_allows(target.resource, action) {
            return Ok(());
        }
        if let Some(role) = target.team.and_then(|team| self.role_in(team)) {
            return if role.allows(action) { Ok(()) } else { Err(Denied::Forbidden) };
        }
        let visible = own || self.owner || self.tenant.allows(target.resource, Action::Read);
        if visible { Err(Denied::Forbidden) } else { Err(Denied::NotFound) }
    }

    /// Which part of a collection the caller may list: 403 when none of it.
    pub fn listing(&self, resource: Resource) -> Result<Listing, Denied> {
        if !self.limit_allows(resource, Action::Read) {
            return Err(Denied::Forbidden);
        }
        if self.can(resource, Action::Read) {
            return Ok(Listing { all: true, ..Listing::default() });
        }
        let teams =
            if resource.is_team_scoped() { self.teams.iter().map(|(id, _)| id.clone()).collect() } else { vec![] };
        let user = self.user.clone().filter(|_| self_service_allows(resource, Action::Read));
        if teams.is_empty() && user.is_none() {
            return Err(Denied::Forbidden);
        }
        Ok(Listing { all: false, teams, user })
    }

    /// Creating something in `team` (or tenant-wide when `None`).
    pub fn check_create(&self, resource: Resource, team: Option<&str>) -> Result<(), Denied> {
        if !self.limit_allows(resource, Action::Write) {
            return Err(Denied::Forbidden);
        }
        if self.can(resource, Action::Write) {
            return Ok(());
        }
        match team.map(|team| self.role_in(team)) {
            Some(Some(role)) if role.allows(Action::Write) => Ok(()),
            // Naming a team the caller is not in reveals nothing about it.
            Some(None) if !(self.owner || self.tenant.allows(Resource::Teams, Action::Read)) => Err(Denied::NotFound),
            _ => Err(Denied::Forbidden),
        }
    }

    /// The permissions this caller holds tenant-wide, for bounding what it hands out.
    pub fn tenant_permissions(&self) -> Permissions {
        let held = if self.owner { Permissions::everything() } else { self.tenant.clone() };
        match &self.limit {
            Some(limit) => held.intersection(limit),
            None => held,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn perm(s: &str) -> Permission {
        s.parse().unwrap()
    }

    #[test]
    fn permissions_parse_in_every_documented_spelling() {
        assert_eq!(perm("read"), Permission { resource: None, action: Action::Read });
        assert_eq!(perm("clients:read"), Permission { resource: Some(Resource::Clients), action: Action::Read });
        assert_eq!(perm("AUDIT_LOG_READ"), Permission { resource: Some(Resource::AuditLog), action: Action::Read });
        assert_eq!(perm("API_KEYS_ADMIN"), Permission { resource: Some(Resource::ApiKeys), action: Action::Admin });
        assert_eq!(perm("AUDIT_LOG_READ").to_string(), "audit_log:read");
        for bad in ["", "clients", "clients:", "clients:fly", "things:read", "Audit_Log_Read", "read write"] {
            assert!(bad.parse::<Permission>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn write_and_delete_include_read_and_admin_includes_all() {
        let write = perm("clients:write");
        assert!(write.allows(Resource::Clients, Action::Read));
        assert!(!write.allows(Resource::Clients, Action::Delete));
        assert!(!write.allows(Resource::Apis, Action::Read));
        assert!(perm("admin").allows(Resource::SigningKeys, Action::Delete));
        assert!(perm("read").allows(Resource::AuditLog, Action::Read));
        assert!(!perm("read").allows(Resource::AuditLog, Action::Write));
    }

    #[test]
    fn subsets_respect_resource_and_action() {
        let set = |s: &[&str]| Permissions::parse_list(s).unwrap();
        assert!(set(&["clients:read"]).is_subset_of(&set(&["read"])));
        assert!(set(&["clients:read", "apis:write"]).is_subset_of(&set(&["write"])));
        assert!(!set(&["read"]).is_subset_of(&set(&["clients:admin"])));
        assert!(!set(&["clients:delete"]).is_subset_of(&set(&["clients:write"])));
        assert!(set(&["admin"]).is_subset_of(&Permissions::everything()));
    }

    #[test]
    fn team_roles_reach_their_team_only() {
        let reach = Reach { teams: vec![("t1".into(), TeamRole::Viewer)], ..Reach::default() };
        let in_t1 = Target::of(Resource::Clients).in_team(Some("t1"));
        let in_t2 = Target::of(Resource::Clients).in_team(Some("t2"));
        assert_eq!(reach.check(in_t1, Action::Read), Ok(()));
        assert_eq!(reach.check(in_t1, Action::Delete), Err(Denied::Forbidden));
        assert_eq!(reach.check(in_t2, Action::Read), Err(Denied::NotFound));
        assert_eq!(reach.check(Target::of(Resource::Clients), Action::Read), Err(Denied::NotFound));
        assert_eq!(reach.listing(Resource::Clients), Ok(Listing { teams: vec!["t1".into()], ..Listing::default() }));
        assert_eq!(reach.listing(Resource::AuditLog), Err(Denied::Forbidden));
        assert_eq!(reach.check_create(Resource::Clients, Some("t1")), Err(Denied::Forbidden));
        assert_eq!(reach.check_create(Resource::Clients, Some("t2")), Err(Denied::NotFound));
    }

    #[test]
    fn tenant_permissions_see_everything_they_name() {
        let reach = Reach { tenant: Permissions::parse_list(["clients:read"]).unwrap(), ..Reach::default() };
        let client = Target::of(Resource::Clients).in_team(Some("t1"));
        assert_eq!(reach.check(client, Action::Read), Ok(()));
        assert_eq!(reach.check(client, Action::Write), Err(Denied::Forbidden));
        assert_eq!(reach.check(Target::of(Resource::Apis), Action::Read), Err(Denied::NotFound));
        assert_eq!(reach.listing(Resource::Apis), Err(Denied::Forbidden));
    }

    #[test]
    fn permission_sets_meet_in_what_both_allow() {
        let set = |s: &[&str]| Permissions::parse_list(s).unwrap();
        assert_eq!(set(&["admin"]).intersection(&set(&["clients:read"])), set(&["clients:read"]));
        assert_eq!(set(&["write"]).intersection(&set(&["delete"])), set(&["read"]));
        assert_eq!(set(&["clients:admin"]).intersection(&set(&["apis:admin"])), set(&[]));
        assert_eq!(set(&["read", "clients:write"]).intersection(&set(&["write"])), set(&["read", "clients:write"]));
        assert_eq!(set(&["admin"]).intersection(&set(&["read", "read"])), set(&["read"]));
        assert_eq!(
            Permissions::from_scopes(["openid", "read", "clients:write", "x:y"]),
            set(&["read", "clients:write"])
        );
    }

    #[test]
    fn a_limit_narrows_an_owner_without_revealing_more() {
        let reach = Reach::owner().limited_to(Permissions::from_scopes(["clients:read"]));
        let client = Target::of(Resource::Clients);
        assert_eq!(reach.check(client, Action::Read), Ok(()));
        assert_eq!(reach.check(client, Action::Write), Err(Denied::Forbidden));
        assert_eq!(reach.listing(Resource::Apis), Err(Denied::Forbidden));
        assert_eq!(reach.check_create(Resource::Clients, None), Err(Denied::Forbidden));
        assert!(!reach.is_owner());
        assert!(Reach::owner().limited_to(Permissions::everything()).is_owner());
        assert_eq!(reach.tenant_permissions(), Permissions::parse_list(["clients:read"]).unwrap());

        // A member's token never reaches past the member, whatever its scopes.
        let member = Reach::of_person("u1", false, [("t1".to_owned(), "editor".to_owned())])
            .limited_to(Permissions::from_scopes(["admin"]));
        assert_eq!(
            member.check(Target::of(Resource::Clients).in_team(Some("t2")), Action::Read),
            Err(Denied::NotFound)
        );
        assert_eq!(member.check(Target::of(Resource::Clients).in_team(Some("t1")), Action::Write), Ok(()));
        let reader = Reach::of_person("u1", false, [("t1".to_owned(), "editor".to_owned())])
            .limited_to(Permissions::from_scopes(["read"]));
        assert_eq!(
            reader.check(Target::of(Resource::Clients).in_team(Some("t1")), Action::Write),
            Err(Denied::Forbidden)
        );
        assert_eq!(
            reader.check(Target::of(Resource::Clients).in_team(Some("t2")), Action::Write),
            Err(Denied::NotFound)
        );
        assert_eq!(reader.check(Target::of(Resource::ApiKeys).of_user(Some("u1")), Action::Read), Ok(()));
        assert_eq!(
            reader.check(Target::of(Resource::ApiKeys).of_user(Some("u1")), Action::Delete),
            Err(Denied::Forbidden)
        );
    }

    #[test]
    fn a_personal_key_reaches_its_own_things() {
        let reach = Reach { user: Some("u1".into()), ..Reach::default() };
        let own_key = Target::of(Resource::ApiKeys).of_user(Some("u1"));
        let other_key = Target::of(Resource::ApiKeys).of_user(Some("u2"));
        assert_eq!(reach.check(own_key, Action::Delete), Ok(()));
        assert_eq!(reach.check(other_key, Action::Read), Err(Denied::NotFound));
        assert_eq!(
            reach.check(Target::of(Resource::Users).of_user(Some("u1")), Action::Delete),
            Err(Denied::Forbidden)
        );
        assert_eq!(reach.listing(Resource::Consents), Ok(Listing { user: Some("u1".into()), ..Listing::default() }));
    }
}
