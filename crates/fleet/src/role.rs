//! The roles one process can run.

/// A role one process can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Scanner,
    Chunker,
    Database,
    Errors,
    Notifications,
    /// Republishes the lost work items of files that made no progress.
    Reconciler,
    /// The read API, dashboard and docs (HTTP; needs no broker connection of its own).
    Api,
}

impl Role {
    pub const ALL: [Role; 7] = [
        Role::Scanner,
        Role::Chunker,
        Role::Database,
        Role::Errors,
        Role::Notifications,
        Role::Reconciler,
        Role::Api,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Role::Scanner => "scanner",
            Role::Chunker => "chunker",
            Role::Database => "database",
            Role::Errors => "errors",
            Role::Notifications => "notifications",
            Role::Reconciler => "reconciler",
            Role::Api => "api",
        }
    }

    /// Parses a role name as given on the command line.
    pub fn parse(name: &str) -> Option<Vec<Role>> {
        match name {
            "all" => Some(Role::ALL.to_vec()),
            "scanner" => Some(vec![Role::Scanner]),
            "chunker" | "validator" => Some(vec![Role::Chunker]),
            "database" | "loader" => Some(vec![Role::Database]),
            "errors" => Some(vec![Role::Errors]),
            "notifications" => Some(vec![Role::Notifications]),
            "reconciler" => Some(vec![Role::Reconciler]),
            "api" => Some(vec![Role::Api]),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_parses_from_its_name_and_all_names_every_role() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.name()), Some(vec![role]));
        }
        assert_eq!(Role::parse("all").unwrap().len(), Role::ALL.len());
        assert_eq!(Role::parse("validator"), Some(vec![Role::Chunker]));
        assert_eq!(Role::parse("loader"), Some(vec![Role::Database]));
        assert_eq!(Role::parse("nope"), None);
    }
}
