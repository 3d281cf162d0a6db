//! Roles, agency scopes and the permission table (design 0009, "Roles").

use std::collections::BTreeSet;
use std::fmt;

/// What a user is allowed to do, before agency scoping.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Everything, in every agency (whatever its [`Agencies`] says).
    Admin,
    /// An operator's rights plus evidence locks and the audit log, for its agencies.
    Supervisor,
    /// Live, playback and export, for its agencies.
    Operator,
    /// Live only, for its agencies.
    Viewer,
    /// A service account (an integration such as a video wall), authenticated by API key: live
    /// viewing and reservations for its agencies.
    Service,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Admin,
        Role::Supervisor,
        Role::Operator,
        Role::Viewer,
        Role::Service,
    ];

    /// The stored and displayed name: `admin`, `supervisor`, `operator`, `viewer`, `service`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Supervisor => "supervisor",
            Role::Operator => "operator",
            Role::Viewer => "viewer",
            Role::Service => "service",
        }
    }

    /// The inverse of [`Role::as_str`] (exact, lower case).
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The agencies a user's rights apply to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Agencies {
    /// Every agency, including ones defined later (stored as `*`).
    All,
    /// Only these agency ids (exact, case-sensitive, as in the configuration). Empty: none.
    Only(BTreeSet<String>),
}

impl Agencies {
    /// The marker that stands for [`Agencies::All`] in stored lists and on the command line.
    pub const ALL_MARKER: &'static str = "*";

    pub fn contains(&self, agency: &str) -> bool {
        match self {
            Agencies::All => true,
            Agencies::Only(set) => set.contains(agency),
        }
    }

    /// From a list of agency ids where [`Agencies::ALL_MARKER`] anywhere means all.
    pub fn from_list<I, S>(ids: I) -> Agencies
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut set = BTreeSet::new();
        for id in ids {
            let id = id.into();
            if id == Self::ALL_MARKER {
                return Agencies::All;
            }
            set.insert(id);
        }
        Agencies::Only(set)
    }

    /// The list form: `["*"]` for all, else the ids in order.
    pub fn to_list(&self) -> Vec<String> {
        match self {
            Agencies::All => vec![Self::ALL_MARKER.to_owned()],
            Agencies::Only(set) => set.iter().cloned().collect(),
        }
    }

    fn is_empty(&self) -> bool {
        matches!(self, Agencies::Only(s) if s.is_empty())
    }
}

impl fmt::Display for Agencies {
    /// `*`, or the ids joined with `,` (empty for none).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_list().join(","))
    }
}

/// An authenticated caller: a local user, a service account (API key) or, later, an external
/// IAM identity mapped onto a role and agencies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub user_id: String,
    pub username: String,
    pub role: Role,
    pub agencies: Agencies,
}

/// What a caller wants to do. The API maps each route onto one of these (plus the agency of the
/// camera concerned, when there is one).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Watch a camera live (WHEP, live stats).
    ViewLive,
    /// Reserve, renew and release live streams.
    Reserve,
    /// Recorded timelines, playback, HLS.
    Playback,
    /// Ask for an evidence export.
    Export,
    /// Download a finished export and its manifest.
    DownloadExport,
    /// Create or delete evidence locks.
    EvidenceLock,
    /// Change a camera's recording mode.
    RecordingMode,
    /// Read storage statistics (estate-wide).
    Storage,
    /// Read the audit log.
    Audit,
    /// Administer users and API keys.
    ManageUsers,
    /// List cameras and agencies (results filtered to the caller's agencies).
    Catalog,
}

impl Action {
    pub const ALL: [Action; 11] = [
        Action::ViewLive,
        Action::Reserve,
        Action::Playback,
        Action::Export,
        Action::DownloadExport,
        Action::EvidenceLock,
        Action::RecordingMode,
        Action::Storage,
        Action::Audit,
        Action::ManageUsers,
        Action::Catalog,
    ];
}

/// Whether `role` may do `action` at all (before agency scoping). The role table of design 0009.
fn role_allows(role: Role, action: Action) -> bool {
    use Action::*;
    match role {
        Role::Admin => true,
        Role::Supervisor => matches!(
            action,
            Catalog
                | ViewLive
                | Reserve
                | Playback
                | Export
                | DownloadExport
                | EvidenceLock
                | Audit
        ),
        Role::Operator => matches!(
            action,
            Catalog | ViewLive | Reserve | Playback | Export | DownloadExport
        ),
        Role::Viewer | Role::Service => matches!(action, Catalog | ViewLive | Reserve),
    }
}

