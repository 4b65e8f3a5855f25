//! permessage-deflate (RFC 7692), sans-IO: the negotiation of its
//! parameters in the opening handshake ([`negotiation`] for the server,
//! [`client`] for the client), and the per-message codec ([`codec`]). The
//! decoder inflates compressed messages with an [`Inflater`]
//! ([`Decoder::decode_inflating`](crate::decoder::Decoder::decode_inflating))
//! once [`Decoder::set_compression`](crate::decoder::Decoder::set_compression)
//! says the extension was agreed; [`validate_upgrade`](crate::handshake::validate_upgrade)
//! answers offers when its policy has a [`DeflatePolicy`].
//!
//! - the server side of the negotiation: reading a client's offers (as
//!   browsers send them: Chrome's `permessage-deflate; client_max_window_bits`,
//!   Firefox's and Safari's bare `permessage-deflate`), refusing malformed
//!   ones as RFC 7692 §5.1 and §7.1 require, and answering the first
//!   acceptable one;
//! - compressing a message (raw DEFLATE, the trailing `00 00 ff ff` of a
//!   sync flush removed, §7.2.1) and inflating one with a bound on the
//!   inflated size (never more than the bound is produced or allocated).
//!
//! The design it is built for: with `server_no_context_takeover` (which a
//! server may always answer, §7.1.1.1) the compressed form of a message
//! depends only on the message and the window size, so one compressor per
//! loop serves every socket and a broadcast is compressed once; with
//! `client_no_context_takeover` answered too, one inflater per loop serves
//! every socket. No zlib state then sits on a socket between messages.

pub mod client;
pub mod codec;
pub mod negotiation;

pub use codec::{Compressor, Decompressor, InflateError, Inflater};
pub use negotiation::{negotiate, Agreement, DeflateParams, DeflatePolicy};

/// The extension's registered name.
pub const EXTENSION: &str = "permessage-deflate";
