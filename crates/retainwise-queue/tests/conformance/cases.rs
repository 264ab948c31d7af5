//! The cases. Each takes a [`Backend`], opens its own fixture and panics on a violation.
//! Visibility timeouts are a few hundred milliseconds to keep the suite fast; timing assertions
//! leave generous margins because tests run in parallel on small machines.

use super::{skip_case, Backend};
use retainwise_queue::{
    Delivery, OutgoingMessage, Priority, Queue, QueueConfig, QueueError, QueueStats, Receipt,
};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

const SHORT_VISIBILITY: Duration = Duration::from_millis(300);

fn config(visibility: Duration) -> QueueConfig {
    QueueConfig {
        name: "conformance".to_owned(),
        visibility_timeout: visibility,
        max_receives: 3,
        poll_interval: Duration::from_millis(100),
        migrate: true,
    }
}

fn msg(body: &str) -> OutgoingMessage {
    OutgoingMessage::new(body)
}

async fn receive_one(q: &dyn Queue, wait: Duration) -> Delivery {
    let mut got = q.receive(1, wait).await.expect("receive");
    assert_eq!(
        got.len(),
        1,
        "expected one delivery within {wait:?}, got {got:?}"
    );
    got.pop().unwrap()
}

async fn assert_empty(q: &dyn Queue) {
    let got = q.receive(10, Duration::ZERO).await.expect("receive");
    assert!(got.is_empty(), "expected nothing visible, got {got:?}");
}

fn assert_lease_lost(result: Result<(), QueueError>, id: &str, what: &str) {
    match result {
        Err(QueueError::LeaseLost { message_id }) => {
            assert_eq!(
                message_id.as_deref(),
                Some(id),
                "{what}: LeaseLost names the message"
            )
        }
        other => panic!("{what}: expected LeaseLost, got {other:?}"),
    }
}

fn ms_between(earlier: SystemTime, later: SystemTime) -> i128 {
    match later.duration_since(earlier) {
        Ok(d) => d.as_millis() as i128,
        Err(e) => -(e.duration().as_millis() as i128),
    }
}

pub async fn send_receive_ack(b: &dyn Backend) {
    let f = b.open(config(Duration::from_secs(30)), 1).await;
    let q = f.queue();
    let before = SystemTime::now();
    let id = q.send(&msg("hello")).await.unwrap();
    let d = receive_one(q, Duration::from_secs(1)).await;
    assert_eq!(d.message_id, id);
    assert_eq!(d.body, "hello");
    assert_eq!(d.receive_count, 1);
    assert_eq!(d.priority, Priority::Normal);
    // sent_at comes from the backend's clock with ms precision; same machine, so close to ours.
    assert!(
        ms_between(before, d.sent_at).abs() < 2_000,
        "sent_at {:?}",
        d.sent_at
    );
    assert_empty(q).await;
    q.ack(&d.receipt).await.unwrap();
    assert_lease_lost(q.ack(&d.receipt).await, &id, "second ack");
    assert_empty(q).await;
    assert_eq!(q.stats().await.unwrap(), QueueStats::default());
}

pub async fn receive_returns_at_most_max(b: &dyn Backend) {
    let f = b.open(config(Duration::from_secs(30)), 1).await;
    let q = f.queue();
    for i in 0..5 {
        q.send(&msg(&format!("m{i}"))).await.unwrap();
    }
    assert!(q
        .receive(0, Duration::from_secs(5))
        .await
        .unwrap()
        .is_empty());
    let first = q.receive(3, Duration::from_secs(1)).await.unwrap();
    assert_eq!(first.len(), 3);
    let rest = q.receive(10, Duration::from_secs(1)).await.unwrap();
    assert_eq!(rest.len(), 2);
    let ids: HashSet<_> = first
        .iter()
        .chain(&rest)
        .map(|d| d.message_id.clone())
        .collect();
    assert_eq!(ids.len(), 5);
    let receipts: HashSet<_> = first
        .iter()
        .chain(&rest)
        .map(|d| d.receipt.clone())
        .collect();
    assert_eq!(receipts.len(), 5, "every delivery has its own receipt");
}

