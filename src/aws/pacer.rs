//! The AWS pacer: every AWS call this process makes waits here first.
//!
//! - **One budget per account.** `--aws-rate-limit` is the account's budget for zeroscale, not
//!   one process's: each live replica (registered in Postgres, `store::replicas`) takes an equal
//!   share ([`Pacer::set_replicas`]).
//! - **AIMD.** A ThrottlingException halves this replica's rate (at most once a second, so one
//!   burst of throttled calls counts once); every call that is not throttled adds a little back,
//!   about +0.5 calls/s for each second spent at full pace, up to the share.
//! - **Changes first.** Calls made for a user (changes, manual reconciles, dry runs) are served
//!   before background calls (observation passes, drift repairs): a background call takes a slot
//!   only when one is free at that moment, no user call is waiting, and it leaves the burst
//!   untouched, so a running pass delays a user's change by at most the calls already in flight
//!   and the change still has its burst.
//!
//! The rate is shown in `/metrics` as `zeroscale_aws_rate` (calls/s now) and
//! `zeroscale_aws_rate_share` (this replica's share of the budget).
//!
//! Written here rather than with `governor` (used for the API's own limits): governor's quota is
//! fixed when the limiter is built, and this one changes at run time (AIMD, replica share), and
//! it needs two classes of caller. The algorithm is the same GCRA, on tokio's clock.

use std::{
    future::Future,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Mutex,
    },
    time::Duration,
};

use tokio::time::Instant;

/// Who a call is made for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// A user is waiting on it: changes, wake, manual reconciles, dry runs (the default).
    User,
    /// Nobody is waiting: observation passes and the repairs they find.
    Background,
}

tokio::task_local! {
    static PRIORITY: Priority;
}

/// Runs `f` with every AWS call in it paced as background work.
pub async fn in_background<F: Future>(f: F) -> F::Output {
    with_priority(Priority::Background, f).await
}

/// Runs `f` with every AWS call in it paced at `p` (for work a task hands to another).
pub async fn with_priority<F: Future>(p: Priority, f: F) -> F::Output {
    PRIORITY.scope(p, f).await
}

/// The priority of the calls made by the current task (User unless inside [`in_background`]).
pub fn current() -> Priority {
    PRIORITY.try_with(|p| *p).unwrap_or(Priority::User)
}

/// The lowest rate AIMD goes down to (calls/s).
const MIN_RATE: f64 = 0.2;
/// Each call that was not throttled adds `INCREASE / rate` calls/s: about +0.5 calls/s for
/// every second spent at full pace (from half of 20 calls/s back to 20 in about 30 s).
const INCREASE: f64 = 0.5;
/// Throttles closer together than this halve the rate once.
const DECREASE_GAP: Duration = Duration::from_secs(1);

#[derive(Debug)]
struct State {
    /// Calls per second now (AIMD), at most `share`.
    rate: f64,
    /// This replica's share of the account budget.
    share: f64,
    /// GCRA's theoretical arrival time of the next call.
    tat: Instant,
    last_decrease: Option<Instant>,
}

impl State {
    fn interval(&self) -> Duration {
        Duration::from_secs_f64(1.0 / self.rate)
    }

    /// Bursts of up to one second's worth of calls, as the account's token bucket allows.
    fn tolerance(&self) -> Duration {
        self.interval().mul_f64((self.rate.floor() - 1.0).max(0.0))
    }

    /// When the next call may start.
    fn next_free(&self, now: Instant) -> Instant {
        (self.tat.max(now))
            .checked_sub(self.tolerance())
            .unwrap_or(now)
            .max(now)
    }

    /// Reserves the next slot and returns when it starts.
    fn reserve(&mut self, now: Instant) -> Instant {
        let slot = self.next_free(now);
        self.tat = self.tat.max(now) + self.interval();
        slot
    }

    /// Reserves a slot if one is free now without dipping into the burst: background work runs
    /// at most at the rate and leaves the burst to users.
    fn reserve_paced(&mut self, now: Instant) -> bool {
        if self.tat > now {
            return false;
        }
        self.tat = now + self.interval();
        true
    }

    /// Reserves `n` slots if all of them are free now.
    fn reserve_now(&mut self, now: Instant, n: u32) -> bool {
        let last = self.tat.max(now) + self.interval() * n.saturating_sub(1);
        if last.checked_sub(self.tolerance()).unwrap_or(now) > now {
            return false;
        }
        self.tat = self.tat.max(now) + self.interval() * n;
        true
    }
}

/// Paces this process's AWS calls (see the module).
#[derive(Debug)]
pub struct Pacer {
    state: Mutex<State>,
    /// The account budget (`--aws-rate-limit`).
    budget: f64,
    /// User calls waiting for their slot: while any wait, background calls take none.
    users_waiting: AtomicUsize,
}

