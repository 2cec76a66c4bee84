//! `hotline-ivr`: call logic as pure state machines: IVR flows (menus, collect,
//! self-service), the ACD queue and agent states, the post-call survey, and Chinese "say"
//! (numbers, money, dates) built from prompt fragments.
//!
//! May depend on: `hotline-core` only among hotline's crates (no sibling domain crate); the
//! binary `hotline` wires it to the others through ports and events.
//!
//! Drive contract (sans-IO, DESIGN.md): every engine takes `now` with each input
//! (`handle_*(now, ..)`, `handle_timeout(now)`), reports when it next needs a timer through
//! `poll_timeout()`, and hands out what to do through `poll_command()` / `poll_event()`. No
//! engine spawns, sleeps, reads a clock or touches a socket, so tests run on virtual time.
//!
//! - [`say`]: Chinese numbers, money, dates, times, digit strings → prompt fragments.
//! - [`flow`]: the TOML flow file, its model and validation; [`flow::load_flow_file`].
//! - [`session`]: [`IvrSession`], one call through a flow.
//! - [`bidder`]: the bidder self-service port ([`BidderDirectory`]) and status model.
//! - [`queue`]: the ACD ([`Acd`]): queues, agents, strategies, RONA, wrap-up, announcements.
//! - [`survey`]: the post-call satisfaction survey ([`Survey`]).
//! - [`audio`]: prompt files (WAV/MP3/OGG/FLAC) decoded and resampled to 8 kHz mono, once.
//! - [`prompts`]: the default Mandarin prompt catalogue that validation checks against.

pub mod audio;
pub mod bidder;
pub mod civil;
pub mod flow;
pub mod prompts;
pub mod queue;
pub mod say;
pub mod session;
pub mod survey;

pub use bidder::{BidderDirectory, BidderStatus, BidderTable, LookupError};
pub use flow::{Flow, FlowError, load_flow_file, parse_flow};
pub use queue::{Acd, AcdCommand, AcdConfig, AcdEvent};
pub use session::{CallInfo, Command, IvrSession, LookupOutcome};
pub use survey::{Survey, SurveyCommand, SurveyConfig, SurveyResult};
