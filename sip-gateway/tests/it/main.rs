//! Integration tests: the gateway in-process on 127.0.0.1 with a random port, driven by the
//! real `sipp` (Debian sip-tester) and by raw SIP over UDP/TCP.

mod app_calls;
mod calls;
mod dialogs;
mod harness;
mod outbound_policy;
mod registrar;
mod robustness;
mod rsipstack_dialog_layer;
mod transactions;
