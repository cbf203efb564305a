//! The hallsync replication protocol, sans-IO: messages in, messages out,
//! store access through the [`Replica`] trait, time passed in. No sockets,
//! no clock, no threads, so the protocol runs the same under the real QUIC
//! driver (`hallsync-net`) and under the deterministic simulation in
//! `tests/sim.rs`.
//!
//! A session runs both directions over one ordered channel. See
//! [`session`] for the flow and [`msg`] for the wire form and its bounds.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod msg;
pub mod session;

pub use msg::{decode, encode, FrameError, Hash, Hello, Msg, Payload, Want};
pub use session::{
    ApplyError, Config, Endpoint, Entry, Position, Received, Refusal, Replica, Session,
    SessionError, Stats,
};
