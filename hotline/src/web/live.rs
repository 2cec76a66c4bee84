//! Live updates for the console over server-sent events (one long GET per page).
//!
//! `GET /api/v1/console/events[?seat=8001]` streams:
//! - `hello` once, when the stream is open (the page knows it is live);
//! - `acd` for every queue/agent event (the page re-reads `/api/v1/acd`, which is the truth;
//!   the event only says "something changed", so a lost event costs nothing but a refresh);
//! - `call` for call events (answered, bridged, held, transferred, ended);
//! - `alert` (administrators and supervisors only) when a health alert is raised, repeated,
//!   cleared or acknowledged (the page re-reads `/api/v1/alerts`);
//! - `pop` — the screen-pop — when `seat` is given and that seat starts ringing: the caller's
//!   number (masked for roles without the right), the IVR path, the wait, the CRM contact
//!   with its latest interactions and the bidder records on that number (masked likewise).
//!
//! The bus drops events for a subscriber that falls behind; the stream then says `lagged`
//! and the page re-reads everything.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::Method;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::stream::{self, Stream};
use hotline_core::Role;
use hotline_core::events::Event;
use hotline_core::mask::mask_phone;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use crate::http::AppState;
use crate::http::access::{Access, ApiBuilder, CurrentUser};
use crate::http::error::{ApiError, ApiQuery, ApiResult};

const WATCH: &[Role] = &[
    Role::Admin,
    Role::Supervisor,
    Role::Agent,
    Role::ComplaintOfficer,
];

pub fn routes(b: ApiBuilder) -> ApiBuilder {
    b.route(
        Method::GET,
        "/api/v1/console/events",
        Access::Roles(WATCH),
        "console",
        "控制台实时事件（SSE：队列变化、通话事件、来电弹屏）",
        events,
    )
}

#[derive(Debug, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct EventsQuery {
    /// The seat this desktop works at: its screen-pops are sent.
    seat: Option<String>,
}

async fn events(
    State(state): State<AppState>,
    me: CurrentUser,
    ApiQuery(q): ApiQuery<EventsQuery>,
) -> ApiResult<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>> {
    let bus = state
        .event_bus
        .get()
        .ok_or_else(|| ApiError::Unavailable("实时事件不可用".into()))?;
    let rx = bus.subscribe();
    let seat = q.seat.filter(|s| !s.trim().is_empty());
    let hello = SseEvent::default()
        .event("hello")
        .data(json!({ "seat": seat }).to_string());
    let s = stream::unfold(
        (rx, state, me, seat, Some(hello)),
        |(mut rx, state, me, seat, first)| async move {
            if let Some(ev) = first {
                return Some((Ok(ev), (rx, state, me, seat, None)));
            }
            loop {
                let out = match rx.recv().await {
                    Ok(ev) => translate(&state, &me, seat.as_deref(), ev).await,
                    Err(RecvError::Lagged(n)) => Some(
                        SseEvent::default()
                            .event("lagged")
                            .data(json!({ "missed": n }).to_string()),
                    ),
                    Err(RecvError::Closed) => return None,
                };
                if let Some(ev) = out {
                    return Some((Ok(ev), (rx, state, me, seat, None)));
                }
            }
        },
    );
    Ok(Sse::new(s).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

async fn translate(
    state: &AppState,
    me: &CurrentUser,
    seat: Option<&str>,
    ev: Event,
) -> Option<SseEvent> {
    match ev {
        Event::Acd { kind, json, .. } if kind == "screen_pop" => {
            let pop: Value = serde_json::from_str(&json).ok()?;
            if seat.is_none() || pop["agent"].as_str() != seat {
                return None;
            }
            let data = screen_pop(state, me, pop).await;
            Some(SseEvent::default().event("pop").data(data.to_string()))
        }
        Event::Acd { at, kind, .. } => Some(
            SseEvent::default()
                .event("acd")
                .data(json!({ "at": at, "kind": kind }).to_string()),
        ),
        Event::Call(c) => {
            let v = serde_json::to_value(&c).ok()?;
            // Only what the pages need: never the caller's number on a broadcast stream.
            let slim = json!({
                "kind": v["kind"], "call_id": v["call_id"], "at": v["at"], "seat": v["seat"],
            });
            Some(SseEvent::default().event("call").data(slim.to_string()))
        }
        // Health alerts are for those who watch the system (the alerts API's roles).
        Event::Alert { json, .. } => matches!(me.user.role, Role::Admin | Role::Supervisor)
            .then(|| SseEvent::default().event("alert").data(json)),
        Event::UserLoggedIn { .. } => None,
    }
}

/// Everything the agent sees when a call rings at their seat, masked for their role.
async fn screen_pop(state: &AppState, me: &CurrentUser, pop: Value) -> Value {
    let role = me.user.role;
    let caller = pop["caller"].as_str().unwrap_or_default().to_string();
    let shown = if role.sees_personal_data() {
        caller.clone()
    } else {
        mask_phone(&caller)
    };
    let crm = crate::http::crm::store(state);
    let actor = hotline_crm::Actor::new(me.user.username.clone(), role);
    let mut contact = Value::Null;
    let mut history = Value::Array(Vec::new());
    if !caller.is_empty() {
        match crm.find_contacts(&caller).await {
            Ok(found) => {
                if let Some(c) = found.into_iter().next() {
                    let id = c.contact.id.clone();
                    let view = hotline_crm::store::ContactView {
                        contact: c.contact.masked_for(role),
                        application_codes: c.application_codes,
                    };
                    contact = json!(view);
                    if let Ok(page) = crm.timeline(&actor, &id, 1, 5, false).await {
                        history = json!(page.items);
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "screen-pop: contact lookup failed"),
        }
    }
    let bidders = match hotline_integrations::lookup::screen_pop(&state.db.pool, &caller).await {
        Ok(list) => json!(
            list.into_iter()
                .map(|b| b.for_role(role.sees_personal_data()))
                .collect::<Vec<_>>()
        ),
        Err(e) => {
            tracing::warn!(error = %e, "screen-pop: bidder lookup failed");
            json!([])
        }
    };
    json!({
        "call_id": pop["call_id"],
        "agent": pop["agent"],
        "caller": shown,
        "queue": pop["queue"],
        "ivr_path": pop["ivr_path"],
        "offered_at": pop["offered_at"],
        "wait_ms": pop["wait_ms"],
        "rang_at": pop["rang_at"],
        "sent_at": state.now(),
        "contact": contact,
        "history": history,
        "bidders": bidders,
    })
}
