//! `backoff` stays within its documented bounds and actually jitters.

use retainwise_queue::backoff;
use std::time::Duration;

#[test]
fn backoff_stays_within_full_jitter_bounds() {
    let base = Duration::from_millis(100);
    let max = Duration::from_secs(5);
    for attempt in 0..=40u32 {
        let cap = if attempt <= 1 {
            base
        } else if attempt >= 8 {
            max
        } else {
            (base * 2u32.pow(attempt - 1)).min(max)
        };
        let samples: Vec<_> = (0..500).map(|_| backoff(attempt, base, max)).collect();
        assert!(
            samples.iter().all(|d| *d <= cap),
            "attempt {attempt}: above {cap:?}"
        );
        let mean = samples.iter().sum::<Duration>() / samples.len() as u32;
        // Uniform on [0, cap]: mean cap/2; 500 samples put it well inside [0.35, 0.65] cap.
        assert!(
            mean > cap.mul_f64(0.35) && mean < cap.mul_f64(0.65),
            "attempt {attempt}: mean {mean:?} of cap {cap:?}"
        );
        let distinct: std::collections::HashSet<_> = samples.iter().collect();
        assert!(distinct.len() > 100, "attempt {attempt}: not jittered");
    }
}

#[test]
fn backoff_edge_cases() {
    assert_eq!(
        backoff(5, Duration::ZERO, Duration::from_secs(1)),
        Duration::ZERO
    );
    assert_eq!(
        backoff(5, Duration::from_secs(1), Duration::ZERO),
        Duration::ZERO
    );
    assert!(backoff(u32::MAX, Duration::MAX, Duration::MAX) <= Duration::MAX);
    assert!(backoff(3, Duration::MAX, Duration::from_secs(7)) <= Duration::from_secs(7));
}