pub async fn bodies_round_trip(b: &dyn Backend) {
    let f = b.open(config(Duration::from_secs(30)), 1).await;
    let q = f.queue();
    let big = "x".repeat(256 * 1024);
    let bodies = [
        String::new(),
        r#"{"prediction_id":"p","quote":"it's","nul?":"no"}"#.to_owned(),
        "ünïcödé ✓ 顧客 \n\t".to_owned(),
        big,
    ];
    for body in &bodies {
        q.send(&msg(body)).await.unwrap();
    }
    let got = q.receive(10, Duration::from_secs(1)).await.unwrap();
    let got: HashSet<_> = got.into_iter().map(|d| d.body).collect();
    let want: HashSet<_> = bodies.iter().cloned().collect();
    assert_eq!(got, want);
}

pub async fn long_poll_wakes_on_send(b: &dyn Backend) {
    let mut cfg = config(Duration::from_secs(30));
    // Polling alone would take 10 s: only the wake-up can make this fast.
    cfg.poll_interval = Duration::from_secs(10);
    let f = b.open(cfg, 1).await;
    let q = f.queues[0].clone();
    let sender = {
        let q = q.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            q.send(&msg("late")).await.unwrap()
        })
    };
    let start = Instant::now();
    let got = q.receive(1, Duration::from_secs(5)).await.unwrap();
    let elapsed = start.elapsed();
    let id = sender.await.unwrap();
    assert_eq!(got.len(), 1, "long poll returned nothing after {elapsed:?}");
    assert_eq!(got[0].message_id, id);
    assert!(elapsed < Duration::from_secs(1), "woke after {elapsed:?}");
    assert!(
        elapsed >= Duration::from_millis(90),
        "returned before the send: {elapsed:?}"
    );
}

pub async fn long_poll_wakes_on_committed_send_in(b: &dyn Backend) {
    let mut cfg = config(Duration::from_secs(30));
    cfg.poll_interval = Duration::from_secs(10);
    let f = b.open(cfg, 1).await;
    let q = f.queues[0].clone();
    let pool = f.pool.clone();
    let sender = {
        let q = q.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let mut tx = pool.begin().await.unwrap();
            let id = q.send_in(&mut tx, &msg("in tx")).await.unwrap();
            tx.commit().await.unwrap();
            q.wake();
            id
        })
    };
    let start = Instant::now();
    let got = q.receive(1, Duration::from_secs(5)).await.unwrap();
    let elapsed = start.elapsed();
    let id = sender.await.unwrap();
    assert_eq!(got.len(), 1, "long poll returned nothing after {elapsed:?}");
    assert_eq!(got[0].message_id, id);
    assert!(elapsed < Duration::from_secs(1), "woke after {elapsed:?}");
}

pub async fn empty_receive_waits_then_returns_nothing(b: &dyn Backend) {
    let f = b.open(config(SHORT_VISIBILITY), 1).await;
    let q = f.queue();
    let start = Instant::now();
    let got = q.receive(5, Duration::from_millis(400)).await.unwrap();
    let elapsed = start.elapsed();
    assert!(got.is_empty());
    assert!(
        elapsed >= Duration::from_millis(390),
        "returned early: {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_secs(2),
        "returned late: {elapsed:?}"
    );
    let start = Instant::now();
    assert!(q.receive(5, Duration::ZERO).await.unwrap().is_empty());
    assert!(start.elapsed() < Duration::from_secs(1));
}

pub async fn visibility_expiry_redelivers_with_new_receipt(b: &dyn Backend) {
    let f = b.open(config(SHORT_VISIBILITY), 1).await;
    let q = f.queue();
    let id = q.send(&msg("job")).await.unwrap();
    let first = receive_one(q, Duration::from_secs(1)).await;
    let leased_at = Instant::now();
    assert_empty(q).await;
    // Long-polls across the expiry: the receiver must notice the lease ran out by itself.
    let second = receive_one(q, Duration::from_secs(3)).await;
    let waited = leased_at.elapsed();
    assert!(
        waited >= Duration::from_millis(250),
        "redelivered after {waited:?}"
    );
    assert!(
        waited < Duration::from_millis(1500),
        "redelivered only after {waited:?}"
    );
    assert_eq!(second.message_id, id);
    assert_eq!(second.receive_count, 2);
    assert_ne!(second.receipt, first.receipt);
    assert_eq!(second.sent_at, first.sent_at, "redelivery keeps sent_at");
}

