//! Stop strings, checked on a short decoded tail each step and applied exactly to the final text.

/// Byte offset of the earliest occurrence of any stop string in `text`.
pub fn first_stop(text: &str, stops: &[String]) -> Option<usize> {
    stops.iter().filter_map(|s| text.find(s.as_str())).min()
}

/// How many trailing tokens to decode to see any stop string completed by the latest token: a token adds at
/// least one byte (except rare empty pieces), so a stop string of `b` bytes spans at most `b` tokens, plus slack
/// for multi-token characters.
pub fn tail_tokens(stops: &[String]) -> usize {
    stops.iter().map(String::len).max().unwrap_or(0) + 4
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earliest_stop_wins() {
        let stops = vec!["\n\n".to_string(), "Question:".to_string()];
        assert_eq!(first_stop("a Question: b\n\n", &stops), Some(2));
        assert_eq!(first_stop("no stop here", &stops), None);
        assert_eq!(tail_tokens(&stops), 13);
    }
}
