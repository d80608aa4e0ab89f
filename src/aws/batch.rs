//! DescribeScalableTargets shared by the jobs that need it at the same moment.
//!
//! Every enable reads its target before writing (does the owner already scale it? what are its
//! bounds?) and, after registering a new one, waits until AWS lists it (registration is
//! eventually consistent: a policy put right after it can miss the target). One describe takes
//! up to 50 ResourceIds, so the reads of the jobs running at the same time are gathered: a
//! caller queues its ResourceId and waits; one task per priority takes the pacer's next slot,
//! then sends every ResourceId queued by then (50 a call) and hands each caller its targets.
//! When the pacer is idle the wait is nothing and a read goes alone; when a burst of changes
//! keeps it busy, the wait for the slot is what gathers the reads, so a burst of 1,000 enables
//! costs a few dozen describes instead of 2,000.
//!
//! The ids are chosen once the slot is granted, not before, so later callers still make the
//! call; that is why the first page is paced here and not by [`AwsClients::each_page`].

use std::{collections::HashMap, sync::Mutex};

use aws_sdk_applicationautoscaling::types::{ScalableTarget, ServiceNamespace};
use tokio::sync::oneshot;

use super::{pacer, AwsClients, AwsFailure, Priority};

/// ResourceIds a DescribeScalableTargets accepts (the API's maximum).
pub const IDS_PER_CALL: usize = 50;

type Answer = Result<Vec<ScalableTarget>, AwsFailure>;

#[derive(Default)]
struct Queue {
    waiting: Vec<(String, oneshot::Sender<Answer>)>,
    /// Whether a task is sending this queue's calls.
    sending: bool,
}

/// The queued reads, one queue per priority (a background read never holds up a user's).
#[derive(Default)]
pub struct TargetReads {
    queues: Mutex<[Queue; 2]>,
}

impl std::fmt::Debug for TargetReads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TargetReads").finish_non_exhaustive()
    }
}

fn slot(p: Priority) -> usize {
    match p {
        Priority::User => 0,
        Priority::Background => 1,
    }
}

impl TargetReads {
    fn lock(&self) -> std::sync::MutexGuard<'_, [Queue; 2]> {
        self.queues.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `resource_id`; true when the caller must start the sender.
    fn enqueue(&self, p: Priority, resource_id: &str, tx: oneshot::Sender<Answer>) -> bool {
        let mut q = self.lock();
        let q = &mut q[slot(p)];
        q.waiting.push((resource_id.to_string(), tx));
        !std::mem::replace(&mut q.sending, true)
    }

    /// Whether reads wait; when none do, the sender stops (under the same lock, so a caller
    /// queueing after this starts a new one).
    fn any_waiting(&self, p: Priority) -> bool {
        let mut q = self.lock();
        let q = &mut q[slot(p)];
        if q.waiting.is_empty() {
            q.sending = false;
        }
        q.sending
    }

    /// Up to [`IDS_PER_CALL`] distinct ids and everyone waiting on them.
    fn take(&self, p: Priority) -> HashMap<String, Vec<oneshot::Sender<Answer>>> {
        let mut q = self.lock();
        let q = &mut q[slot(p)];
        let mut batch: HashMap<String, Vec<oneshot::Sender<Answer>>> = HashMap::new();
        let mut rest = Vec::new();
        for (id, tx) in q.waiting.drain(..) {
            if tx.is_closed() {
                // Its job ended (cancelled, lease lost) while it waited: no read for it.
                continue;
            }
            if batch.contains_key(&id) || batch.len() < IDS_PER_CALL {
                batch.entry(id).or_default().push(tx);
            } else {
                rest.push((id, tx));
            }
        }
        q.waiting = rest;
        batch
    }
}

/// The sending task's guard: if the task ends without finishing (a panic, the runtime shutting
/// down), the queue is handed back so the next caller starts a sender, and the callers waiting
/// get an error (their answer channels are dropped) instead of waiting for ever.
struct Sender<'a> {
    reads: &'a TargetReads,
    p: Priority,
    finished: bool,
}

impl Drop for Sender<'_> {
    fn drop(&mut self) {
        if !self.finished {
            let mut q = self.reads.lock();
            let q = &mut q[slot(self.p)];
            q.waiting.clear();
            q.sending = false;
        }
    }
}

