//! The account's inference components as ListInferenceComponents lists them, shared by the
//! component preflights of a burst.
//!
//! A preflight needs a component's endpoint, variant and status. DescribeInferenceComponent
//! gives them for one component a call; ListInferenceComponents gives them for 100 a page. The
//! listing is bought only when it pays: when the preflights of the last
//! [`DIRECTORY_TTL`] outnumber twice the pages the listing takes (so a single change, or a few,
//! still makes one describe each, and an account with many components is not listed for them).
//! A listing is used for [`DIRECTORY_TTL`] and refreshed, in the background, once it is half
//! that old while preflights keep coming.
//!
//! What a listing may answer: a component's endpoint and variant cannot change under its name,
//! and only an `InService` entry is used, so a stale listing can only let a preflight pass for
//! a component that stopped being InService in the last two minutes (its writes then fail on
//! AWS's own checks). Any other status, or a component not listed, is described afresh.

use std::{
    collections::{HashMap, VecDeque},
    time::Duration,
};

use aws_sdk_sagemaker::operation::list_inference_components::ListInferenceComponentsOutput;
use tokio::{sync::Mutex, time::Instant};

use super::{pacer, AwsClients, AwsFailure};

/// How long a listing is used.
pub const DIRECTORY_TTL: Duration = Duration::from_secs(120);

/// An InService component, as the listing showed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub endpoint: String,
    pub variant: String,
}

#[derive(Debug, Default)]
struct State {
    /// When the listing in `components` was read (None: never).
    read_at: Option<Instant>,
    /// Pages the last listing took (1 before the first).
    pages: usize,
    /// InService components by name.
    components: HashMap<String, Listed>,
    /// When preflights asked, over the last [`DIRECTORY_TTL`].
    asked: VecDeque<Instant>,
    /// A background refresh is running.
    refreshing: bool,
}

/// See the module.
#[derive(Debug, Default)]
pub struct ComponentDirectory {
    state: Mutex<State>,
}

/// What to do about a lookup, decided under the lock.
enum Next {
    Answer(Option<Listed>),
    Refresh { background: bool },
}

impl State {
    fn next(&mut self, name: &str, now: Instant) -> Next {
        self.asked.push_back(now);
        while self
            .asked
            .front()
            .is_some_and(|t| now.duration_since(*t) > DIRECTORY_TTL)
        {
            self.asked.pop_front();
        }
        let pays = self.asked.len() > 2 * self.pages.max(1);
        match self.read_at.map(|t| now.duration_since(t)) {
            Some(age) if age < DIRECTORY_TTL => {
                let background = age >= DIRECTORY_TTL / 2 && pays && !self.refreshing;
                if background {
                    self.refreshing = true;
                    return Next::Refresh { background };
                }
                Next::Answer(self.components.get(name).cloned())
            }
            _ if pays => Next::Refresh { background: false },
            _ => Next::Answer(None),
        }
    }
}

impl AwsClients {
    /// Component `name`'s endpoint and variant if a shared listing shows it InService (see the
    /// module); None when the caller should describe it.
    pub async fn listed_component(&self, name: &str) -> Option<Listed> {
        let mut s = self.directory.state.lock().await;
        match s.next(name, Instant::now()) {
            Next::Answer(a) => a,
            Next::Refresh { background: true } => {
                let answer = s.components.get(name).cloned();
                drop(s);
                let aws = self.clone();
                let p = pacer::current();
                tokio::spawn(pacer::with_priority(p, async move {
                    let listing = aws.list_components().await;
                    let mut s = aws.directory.state.lock().await;
                    s.refreshing = false;
                    if let Ok((pages, components)) = listing {
                        (s.read_at, s.pages, s.components) =
                            (Some(Instant::now()), pages, components);
                    }
                }));
                answer
            }
            // Held across the listing: the preflights arriving meanwhile wait for it rather
            // than describe.
            Next::Refresh { background: false } => match self.list_components().await {
                Ok((pages, components)) => {
                    (s.read_at, s.pages, s.components) = (Some(Instant::now()), pages, components);
                    s.components.get(name).cloned()
                }
                Err(e) => {
                    // Not retried for a while: until then every preflight describes.
                    tracing::warn!(error = %e, "listing inference components failed; describing instead");
                    (s.read_at, s.components) = (Some(Instant::now()), HashMap::new());
                    None
                }
            },
        }
    }

    /// Every page of ListInferenceComponents, 100 components a page (the observation pass
    /// reads them too, and hands them to [`Self::remember_components`]).
    pub async fn component_pages(&self) -> Result<Vec<ListInferenceComponentsOutput>, AwsFailure> {
        let pages = self
            .sagemaker
            .list_inference_components()
            .max_results(100)
            .into_paginator()
            .send();
        self.pages("sagemaker", "ListInferenceComponents", pages)
            .await
    }

    /// Makes a listing read just now (by the observation pass) the preflights' listing.
    pub async fn remember_components(&self, pages: &[ListInferenceComponentsOutput]) {
        let components = in_service(pages);
        let mut s = self.directory.state.lock().await;
        (s.read_at, s.pages, s.components) = (Some(Instant::now()), pages.len(), components);
    }

    /// A listing: (pages, the InService components by name).
    async fn list_components(&self) -> Result<(usize, HashMap<String, Listed>), AwsFailure> {
        let pages = self.component_pages().await?;
        Ok((pages.len(), in_service(&pages)))
    }
}

/// The InService components of a listing, by name.
fn in_service(pages: &[ListInferenceComponentsOutput]) -> HashMap<String, Listed> {
    pages
        .iter()
        .flat_map(|p| p.inference_components())
        .filter(|c| {
            c.inference_component_status()
                .is_some_and(|s| s.as_str() == "InService")
        })
        .filter_map(|c| {
            Some((
                c.inference_component_name()?.to_string(),
                Listed {
                    endpoint: c.endpoint_name()?.to_string(),
                    variant: c.variant_name()?.to_string(),
                },
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(s: &mut State, at: Instant, pages: usize) {
        s.read_at = Some(at);
        s.pages = pages;
        s.components.insert(
            "ic".into(),
            Listed {
                endpoint: "ep".into(),
                variant: "v".into(),
            },
        );
    }

    #[test]
    fn a_listing_is_bought_only_when_preflights_outnumber_twice_its_pages() {
        let mut s = State::default();
        let t = Instant::now();
        // One page: the first two preflights describe, the third buys the listing.
        assert!(matches!(s.next("ic", t), Next::Answer(None)));
        assert!(matches!(s.next("ic", t), Next::Answer(None)));
        assert!(matches!(
            s.next("ic", t),
            Next::Refresh { background: false }
        ));
        listed(&mut s, t, 1);
        assert!(matches!(s.next("ic", t), Next::Answer(Some(_))));
        assert!(matches!(s.next("other", t), Next::Answer(None)));
        // Half its life on, with preflights still coming: refreshed in the background, once.
        let later = t + DIRECTORY_TTL / 2;
        assert!(matches!(
            s.next("ic", later),
            Next::Refresh { background: true }
        ));
        assert!(matches!(s.next("ic", later), Next::Answer(Some(_))));
    }

    #[test]
    fn an_old_listing_is_not_used_and_a_quiet_account_is_not_listed() {
        let mut s = State::default();
        let t = Instant::now();
        listed(&mut s, t, 40);
        // Expired, and 1 preflight in two minutes does not pay for 40 pages: describe.
        let t2 = t + DIRECTORY_TTL + Duration::from_secs(1);
        assert!(matches!(s.next("ic", t2), Next::Answer(None)));
    }
}
