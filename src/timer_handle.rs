//! User timer handles, as returned by `Hub::add_timer` and given to
//! `Handler::on_timer`.

/// A user timer, as returned by [`crate::Hub::add_timer`] and given to `on_timer`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimerHandle(pub(crate) u64);
