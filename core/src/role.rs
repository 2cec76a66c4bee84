//! The roles of hotline's users. Permission checks compare against these; the table of
//! which route allows which role lives in one place in the `hotline` crate.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Users, seats, trunk, IVR flows, prompts, hours, backups.
    Admin,
    /// Wallboard, reports, monthly statistics (项目主管).
    Supervisor,
    /// Answers calls and chats (话务坐席).
    Agent,
    /// Handles complaints about agents (投诉专员); the only role that sees them.
    ComplaintOfficer,
    /// Listens to, scores and proofreads recordings (质检).
    QaReviewer,
    /// Auction data, knowledge base, SMS batches (业务人员).
    Business,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Admin,
        Role::Supervisor,
        Role::Agent,
        Role::ComplaintOfficer,
        Role::QaReviewer,
        Role::Business,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Supervisor => "supervisor",
            Role::Agent => "agent",
            Role::ComplaintOfficer => "complaint_officer",
            Role::QaReviewer => "qa_reviewer",
            Role::Business => "business",
        }
    }

    /// The name shown to users in the zh-CN console.
    pub fn label_zh(self) -> &'static str {
        match self {
            Role::Admin => "系统管理员",
            Role::Supervisor => "项目主管",
            Role::Agent => "话务坐席",
            Role::ComplaintOfficer => "投诉专员",
            Role::QaReviewer => "质检员",
            Role::Business => "业务人员",
        }
    }

    /// Whether this role may see full ID and mobile numbers. Everyone else sees them masked.
    pub fn sees_personal_data(self) -> bool {
        matches!(self, Role::Admin | Role::Business | Role::ComplaintOfficer)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error(
    "unknown role `{0}` (expected one of: admin, supervisor, agent, complaint_officer, qa_reviewer, business)"
)]
pub struct UnknownRole(pub String);

impl std::str::FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownRole(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_through_text() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>().unwrap(), r);
        }
        let err = "root".parse::<Role>().unwrap_err();
        assert!(err.to_string().contains("`root`"));
    }
}