pub async fn extend_keeps_message_invisible(b: &dyn Backend) {
    let f = b.open(config(SHORT_VISIBILITY), 1).await;
    let q = f.queue();
    q.send(&msg("long job")).await.unwrap();
    let d = receive_one(q, Duration::from_secs(1)).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    q.extend(&d.receipt, Duration::from_secs(2)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await; // past the original 300 ms
    assert_empty(q).await;
    let s = q.stats().await.unwrap();
    assert_eq!((s.depth, s.in_flight), (0, 1));
    q.ack(&d.receipt).await.unwrap();
    assert_eq!(q.stats().await.unwrap(), QueueStats::default());
}

pub async fn stale_receipt_is_rejected_and_deletes_nothing(b: &dyn Backend) {
    let f = b.open(config(SHORT_VISIBILITY), 1).await;
    let q = f.queue();
    let id = q.send(&msg("contested")).await.unwrap();
    let old = receive_one(q, Duration::from_secs(1)).await;
    let new = receive_one(q, Duration::from_secs(3)).await; // after the lease expired
    assert_eq!(new.receive_count, 2);

    assert_lease_lost(q.ack(&old.receipt).await, &id, "ack");
    assert_lease_lost(
        q.extend(&old.receipt, Duration::from_secs(60)).await,
        &id,
        "extend",
    );
    assert_lease_lost(q.nack(&old.receipt, Duration::ZERO, "x").await, &id, "nack");
    assert_lease_lost(q.dead_letter(&old.receipt, "x").await, &id, "dead_letter");
    let s = q.stats().await.unwrap();
    assert_eq!(
        (s.depth, s.in_flight, s.delayed, s.dead),
        (0, 1, 0, 0),
        "{s:?}"
    );
    assert!(q.dead(10).await.unwrap().is_empty());

    // Garbage is never current either.
    for token in [
        "",
        "nonsense",
        "a.b",
        ".",
        &new.receipt.as_str().replace('.', ""),
    ] {
        let err = q.ack(&Receipt::new(token)).await.unwrap_err();
        assert!(err.is_lease_lost(), "{token:?}: {err:?}");
    }

    q.ack(&new.receipt).await.unwrap();
    assert_eq!(q.stats().await.unwrap(), QueueStats::default());
}

pub async fn nack_makes_visible_after_delay(b: &dyn Backend) {
    let f = b.open(config(Duration::from_secs(30)), 1).await;
    let q = f.queue();
    let id = q.send(&msg("flaky")).await.unwrap();
    let d = receive_one(q, Duration::from_secs(1)).await;
    // 2 s: long enough that the checks below finish inside the delay on a loaded machine
    // (300 ms once did not), short enough to keep the suite quick.
    q.nack(&d.receipt, Duration::from_secs(2), "storage down")
        .await
        .unwrap();
    let nacked_at = Instant::now();
    assert_lease_lost(q.ack(&d.receipt).await, &id, "ack after nack");
    assert_empty(q).await;
    let s = q.stats().await.unwrap();
    assert_eq!((s.depth, s.in_flight, s.delayed), (0, 0, 1), "{s:?}");
    let again = receive_one(q, Duration::from_secs(6)).await;
    let waited = nacked_at.elapsed();
    assert!(
        waited >= Duration::from_millis(1900),
        "visible after {waited:?}"
    );
    assert!(
        waited < Duration::from_millis(4500),
        "visible only after {waited:?}"
    );
    assert_eq!(again.receive_count, 2);
    // Zero delay: at once.
    q.nack(&again.receipt, Duration::ZERO, "again")
        .await
        .unwrap();
    let third = receive_one(q, Duration::from_millis(500)).await;
    assert_eq!(third.receive_count, 3);
}

pub async fn reschedule_delays_and_starts_a_fresh_round_of_receives(b: &dyn Backend) {
    let mut cfg = config(Duration::from_secs(30));
    cfg.max_receives = 2;
    let f = b.open(cfg, 1).await;
    let q = f.queue();
    let id = q.send(&msg("webhook")).await.unwrap();
    let d1 = receive_one(q, Duration::from_secs(1)).await;
    q.nack(&d1.receipt, Duration::ZERO, "first failure")
        .await
        .unwrap();
    let d2 = receive_one(q, Duration::from_secs(1)).await;
    assert_eq!(d2.receive_count, 2);
    // On the last allowed receive: a nack would dead-letter it, a reschedule does not.
    q.reschedule(&d2.receipt, Duration::from_secs(2), "second failure")
        .await
        .unwrap();
    let rescheduled_at = Instant::now();
    assert_lease_lost(
        q.reschedule(&d2.receipt, Duration::ZERO, "x").await,
        &id,
        "reschedule of a stale receipt",
    );
    assert_empty(q).await;
    let s = q.stats().await.unwrap();
    assert_eq!((s.depth, s.in_flight, s.dead), (0, 0, 0), "{s:?}");
    assert_eq!(s.delayed, 1, "{s:?}");
    let d3 = receive_one(q, Duration::from_secs(8)).await;
    let waited = rescheduled_at.elapsed();
    assert!(
        waited >= Duration::from_millis(1900),
        "visible after {waited:?}"
    );
    assert_eq!(d3.message_id, id);
    assert_eq!(d3.body, "webhook");
    assert_eq!(d3.receive_count, 1, "a fresh round of receives");
    // max_receives counts again from there.
    q.nack(&d3.receipt, Duration::ZERO, "third failure")
        .await
        .unwrap();
    let d4 = receive_one(q, Duration::from_secs(2)).await;
    assert_eq!(d4.receive_count, 2);
    q.nack(&d4.receipt, Duration::ZERO, "fourth failure")
        .await
        .unwrap();
    let dead = q.dead(10).await.unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].message_id, id);
    assert_eq!(dead[0].last_error.as_deref(), Some("fourth failure"));
}

