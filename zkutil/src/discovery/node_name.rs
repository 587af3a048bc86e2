//! [`NodeName`]: an instance's child name, kept inside the instance when
//! short.

use std::sync::Arc;

/// The longest name kept inline: every IPv4 `ip:port` (at most 21 bytes)
/// and most instance ids fit.
const INLINE: usize = 22;

/// A child's name under its base path. Most are plain `ip:port` names of
/// at most 21 bytes: those live in the 24 bytes of the value itself, with
/// no allocation of their own. A registry of 100,000 plain instances
/// otherwise held 100,000 small heap blocks of about 48 bytes each (issue
/// 33: memory per instance). Longer names (Curator's UUIDs, IPv6) are
/// shared, as before.
#[derive(Clone)]
pub(super) enum NodeName {
    Inline { len: u8, bytes: [u8; INLINE] },
    Shared(Arc<str>),
}

impl From<&str> for NodeName {
    fn from(name: &str) -> NodeName {
        let mut bytes = [0; INLINE];
        match bytes.get_mut(..name.len()) {
            Some(start) => {
                start.copy_from_slice(name.as_bytes());
                NodeName::Inline {
                    // At most INLINE, which fits.
                    len: name.len() as u8,
                    bytes,
                }
            }
            None => NodeName::Shared(name.into()),
        }
    }
}

impl std::ops::Deref for NodeName {
    type Target = str;

    fn deref(&self) -> &str {
        match self {
            NodeName::Inline { len, bytes } => bytes
                .get(..usize::from(*len))
                .and_then(|b| std::str::from_utf8(b).ok())
                .unwrap_or_default(),
            NodeName::Shared(name) => name,
        }
    }
}

impl PartialEq for NodeName {
    fn eq(&self, other: &NodeName) -> bool {
        **self == **other
    }
}

impl Eq for NodeName {}

impl std::fmt::Debug for NodeName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&**self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_are_kept_inline_and_long_ones_shared_and_both_read_back() {
        for name in [
            "",
            "10.0.0.1:80",
            "255.255.255.255:65535",
            "0123456789012345678901",
            "01234567890123456789012",
            "member_0000000001",
            "c0ffee00-1111-2222-3333-444455556666",
            "[2001:db8::1]:8080",
            "héllo:1",
        ] {
            let node = NodeName::from(name);
            assert_eq!(&*node, name);
            assert_eq!(
                matches!(node, NodeName::Inline { .. }),
                name.len() <= INLINE,
                "{name}"
            );
        }
        assert_eq!(std::mem::size_of::<NodeName>(), 24);
    }
}
