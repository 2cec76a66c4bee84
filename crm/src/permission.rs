//! Who may see and change which ticket — pure functions, so the HTTP layer and the store both
//! ask the same rules and the rules are tested without a database.
//!
//! The central rule (seed 10.6, issue 7): a complaint that names an agent is for the
//! complaint desk only. Only `complaint_officer`s see it, and never the agent it names —
//! not even if that agent is also a complaint officer.

use hotline_core::Role;
use serde::{Deserialize, Serialize};

use crate::ticket::TicketKind;

/// The user acting: the username (also the agent id on the ACD), the role and the address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub username: String,
    pub role: Role,
    /// The client address, for the audit log.
    pub remote_addr: String,
}

impl Actor {
    pub fn new(username: impl Into<String>, role: Role) -> Self {
        Self {
            username: username.into(),
            role,
            remote_addr: String::new(),
        }
    }
    pub fn with_addr(mut self, addr: impl Into<String>) -> Self {
        self.remote_addr = addr.into();
        self
    }
    /// The system itself (imports, event mapping).
    pub fn system() -> Self {
        Self::new("system", Role::Admin)
    }
}

/// What the rules need to know about a ticket.
#[derive(Debug, Clone, Copy)]
pub struct TicketFacts<'a> {
    pub kind: TicketKind,
    pub named_agent: Option<&'a str>,
    pub assignee: Option<&'a str>,
    pub created_by: &'a str,
    pub archived: bool,
}

impl TicketFacts<'_> {
    /// A complaint about an agent: handled by the complaint desk only.
    pub fn is_agent_complaint(&self) -> bool {
        self.kind == TicketKind::Complaint && self.named_agent.is_some_and(|a| !a.is_empty())
    }
}

/// May `actor` see this ticket at all?
pub fn can_view_ticket(actor: &Actor, t: &TicketFacts<'_>) -> bool {
    if t.is_agent_complaint() {
        return actor.role == Role::ComplaintOfficer
            && t.named_agent != Some(actor.username.as_str());
    }
    true
}

/// May `actor` edit, comment on, attach to or move this ticket? Archived tickets are
/// read-only for everyone (the store reports them as `Archived` before asking this).
pub fn can_work_ticket(actor: &Actor, t: &TicketFacts<'_>) -> bool {
    if t.archived || !can_view_ticket(actor, t) {
        return false;
    }
    if t.is_agent_complaint() {
        return true; // a complaint officer not named in it
    }
    let own = t.assignee == Some(actor.username.as_str())
        || (t.assignee.is_none() && t.created_by == actor.username);
    match actor.role {
        Role::Admin | Role::Supervisor => true,
        Role::Agent => own,
        Role::Business => {
            own || matches!(
                t.kind,
                TicketKind::DepositAuthorization | TicketKind::RefundRequest
            )
        }
        Role::ComplaintOfficer => own || t.kind == TicketKind::Complaint,
        Role::QaReviewer => false,
    }
}

/// May `actor` assign this ticket to `assignee`? Supervisors and admins assign anyone;
/// others may only take an unassigned ticket they can work on for themselves.
pub fn can_assign(actor: &Actor, t: &TicketFacts<'_>, assignee: &str) -> bool {
    if !can_view_ticket(actor, t) || !can_work_ticket(actor, t) && t.assignee.is_some() {
        return false;
    }
    if t.is_agent_complaint() {
        // within the complaint desk; never to the agent complained about
        return t.named_agent != Some(assignee);
    }
    match actor.role {
        Role::Admin | Role::Supervisor => true,
        Role::QaReviewer => false,
        _ => assignee == actor.username && t.assignee.is_none(),
    }
}

/// May `actor` create a ticket of this kind?
pub fn can_create(actor: &Actor, kind: TicketKind) -> bool {
    match actor.role {
        Role::QaReviewer => false,
        Role::Business => matches!(
            kind,
            TicketKind::DepositAuthorization
                | TicketKind::RefundRequest
                | TicketKind::Inquiry
                | TicketKind::WorkOrder12345
        ),
        _ => true,
    }
}

/// May `actor` decide a deposit-authorisation review? Business staff (and admins).
pub fn can_review_deposit(actor: &Actor) -> bool {
    matches!(actor.role, Role::Business | Role::Admin)
}

/// May `actor` see the complaint desk (lists, counts with names, findings)?
pub fn can_use_complaint_desk(actor: &Actor) -> bool {
    actor.role == Role::ComplaintOfficer
}

/// May `actor` see statistics and reports?
pub fn can_see_statistics(actor: &Actor) -> bool {
    matches!(
        actor.role,
        Role::Admin | Role::Supervisor | Role::ComplaintOfficer
    )
}