pub async fn dead_letter_after_max_receives_keeps_last_error(b: &dyn Backend) {
    let mut cfg = config(Duration::from_secs(30));
    cfg.max_receives = 2;
    let f = b.open(cfg, 1).await;
    let q = f.queue();
    let id = q.send(&msg("poison")).await.unwrap();
    let d1 = receive_one(q, Duration::from_secs(1)).await;
    q.nack(&d1.receipt, Duration::ZERO, "first failure")
        .await
        .unwrap();
    let d2 = receive_one(q, Duration::from_secs(1)).await;
    assert_eq!(d2.receive_count, 2);
    q.nack(&d2.receipt, Duration::ZERO, "second failure")
        .await
        .unwrap();
    let s = q.stats().await.unwrap();
    assert_eq!(
        (s.depth, s.dead),
        (0, 1),
        "used-up message counts as dead: {s:?}"
    );
    assert!(q
        .receive(1, Duration::from_millis(200))
        .await
        .unwrap()
        .is_empty());
    let dead = q.dead(10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].message_id, id);
    assert_eq!(dead[0].body, "poison");
    assert_eq!(dead[0].receive_count, 2);
    assert_eq!(dead[0].last_error.as_deref(), Some("second failure"));
    assert!(dead[0].dead_at >= dead[0].sent_at);
    let s = q.stats().await.unwrap();
    assert_eq!(
        (s.depth, s.in_flight, s.delayed, s.dead),
        (0, 0, 0, 1),
        "{s:?}"
    );
    assert_eq!(s.oldest_age, None, "dead messages do not count for age");
}

pub async fn dead_letter_after_max_receives_by_expiry(b: &dyn Backend) {
    if !b.capabilities().sub_second_visibility {
        return skip_case(
            "dead_letter_after_max_receives_by_expiry",
            "needs 200 ms leases and dead-lettering as soon as the last lease expires",
        );
    }
    let mut cfg = config(Duration::from_millis(200));
    cfg.max_receives = 2;
    let f = b.open(cfg, 1).await;
    let q = f.queue();
    let id = q.send(&msg("crashes the worker")).await.unwrap();
    let d1 = receive_one(q, Duration::from_secs(1)).await;
    let d2 = receive_one(q, Duration::from_secs(2)).await; // worker "crashed": lease expired
    assert_eq!((d1.receive_count, d2.receive_count), (1, 2));
    // After the second lease expires it is dead, not delivered a third time.
    assert!(q
        .receive(1, Duration::from_millis(600))
        .await
        .unwrap()
        .is_empty());
    let dead = q.dead(10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].message_id, id);
    assert_eq!(dead[0].last_error, None);
    assert_lease_lost(q.ack(&d2.receipt).await, &id, "ack after dead-letter");
}

/// A message that used up its receives sits at the head of the queue: a receive of one message
/// must move it to the dead-letter store and still return the live message behind it.
pub async fn spent_message_at_the_head_does_not_hide_live_ones(b: &dyn Backend) {
    let mut cfg = config(Duration::from_secs(30));
    cfg.max_receives = 1;
    let f = b.open(cfg, 1).await;
    let q = f.queue();
    let spent = q.send(&msg("fails once")).await.unwrap();
    let d = receive_one(q, Duration::from_secs(1)).await;
    q.nack(&d.receipt, Duration::ZERO, "the only failure")
        .await
        .unwrap();
    let live = q.send(&msg("fine")).await.unwrap();
    let got = receive_one(q, Duration::from_secs(2)).await;
    assert_eq!(got.message_id, live, "the live message, not {got:?}");
    assert_eq!(got.receive_count, 1);
    q.ack(&got.receipt).await.unwrap();
    let s = q.stats().await.unwrap();
    assert_eq!((s.depth, s.in_flight, s.dead), (0, 0, 1), "{s:?}");
    let dead = q.dead(10).await.unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].message_id, spent);
    assert_eq!(dead[0].last_error.as_deref(), Some("the only failure"));
    assert_eq!(dead[0].receive_count, 1);
}