/// Decrements the waiting count when a waiting user call ends, however it ends.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Pacer {
    /// A pacer for an account budget of `per_second` calls, this process alone until told
    /// otherwise.
    pub fn new(per_second: u32) -> Self {
        let budget = f64::from(per_second.max(1));
        let pacer = Self {
            state: Mutex::new(State {
                rate: budget,
                share: budget,
                tat: Instant::now(),
                last_decrease: None,
            }),
            budget,
            users_waiting: AtomicUsize::new(0),
        };
        pacer.publish(budget, budget);
        pacer
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for permission to make one call, at the current task's [`Priority`].
    pub async fn pace(&self) {
        match current() {
            Priority::User => {
                self.users_waiting.fetch_add(1, Ordering::SeqCst);
                let _waiting = Waiting(&self.users_waiting);
                let slot = self.lock().reserve(Instant::now());
                tokio::time::sleep_until(slot).await;
            }
            Priority::Background => loop {
                let next = {
                    let mut s = self.lock();
                    let now = Instant::now();
                    if self.users_waiting.load(Ordering::SeqCst) == 0 && s.reserve_paced(now) {
                        return;
                    }
                    s.tat.max(now + Duration::from_millis(5))
                };
                tokio::time::sleep_until(next).await;
            },
        }
    }

    /// Takes permission for `n` calls only if it is there now and no user call waits: for
    /// optional calls that must never wait behind the workers' budget.
    pub fn try_pace(&self, n: u32) -> bool {
        if self.users_waiting.load(Ordering::SeqCst) > 0 {
            return false;
        }
        self.lock().reserve_now(Instant::now(), n.max(1))
    }

    /// Whether user calls are waiting for their slot (a burst of changes is being applied).
    pub fn busy(&self) -> bool {
        self.users_waiting.load(Ordering::SeqCst) > 0
    }

    /// AWS throttled a call: halve the rate (once per [`DECREASE_GAP`]).
    pub fn throttled(&self) {
        let mut s = self.lock();
        let now = Instant::now();
        if s.last_decrease.is_some_and(|t| now < t + DECREASE_GAP) {
            return;
        }
        s.last_decrease = Some(now);
        s.rate = (s.rate / 2.0).max(MIN_RATE.min(s.share));
        metrics::counter!("zeroscale_aws_rate_decreases_total").increment(1);
        tracing::warn!(
            rate = s.rate,
            "AWS throttled a call: pacing AWS calls slower"
        );
        self.publish(s.rate, s.share);
    }

    /// A call went through without throttling: recover a little of the rate.
    pub fn succeeded(&self) {
        let mut s = self.lock();
        if s.rate < s.share {
            s.rate = (s.rate + INCREASE / s.rate).min(s.share);
            self.publish(s.rate, s.share);
        }
    }

    /// `live` replicas share the account budget: this one takes `budget / live`.
    pub fn set_replicas(&self, live: usize) {
        let mut s = self.lock();
        let share = self.budget / live.max(1) as f64;
        if (share - s.share).abs() < f64::EPSILON {
            return;
        }
        s.share = share;
        s.rate = s.rate.min(share);
        if live > 1 {
            tracing::info!(
                replicas = live,
                share,
                "sharing the AWS call budget with the other live replicas"
            );
        }
        self.publish(s.rate, s.share);
    }

    /// (calls/s now, this replica's share).
    pub fn rate(&self) -> (f64, f64) {
        let s = self.lock();
        (s.rate, s.share)
    }

    fn publish(&self, rate: f64, share: f64) {
        metrics::gauge!("zeroscale_aws_rate").set(rate);
        metrics::gauge!("zeroscale_aws_rate_share").set(share);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn paces_at_the_rate_after_a_one_second_burst() {
        let p = Pacer::new(10);
        let start = Instant::now();
        for _ in 0..30 {
            p.pace().await;
        }
        // 10 at once (the burst), then 20 more at 10/s.
        let took = start.elapsed().as_secs_f64();
        assert!((1.9..=2.1).contains(&took), "{took}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_throttle_halves_the_rate_once_per_gap_and_successes_bring_it_back() {
        let p = Pacer::new(10);
        p.throttled();
        p.throttled();
        assert_eq!(p.rate().0, 5.0);
        tokio::time::advance(DECREASE_GAP).await;
        p.throttled();
        assert_eq!(p.rate().0, 2.5);
        let mut calls = 0;
        while p.rate().0 < 10.0 {
            p.succeeded();
            calls += 1;
        }
        // About (10² - 2.5²) / (2 × 0.5) = 94 calls: gradual, so AWS's bucket refills first.
        assert!((80..110).contains(&calls), "{calls}");
    }

    #[tokio::test(start_paused = true)]
    async fn replicas_share_the_budget() {
        let p = Pacer::new(20);
        p.set_replicas(4);
        assert_eq!(p.rate(), (5.0, 5.0));
        p.set_replicas(2);
        assert_eq!(p.rate(), (5.0, 10.0), "a larger share is grown into");
        let start = Instant::now();
        for _ in 0..25 {
            p.pace().await;
        }
        assert!(start.elapsed() >= Duration::from_secs(3), "5/s, not 20/s");
    }

    #[tokio::test(start_paused = true)]
    async fn user_calls_overtake_background_calls() {
        let p = std::sync::Arc::new(Pacer::new(2));
        // Drain the burst, then queue 20 background calls and, a moment later, 3 user calls.
        p.pace().await;
        p.pace().await;
        let order = std::sync::Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for i in 0..20 {
            let (p, order) = (p.clone(), order.clone());
            tasks.push(tokio::spawn(in_background(async move {
                p.pace().await;
                order.lock().unwrap().push(format!("bg{i}"));
            })));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        for i in 0..3 {
            let (p, order) = (p.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                p.pace().await;
                order.lock().unwrap().push(format!("user{i}"));
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let order = order.lock().unwrap();
        let last_user = order.iter().rposition(|s| s.starts_with("user")).unwrap();
        assert!(
            last_user <= 4,
            "users waited behind the background: {order:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn background_work_leaves_the_burst_to_users() {
        let p = std::sync::Arc::new(Pacer::new(10));
        // A pass paces at the rate for a while...
        let start = Instant::now();
        in_background(async {
            for _ in 0..20 {
                p.pace().await;
            }
        })
        .await;
        assert!(
            start.elapsed() >= Duration::from_millis(1900),
            "no burst for it"
        );
        // ...and a user's eight calls still go at once.
        let start = Instant::now();
        for _ in 0..8 {
            p.pace().await;
        }
        assert!(
            start.elapsed() <= Duration::from_millis(100),
            "{:?}",
            start.elapsed()
        );
    }
}