/// May `actor` work callback tasks?
pub fn can_work_callbacks(actor: &Actor) -> bool {
    matches!(
        actor.role,
        Role::Admin | Role::Supervisor | Role::Agent | Role::ComplaintOfficer
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts<'a>(
        kind: TicketKind,
        named: Option<&'a str>,
        assignee: Option<&'a str>,
    ) -> TicketFacts<'a> {
        TicketFacts {
            kind,
            named_agent: named,
            assignee,
            created_by: "creator",
            archived: false,
        }
    }

    #[test]
    fn agent_complaints_are_for_the_complaint_desk_only() {
        let t = facts(TicketKind::Complaint, Some("agent7"), None);
        for role in Role::ALL {
            let a = Actor::new("someone", role);
            assert_eq!(
                can_view_ticket(&a, &t),
                role == Role::ComplaintOfficer,
                "{role}"
            );
        }
        // the named agent never sees it, whatever the role
        for role in Role::ALL {
            let me = Actor::new("agent7", role);
            assert!(!can_view_ticket(&me, &t), "{role}");
            assert!(!can_work_ticket(&me, &t), "{role}");
        }
        // the creator (an agent taking the complaint) loses sight of it too
        let creator = Actor::new("creator", Role::Agent);
        assert!(!can_view_ticket(&creator, &t));
        let officer = Actor::new("officer", Role::ComplaintOfficer);
        assert!(can_work_ticket(&officer, &t));
        assert!(can_assign(&officer, &t, "officer2"));
        assert!(!can_assign(&officer, &t, "agent7"));
    }

    #[test]
    fn a_complaint_without_a_named_agent_is_an_ordinary_ticket() {
        let t = facts(TicketKind::Complaint, None, None);
        assert!(can_view_ticket(&Actor::new("a", Role::Agent), &t));
        let t = facts(TicketKind::Complaint, Some(""), None);
        assert!(can_view_ticket(&Actor::new("a", Role::Supervisor), &t));
    }

    #[test]
    fn working_and_assigning_ordinary_tickets() {
        let unassigned = facts(TicketKind::Inquiry, None, None);
        let mine = facts(TicketKind::Inquiry, None, Some("a1"));
        let theirs = facts(TicketKind::Inquiry, None, Some("a2"));
        let a1 = Actor::new("a1", Role::Agent);
        assert!(can_view_ticket(&a1, &theirs));
        assert!(can_work_ticket(&a1, &mine));
        assert!(!can_work_ticket(&a1, &theirs));
        assert!(
            can_assign(&a1, &unassigned, "a1"),
            "an agent takes a free ticket"
        );
        assert!(!can_assign(&a1, &unassigned, "a2"));
        assert!(!can_assign(&a1, &theirs, "a1"));
        let sup = Actor::new("s", Role::Supervisor);
        assert!(can_work_ticket(&sup, &theirs));
        assert!(can_assign(&sup, &theirs, "a1"));
        let archived = TicketFacts {
            archived: true,
            ..mine
        };
        assert!(
            !can_work_ticket(&a1, &archived),
            "archived cases are read-only"
        );
        assert!(!can_work_ticket(&Actor::new("s", Role::Admin), &archived));
        let qa = Actor::new("q", Role::QaReviewer);
        assert!(can_view_ticket(&qa, &theirs));
        assert!(!can_work_ticket(&qa, &theirs));
        assert!(!can_create(&qa, TicketKind::Inquiry));
        let biz = Actor::new("b", Role::Business);
        let dep = facts(TicketKind::DepositAuthorization, None, Some("x"));
        assert!(can_work_ticket(&biz, &dep));
        assert!(!can_work_ticket(&biz, &theirs));
        assert!(can_review_deposit(&biz));
        assert!(!can_review_deposit(&a1));
        assert!(!can_create(&biz, TicketKind::Complaint));
    }

    #[test]
    fn desk_statistics_and_callbacks() {
        assert!(can_use_complaint_desk(&Actor::new(
            "o",
            Role::ComplaintOfficer
        )));
        for role in [Role::Admin, Role::Supervisor, Role::Agent] {
            assert!(!can_use_complaint_desk(&Actor::new("x", role)));
        }
        assert!(can_see_statistics(&Actor::new("s", Role::Supervisor)));
        assert!(!can_see_statistics(&Actor::new("a", Role::Agent)));
        assert!(can_work_callbacks(&Actor::new("a", Role::Agent)));
        assert!(!can_work_callbacks(&Actor::new("q", Role::QaReviewer)));
    }
}