pub async fn dead_letter_directly(b: &dyn Backend) {
    let f = b.open(config(Duration::from_secs(30)), 1).await;
    let q = f.queue();
    let id = q.send(&msg("not json")).await.unwrap();
    let d = receive_one(q, Duration::from_secs(1)).await;
    q.dead_letter(&d.receipt, "invalid message: expected JSON")
        .await
        .unwrap();
    assert_empty(q).await;
    assert_lease_lost(q.ack(&d.receipt).await, &id, "ack after dead_letter");
    let dead = q.dead(10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].message_id, id);
    assert_eq!(dead[0].receive_count, 1);
    assert_eq!(
        dead[0].last_error.as_deref(),
        Some("invalid message: expected JSON")
    );
    let s = q.stats().await.unwrap();
    assert_eq!((s.depth, s.in_flight, s.delayed, s.dead), (0, 0, 0, 1));
}

pub async fn dead_lists_newest_first(b: &dyn Backend) {
    let f = b.open(config(Duration::from_secs(30)), 1).await;
    let q = f.queue();
    let a = q.send(&msg("a")).await.unwrap();
    let b_id = q.send(&msg("b")).await.unwrap();
    let da = receive_one(q, Duration::from_secs(1)).await;
    let db = receive_one(q, Duration::from_secs(1)).await;
    assert_eq!(
        (da.message_id.as_str(), db.message_id.as_str()),
        (a.as_str(), b_id.as_str())
    );
    q.dead_letter(&da.receipt, "a").await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    q.dead_letter(&db.receipt, "b").await.unwrap();
    let ids: Vec<_> = q
        .dead(10)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.message_id)
        .collect();
    assert_eq!(ids, [b_id.clone(), a]);
    let ids: Vec<_> = q
        .dead(1)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.message_id)
        .collect();
    assert_eq!(ids, [b_id]);
    assert!(q.dead(0).await.unwrap().is_empty());
}

async fn kill_all(q: &dyn Queue, n: usize) -> Vec<Delivery> {
    let got = q.receive(n, Duration::from_secs(1)).await.unwrap();
    assert_eq!(got.len(), n);
    for d in &got {
        q.dead_letter(&d.receipt, "boom").await.unwrap();
    }
    got
}

pub async fn redrive_all_restamps_and_resets(b: &dyn Backend) {
    let f = b.open(config(Duration::from_secs(30)), 1).await;
    let q = f.queue();
    q.send(&msg("one")).await.unwrap();
    q.send(&msg("two")).await.unwrap();
    let killed = kill_all(q, 2).await;
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert_eq!(q.redrive(None).await.unwrap(), 2);
    assert!(q.dead(10).await.unwrap().is_empty());
    assert_eq!(q.redrive(None).await.unwrap(), 0);
    let back = q.receive(10, Duration::from_secs(1)).await.unwrap();
    assert_eq!(back.len(), 2);
    for d in &back {
        let old = killed
            .iter()
            .find(|k| k.message_id == d.message_id)
            .expect("same ids");
        assert_eq!(d.receive_count, 1, "receive_count reset");
        assert_eq!(d.body, old.body);
        assert!(
            ms_between(old.sent_at, d.sent_at) >= 50,
            "sent_at re-stamped: {:?} -> {:?}",
            old.sent_at,
            d.sent_at
        );
    }
}

