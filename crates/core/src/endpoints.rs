//! The order in which a client tries a service's endpoints (the nodes of a RabbitMQ
//! cluster): the one that answered last first, then the others in their listed order,
//! wrapping around, each once.

/// Endpoint indexes `0..count` starting at `first` (taken modulo `count`).
pub fn order(count: usize, first: usize) -> impl Iterator<Item = usize> {
    let start = if count == 0 { 0 } else { first % count };
    (0..count).map(move |k| (start + k) % count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_endpoint_is_tried_once_starting_with_the_last_that_answered() {
        assert_eq!(order(3, 0).collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!(order(3, 2).collect::<Vec<_>>(), [2, 0, 1]);
    }

    #[test]
    fn a_remembered_endpoint_past_the_end_wraps_around_and_none_gives_nothing() {
        assert_eq!(order(2, 5).collect::<Vec<_>>(), [1, 0]);
        assert_eq!(order(0, 3).count(), 0);
    }
}
