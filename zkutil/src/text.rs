//! Text from outside the process (znode names, an operator's reason) made
//! fit for a log line.

/// The first 128 characters of `text`: a znode name or a reason may be up
/// to a megabyte, which no log line should carry.
pub(crate) fn truncate(text: &str) -> &str {
    match text.char_indices().nth(128) {
        Some((cut, _)) => &text[..cut],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::truncate;

    #[test]
    fn long_text_is_cut_at_a_character_boundary() {
        assert_eq!(truncate("short"), "short");
        let long = "é".repeat(300);
        assert_eq!(truncate(&long).chars().count(), 128);
    }
}