pub async fn redrive_by_id(b: &dyn Backend) {
    let f = b.open(config(Duration::from_secs(30)), 1).await;
    let q = f.queue();
    for body in ["a", "b", "c"] {
        q.send(&msg(body)).await.unwrap();
    }
    let killed = kill_all(q, 3).await;
    let chosen = killed[1].message_id.clone();
    assert_eq!(q.redrive(Some(&[])).await.unwrap(), 0);
    let ids = [
        chosen.clone(),
        "00000000-0000-0000-0000-000000000000".to_owned(),
    ];
    assert_eq!(q.redrive(Some(&ids)).await.unwrap(), 1);
    let dead: HashSet<_> = q
        .dead(10)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.message_id)
        .collect();
    assert_eq!(dead.len(), 2);
    assert!(!dead.contains(&chosen));
    let back = receive_one(q, Duration::from_secs(1)).await;
    assert_eq!(back.message_id, chosen);
    assert_eq!(back.receive_count, 1);
    assert_empty(q).await;
    // Redriving a live message does nothing.
    assert_eq!(q.redrive(Some(&[chosen])).await.unwrap(), 0);
}

pub async fn priority_high_first_then_oldest(b: &dyn Backend) {
    if !b.capabilities().priority_order {
        return skip_case(
            "priority_high_first_then_oldest",
            "the backend has no priority order",
        );
    }
    let f = b.open(config(Duration::from_secs(30)), 1).await;
    let q = f.queue();
    let sends = [
        ("n1", Priority::Normal),
        ("n2", Priority::Normal),
        ("h1", Priority::High),
        ("n3", Priority::Normal),
        ("h2", Priority::High),
    ];
    for (body, priority) in sends {
        q.send(&msg(body).with_priority(priority)).await.unwrap();
    }
    let want = ["h1", "h2", "n1", "n2", "n3"];
    let batch = q.receive(10, Duration::from_secs(1)).await.unwrap();
    let got: Vec<_> = batch.iter().map(|d| d.body.as_str()).collect();
    assert_eq!(got, want, "one batch");
    assert_eq!(batch[0].priority, Priority::High);
    assert_eq!(batch[4].priority, Priority::Normal);
    for d in &batch {
        q.nack(&d.receipt, Duration::ZERO, "again").await.unwrap();
    }
    let mut got = Vec::new();
    for _ in 0..5 {
        got.push(receive_one(q, Duration::from_secs(1)).await.body);
    }
    assert_eq!(got, want, "one at a time");
}

pub async fn stats_counts_every_bucket(b: &dyn Backend) {
    let f = b.open(config(Duration::from_secs(30)), 1).await;
    let q = f.queue();
    assert_eq!(q.stats().await.unwrap(), QueueStats::default());
    for body in ["a", "b", "c", "d", "e"] {
        q.send(&msg(body)).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(120)).await;
    let s = q.stats().await.unwrap();
    assert_eq!(
        (s.depth, s.in_flight, s.delayed, s.dead),
        (5, 0, 0, 0),
        "{s:?}"
    );
    let age = s.oldest_age.expect("oldest_age");
    assert!(
        age >= Duration::from_millis(100) && age < Duration::from_secs(5),
        "{age:?}"
    );

    let got = q.receive(3, Duration::from_secs(1)).await.unwrap();
    q.nack(&got[0].receipt, Duration::from_secs(60), "later")
        .await
        .unwrap();
    q.dead_letter(&got[1].receipt, "bad").await.unwrap();
    // got[2] stays in flight.
    let s = q.stats().await.unwrap();
    assert_eq!(
        (s.depth, s.in_flight, s.delayed, s.dead),
        (2, 1, 1, 1),
        "{s:?}"
    );
    assert!(s.oldest_age.unwrap() >= Duration::from_millis(100));
}

pub async fn concurrent_receivers_never_share_a_message(b: &dyn Backend) {
    const MESSAGES: usize = 200;
    let mut cfg = config(Duration::from_secs(60)); // no legitimate redelivery in this test
    cfg.poll_interval = Duration::from_millis(20); // the other handle is another "process"
    let f = b.open(cfg, 2).await;
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut workers = Vec::new();
    for worker in 0..4 {
        let q = f.queues[worker % f.queues.len()].clone();
        let seen = seen.clone();
        workers.push(tokio::spawn(async move {
            let deadline = Instant::now() + Duration::from_secs(60);
            while seen.lock().unwrap().len() < MESSAGES && Instant::now() < deadline {
                for d in q.receive(5, Duration::from_millis(100)).await.unwrap() {
                    seen.lock().unwrap().push(d.message_id.clone());
                    q.ack(&d.receipt).await.unwrap();
                }
            }
        }));
    }
    let mut sent = HashSet::new();
    for i in 0..MESSAGES {
        sent.insert(f.queue().send(&msg(&format!("m{i}"))).await.unwrap());
    }
    for w in workers {
        w.await.unwrap();
    }
    let seen = seen.lock().unwrap().clone();
    let unique: HashSet<_> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "a message was delivered twice");
    assert_eq!(unique, sent, "messages lost or invented");
    assert_eq!(f.queue().stats().await.unwrap(), QueueStats::default());
}