/// Whether `p` may do `action` on something of `agency`.
///
/// - An admin may do everything, in every agency, whatever its [`Agencies`].
/// - Any other role needs `action` in its row of the role table and, when `agency` is given,
///   that agency in its scope.
/// - `agency: None` is for requests not tied to one agency (a listing, an audit query, a
///   storage read): allowed when the role may do `action` in at least one agency; the caller
///   then filters what it returns to `p.agencies`.
///
/// [`Action::RecordingMode`], [`Action::Storage`] and [`Action::ManageUsers`] are admin-only.
pub fn allows(p: &Principal, action: Action, agency: Option<&str>) -> bool {
    if p.role == Role::Admin {
        return true;
    }
    if !role_allows(p.role, action) {
        return false;
    }
    match agency {
        Some(a) => p.agencies.contains(a),
        None => !p.agencies.is_empty(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Action::*;

    fn principal(role: Role, agencies: &[&str]) -> Principal {
        Principal {
            user_id: "u-1".into(),
            username: "someone".into(),
            role,
            agencies: Agencies::from_list(agencies.iter().copied()),
        }
    }

    #[test]
    fn roles_round_trip() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
            assert_eq!(r.to_string(), r.as_str());
        }
        assert_eq!(Role::parse("Admin"), None);
        assert_eq!(Role::parse(""), None);
    }

    #[test]
    fn agencies_lists() {
        assert_eq!(Agencies::from_list(["METRO", "*"]), Agencies::All);
        let a = Agencies::from_list(["METRO", "BUS", "METRO"]);
        assert_eq!(a.to_list(), ["BUS", "METRO"]);
        assert_eq!(a.to_string(), "BUS,METRO");
        assert!(a.contains("BUS") && !a.contains("bus") && !a.contains("DUBAI_POLICE"));
        assert!(Agencies::All.contains("ANYTHING"));
        assert_eq!(Agencies::All.to_list(), ["*"]);
        assert!(!Agencies::from_list(Vec::<String>::new()).contains("METRO"));
    }

    /// The role table: for each role, the actions allowed in one of its agencies. Every action
    /// not listed must be refused.
    const TABLE: &[(Role, &[Action])] = &[
        (Role::Admin, &Action::ALL),
        (
            Role::Supervisor,
            &[
                Catalog,
                ViewLive,
                Reserve,
                Playback,
                Export,
                DownloadExport,
                EvidenceLock,
                Audit,
            ],
        ),
        (
            Role::Operator,
            &[Catalog, ViewLive, Reserve, Playback, Export, DownloadExport],
        ),
        (Role::Viewer, &[Catalog, ViewLive, Reserve]),
        (Role::Service, &[Catalog, ViewLive, Reserve]),
    ];

    #[test]
    fn role_table_in_own_agency_other_agency_and_unscoped() {
        assert_eq!(TABLE.len(), Role::ALL.len());
        for &(role, allowed) in TABLE {
            let p = principal(role, &["METRO"]);
            for action in Action::ALL {
                let want = allowed.contains(&action);
                assert_eq!(
                    allows(&p, action, Some("METRO")),
                    want,
                    "{role} {action:?} in its agency"
                );
                assert_eq!(allows(&p, action, None), want, "{role} {action:?} unscoped");
                // Outside its agencies only an admin may do anything.
                assert_eq!(
                    allows(&p, action, Some("DUBAI_POLICE")),
                    role == Role::Admin,
                    "{role} {action:?} in another agency"
                );
            }
        }
    }

    #[test]
    fn all_agencies_and_no_agencies() {
        for &(role, allowed) in TABLE {
            let all = principal(role, &["*"]);
            let none = principal(role, &[]);
            for action in Action::ALL {
                let want = allowed.contains(&action);
                assert_eq!(allows(&all, action, Some("ANY")), want, "{role} {action:?}");
                assert_eq!(
                    allows(&none, action, Some("ANY")),
                    role == Role::Admin,
                    "{role} {action:?} with no agencies"
                );
                assert_eq!(
                    allows(&none, action, None),
                    role == Role::Admin,
                    "{role} {action:?} unscoped with no agencies"
                );
            }
        }
    }

    #[test]
    fn admin_only_actions() {
        for action in [RecordingMode, Storage, ManageUsers] {
            for role in Role::ALL {
                let p = principal(role, &["*"]);
                assert_eq!(
                    allows(&p, action, Some("METRO")),
                    role == Role::Admin,
                    "{role} {action:?}"
                );
            }
        }
    }
}
