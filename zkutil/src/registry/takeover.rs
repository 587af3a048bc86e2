//! `Takeover`: whether a registration may replace a node of its endpoint
//! that another session holds, and the proof it needs.

/// Whether a registration may replace a node of its endpoint that another
/// session holds.
///
/// ZooKeeper keeps a crashed process's ephemeral node until its session
/// times out, so a node with a live owner session may be a leftover; but it
/// may as well be a live server. Replacing it needs proof that its holder is
/// gone, or an operator's decision.
///
/// # Example
///
/// ```
/// use zkutil::{BasePath, Registrar, Takeover};
/// // A server that has just bound its port here may replace a node that an
/// // earlier run on this host left behind; `Force` is an operator's decision.
/// let registrar = Registrar::new(BasePath::from_static("/go_servers")).takeover(Takeover::SameHost);
/// # let _ = registrar;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Takeover {
    /// Never: registering fails with [`Error::Taken`](crate::Error::Taken), naming the owner.
    #[default]
    Refuse,
    /// When the node's metadata names this host: for a server that has just
    /// bound the endpoint's port on this host, which proves that the node's
    /// holder (an earlier run here, the port now ours) is gone.
    SameHost,
    /// Whoever holds it (an operator's `--force`).
    Force,
}

impl Takeover {
    /// Whether the node holding `data` may be replaced: with
    /// [`Takeover::SameHost`], when its record names this host where its
    /// format keeps the registrant's host name.
    pub(super) fn allows(self, data: &[u8]) -> bool {
        match self {
            Takeover::Refuse => false,
            Takeover::Force => true,
            Takeover::SameHost => crate::format::host_of(data)
                .is_some_and(|host| host == crate::metadata::this_host()),
        }
    }
}