impl AwsClients {
    /// The scalable targets of `resource_id` in SageMaker's namespace (every dimension), read
    /// together with the other reads waiting at the same time (see the module).
    pub async fn scalable_targets_of(&self, resource_id: &str) -> Answer {
        let p = pacer::current();
        let (tx, rx) = oneshot::channel();
        if self.target_reads.enqueue(p, resource_id, tx) {
            let aws = self.clone();
            tokio::spawn(pacer::with_priority(
                p,
                async move { aws.send_reads(p).await },
            ));
        }
        rx.await.unwrap_or_else(|_| {
            Err(AwsFailure {
                service: "application-autoscaling",
                operation: "DescribeScalableTargets",
                kind: super::FailureKind::Retryable,
                code: "Interrupted".into(),
                message: "the shared read stopped before answering".into(),
                request_id: None,
            })
        })
    }

    /// Sends the queued reads of priority `p` until none are left.
    async fn send_reads(&self, p: Priority) {
        let mut guard = Sender {
            reads: &self.target_reads,
            p,
            finished: false,
        };
        // Only this task takes from the queue, so what waits before the slot is still there
        // (or was given up by its caller, and is skipped).
        while self.target_reads.any_waiting(p) {
            self.pace().await;
            let batch = self.target_reads.take(p);
            if batch.is_empty() {
                // Everyone queued gave up. (No ResourceIds would describe the whole namespace.)
                continue;
            }
            let ids: Vec<String> = batch.keys().cloned().collect();
            let answer = self.describe_ids(ids).await;
            for (id, waiters) in batch {
                let mine = answer.as_ref().map(|targets| {
                    targets
                        .iter()
                        .filter(|t| t.resource_id() == id)
                        .cloned()
                        .collect::<Vec<_>>()
                });
                for tx in waiters {
                    let _ = tx.send(mine.clone().map_err(Clone::clone));
                }
            }
        }
        guard.finished = true;
    }

    /// One DescribeScalableTargets of `ids`, every page (the first already paced).
    async fn describe_ids(&self, ids: Vec<String>) -> Answer {
        let pages = self
            .autoscaling
            .describe_scalable_targets()
            .service_namespace(ServiceNamespace::Sagemaker)
            .set_resource_ids(Some(ids))
            .max_results(50)
            .into_paginator()
            .send();
        let mut targets = Vec::new();
        self.each_page(
            "application-autoscaling",
            "DescribeScalableTargets",
            pages,
            false,
            |page| {
                targets.extend(page.scalable_targets.unwrap_or_default());
                None::<()>
            },
        )
        .await?;
        Ok(targets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_takes_fifty_distinct_ids_and_everyone_waiting_on_them() {
        let reads = TargetReads::default();
        let mut rxs = Vec::new();
        for i in 0..60 {
            let (tx, rx) = oneshot::channel();
            // Id 0 is asked for twice: one read answers both.
            let id = if i == 59 { 0 } else { i };
            let first = reads.enqueue(Priority::User, &format!("id-{id}"), tx);
            assert_eq!(first, i == 0, "only the first caller starts the sender");
            rxs.push(rx);
        }
        let batch = reads.take(Priority::User);
        assert_eq!(batch.len(), IDS_PER_CALL);
        assert_eq!(batch["id-0"].len(), 2);
        assert!(!reads.any_waiting(Priority::Background));
        assert!(reads.any_waiting(Priority::User));
        let batch = reads.take(Priority::User);
        assert_eq!(batch.len(), 9);
        assert!(!reads.any_waiting(Priority::User));
        // The queue is empty and its sender stopped: the next caller starts one.
        let (tx, _rx) = oneshot::channel();
        assert!(reads.enqueue(Priority::User, "id-1", tx));
    }

    #[test]
    fn a_caller_that_gave_up_is_not_read_for() {
        let reads = TargetReads::default();
        let (tx, rx) = oneshot::channel();
        reads.enqueue(Priority::User, "gone", tx);
        drop(rx);
        let (tx, _rx) = oneshot::channel();
        reads.enqueue(Priority::User, "here", tx);
        let batch = reads.take(Priority::User);
        assert_eq!(batch.keys().collect::<Vec<_>>(), ["here"]);
    }

    #[test]
    fn a_sender_that_dies_hands_the_queue_back_and_fails_its_waiters() {
        let reads = TargetReads::default();
        let (tx, mut rx) = oneshot::channel();
        assert!(reads.enqueue(Priority::User, "id", tx));
        drop(Sender {
            reads: &reads,
            p: Priority::User,
            finished: false,
        });
        assert!(
            rx.try_recv().is_err(),
            "the waiter is told, not left waiting"
        );
        let (tx, _rx) = oneshot::channel();
        assert!(
            reads.enqueue(Priority::User, "id", tx),
            "a new sender starts"
        );
    }
}