pub async fn send_in_rolled_back_sends_nothing(b: &dyn Backend) {
    let f = b.open(config(Duration::from_secs(30)), 1).await;
    let q = f.queue();
    let mut tx = f.pool.begin().await.unwrap();
    q.send_in(&mut tx, &msg("never")).await.unwrap();
    tx.rollback().await.unwrap();
    q.wake();
    assert_empty(q).await;
    assert_eq!(q.stats().await.unwrap(), QueueStats::default());

    let mut tx = f.pool.begin().await.unwrap();
    let id = q.send_in(&mut tx, &msg("committed")).await.unwrap();
    tx.commit().await.unwrap();
    q.wake();
    let d = receive_one(q, Duration::from_secs(1)).await;
    assert_eq!(d.message_id, id);
}

/// Receives until `n` deliveries arrived (a backend may return fewer than asked per call).
async fn receive_n(q: &dyn Queue, n: usize) -> Vec<Delivery> {
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while got.len() < n && Instant::now() < deadline {
        got.extend(
            q.receive(n - got.len(), Duration::from_secs(1))
                .await
                .unwrap(),
        );
    }
    assert_eq!(got.len(), n, "received {} of {n}", got.len());
    got
}

pub async fn ack_many_acks_current_receipts_and_reports_stale_ones(b: &dyn Backend) {
    let f = b.open(config(Duration::from_secs(30)), 1).await;
    let q = f.queue();
    for i in 0..4 {
        q.send(&msg(&format!("m{i}"))).await.unwrap();
    }
    let mut got = receive_n(q, 4).await;
    got.sort_by(|a, b| a.body.cmp(&b.body));
    // m2 is handed back and received again: its first receipt is stale.
    q.nack(&got[2].receipt, Duration::ZERO, "retry")
        .await
        .unwrap();
    let again = receive_one(q, Duration::from_secs(3)).await;
    assert_eq!(again.message_id, got[2].message_id);

    let receipts = [
        got[0].receipt.clone(),
        got[1].receipt.clone(),
        got[2].receipt.clone(), // stale
        got[3].receipt.clone(),
        got[3].receipt.clone(), // repeated: acked once, stale the second time
        Receipt::new("nonsense"),
    ];
    let results = q.ack_many(&receipts).await.unwrap();
    assert_eq!(results.len(), receipts.len(), "one result per receipt");
    let mut results = results.into_iter();
    results.next().unwrap().unwrap();
    results.next().unwrap().unwrap();
    assert_lease_lost(
        results.next().unwrap(),
        &got[2].message_id,
        "stale in ack_many",
    );
    results.next().unwrap().unwrap();
    assert_lease_lost(
        results.next().unwrap(),
        &got[3].message_id,
        "repeat in ack_many",
    );
    let garbage = results.next().unwrap().unwrap_err();
    assert!(garbage.is_lease_lost(), "{garbage:?}");

    // The stale receipt deleted nothing: m2 is still leased to its second receiver.
    let s = q.stats().await.unwrap();
    assert_eq!((s.depth, s.in_flight, s.dead), (0, 1, 0), "{s:?}");
    assert!(q.ack_many(&[]).await.unwrap().is_empty());
    let last = q
        .ack_many(std::slice::from_ref(&again.receipt))
        .await
        .unwrap();
    assert!(matches!(last.as_slice(), [Ok(())]), "{last:?}");
    assert_eq!(q.stats().await.unwrap(), QueueStats::default());
}

/// SQL backends: more receipts than one statement takes (512), each acked exactly once.
pub async fn ack_many_spans_statements(b: &dyn Backend) {
    const N: usize = 700;
    let f = b.open(config(Duration::from_secs(60)), 1).await;
    let q = f.queue();
    for i in 0..N {
        q.send(&msg(&format!("m{i}"))).await.unwrap();
    }
    let got = receive_n(q, N).await;
    // Stale receipts mixed in: a second receive of the first 10 after a nack.
    for d in &got[..10] {
        q.nack(&d.receipt, Duration::ZERO, "again").await.unwrap();
    }
    let again = receive_n(q, 10).await;
    let mut receipts: Vec<Receipt> = got.iter().map(|d| d.receipt.clone()).collect();
    receipts.extend(again.iter().map(|d| d.receipt.clone()));
    let results = q.ack_many(&receipts).await.unwrap();
    assert_eq!(results.len(), N + 10);
    let stale = results.iter().filter(|r| r.is_err()).count();
    assert_eq!(
        stale, 10,
        "exactly the nacked deliveries' first receipts are stale"
    );
    assert!(results[..10]
        .iter()
        .all(|r| r.as_ref().unwrap_err().is_lease_lost()));
    assert!(results[10..].iter().all(|r| r.is_ok()));
    assert_eq!(q.stats().await.unwrap(), QueueStats::default());
}

