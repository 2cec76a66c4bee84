//! `hotline-integrations`: the auction system's bidder records, Bohai Bank's deposit-flow and
//! refund-failure files, the monthly auction calendar, the IVR self-service and screen-pop
//! lookups, 12345 work orders with the outbox of replies, the WeChat Official Account
//! bridge ([`wechat`]) and the online-chat conversations shared by WeChat and the website
//! widget ([`chat`]), and SMS notices ([`sms`]).
//!
//! May depend on: `hotline-core` only among hotline's crates (no sibling domain crate); the
//! binary `hotline` wires it to the others (HTTP, CLI, IVR port, CRM tickets).
//!
//! Drive contract: storage functions take the `AnyPool`, `now` and an injected `Rng`; logic
//! with time (the self-service gate, the signature check, the backoff) is sans-IO and takes
//! `now`; [`workorder::OutboxDriver`] and [`wechat::api::WechatApi`] are the parts that do
//! HTTP. Personal data (ID numbers, mobiles) is never logged; [`bidders::Bidder::masked`] is what roles without
//! `Role::sees_personal_data()` see. File formats: docs/formats.md.

pub mod bank;
pub mod bidders;
pub mod calendar;
pub mod chat;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod lookup;
pub mod sms;
pub mod table;
pub mod text;
pub mod wechat;
pub mod workorder;

use serde::{Deserialize, Serialize};

pub use error::{IntegrationError, Result};

use bank::{DepositFlowColumns, RefundFailureColumns};
use bidders::ColumnMapping;
use wechat::WechatConfig;
use workorder::Platform12345Config;

/// The configuration of this crate (the `[integrations]` section of hotline.toml).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IntegrationsConfig {
    /// Header texts of the auction system's bidder export.
    pub bidder_columns: ColumnMapping,
    /// Header texts of Bohai Bank's deposit-flow file.
    pub deposit_columns: DepositFlowColumns,
    /// Header texts of Bohai Bank's refund-failure file.
    pub refund_failure_columns: RefundFailureColumns,
    pub platform_12345: Platform12345Config,
    /// The WeChat Official Account (`[integrations.wechat]`).
    pub wechat: WechatConfig,
    /// The website chat widget (`[integrations.web_chat]`).
    pub web_chat: chat::WebChatConfig,
    /// SMS notices: provider, rate, retries, quiet hours, sign (`[integrations.sms]`).
    pub sms: sms::SmsConfig,
}