pub async fn ack_batcher_acks_current_receipts_and_reports_stale_ones(b: &dyn Backend) {
    let f = b.open(config(Duration::from_secs(30)), 1).await;
    let q = f.queues[0].clone();
    for i in 0..5 {
        q.send(&msg(&format!("m{i}"))).await.unwrap();
    }
    let got = receive_n(q.as_ref(), 5).await;
    q.nack(&got[0].receipt, Duration::ZERO, "retry")
        .await
        .unwrap();
    let again = receive_one(q.as_ref(), Duration::from_secs(3)).await;

    let batcher = retainwise_queue::AckBatcher::spawn(q.clone(), Duration::from_millis(5), 3);
    let stale = batcher.ack(got[0].receipt.clone());
    let current: Vec<_> = got[1..]
        .iter()
        .chain([&again])
        .map(|d| batcher.ack(d.receipt.clone()))
        .collect();
    assert_lease_lost(
        stale.wait().await,
        &got[0].message_id,
        "stale via AckBatcher",
    );
    for pending in current {
        pending.wait().await.unwrap();
    }
    // Fire and forget, then close: close flushes what is queued.
    q.send(&msg("last")).await.unwrap();
    let last = receive_one(q.as_ref(), Duration::from_secs(3)).await;
    drop(batcher.ack(last.receipt.clone()));
    batcher.close().await;
    assert_eq!(q.stats().await.unwrap(), QueueStats::default());
}

pub async fn release_hands_back_at_once_without_counting(b: &dyn Backend) {
    let f = b.open(config(Duration::from_secs(30)), 1).await;
    let q = f.queue();
    let id = q.send(&msg("not started")).await.unwrap();
    let first = receive_one(q, Duration::from_secs(1)).await;
    assert_eq!(first.receive_count, 1);
    q.release(&first.receipt, Duration::ZERO).await.unwrap();
    assert_lease_lost(q.ack(&first.receipt).await, &id, "ack after release");
    assert_lease_lost(
        q.release(&first.receipt, Duration::ZERO).await,
        &id,
        "release of a stale receipt",
    );
    // Visible at once, not after the 30 s visibility timeout.
    let again = receive_one(q, Duration::from_secs(2)).await;
    assert_eq!(again.message_id, id);
    if b.capabilities().uncounted_release {
        assert_eq!(
            again.receive_count, 1,
            "the released receive is not counted"
        );
    } else {
        skip_case(
            "release_hands_back_at_once_without_counting (count)",
            "the backend counts every receive itself",
        );
    }
    q.ack(&again.receipt).await.unwrap();
}

pub async fn receive_until_ends_its_wait_when_stopped(b: &dyn Backend) {
    let f = b.open(config(Duration::from_secs(30)), 1).await;
    let q = f.queue();
    let stop = tokio_util::sync::CancellationToken::new();
    let stopper = {
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            stop.cancel();
        })
    };
    let started = Instant::now();
    let got = q
        .receive_until(1, Duration::from_secs(60), &stop)
        .await
        .unwrap();
    stopper.await.unwrap();
    assert!(got.is_empty(), "{got:?}");
    // A generous bound that only proves it did not wait out the minute.
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "stopped after {:?}",
        started.elapsed()
    );
    // Stopped before it starts: nothing is claimed, so nothing is left leased.
    q.send(&msg("after stop")).await.unwrap();
    let got = q
        .receive_until(1, Duration::from_secs(1), &stop)
        .await
        .unwrap();
    assert!(got.is_empty(), "a stopped receive claims nothing: {got:?}");
    let fresh = tokio_util::sync::CancellationToken::new();
    let d = q
        .receive_until(1, Duration::from_secs(2), &fresh)
        .await
        .unwrap();
    assert_eq!(d.len(), 1, "the message was never leased: {d:?}");
    assert_eq!(d[0].receive_count, 1);
}
