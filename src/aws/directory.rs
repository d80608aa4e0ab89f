//! The account's inference components as ListInferenceComponents lists them, shared by the
//! component preflights of a burst.
//!
//! A preflight needs a component's endpoint, variant and status. DescribeInferenceComponent
//! gives them for one component a call; ListInferenceComponents gives them for 100 a page. The
//! listing is bought only when it pays: when the preflights of the last
//! [`DIRECTORY_TTL`] outnumber twice the pages the listing takes (so a single change, or a few,
//! still makes one describe each), and it reads at most half as many pages as there were
//! preflights (so an account with many components is not listed for a few): a listing cut short
//! answers for what it read, and reads on from where it stopped as more preflights pay for it. Only a user's preflight buys one: a drift repair, paced as
//! background work, reads a fresh listing but never holds the others up with its own.
//! A listing is used for [`DIRECTORY_TTL`] and refreshed, in the background, once it is half
//! that old while preflights keep coming.
//!
//! What a listing may answer: a component's endpoint and variant cannot be changed by an update,
//! and only `InService` entries are listed (StatusEquals), so a listing up to two minutes old
//! can be wrong only about a component deleted (or recreated elsewhere) meanwhile. The preflight
//! therefore never refuses on the listing's word: a refusal is confirmed on a fresh
//! DescribeInferenceComponent and fresh endpoint reads (`reconcile::component`). A component not
//! listed is described.

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
    /// When the listing in `components` was started (None: never).
    read_at: Option<Instant>,
    /// Pages the listing has read.
    pages: usize,
    /// Where the listing stopped when it reached its page budget (None: it is complete).
    next_token: Option<String>,
    /// InService components by name.
    components: HashMap<String, Listed>,
    /// When preflights asked, over the last [`DIRECTORY_TTL`].
    asked: VecDeque<Instant>,
    /// A background refresh is running.
    refreshing: bool,
    /// A background refresh failed: none before this.
    no_refresh_before: Option<Instant>,
}

/// See the module.
#[derive(Debug, Default)]
pub struct ComponentDirectory {
    state: Mutex<State>,
}

/// What to do about a lookup, decided under the lock.
#[derive(Debug)]
enum Next {
    Answer(Option<Listed>),
    /// List, reading at most this many pages (a listing costs less than half the lookups it
    /// serves).
    Refresh {
        background: bool,
        max_pages: usize,
    },
    /// Read on from where the listing stopped, at most this many more pages.
    Continue {
        token: String,
        max_pages: usize,
    },
}

/// What one listing read: its pages, where it stopped (None: at the end), the InService
/// components by name.
#[derive(Debug, Default)]
struct Listing {
    pages: usize,
    next_token: Option<String>,
    components: HashMap<String, Listed>,
}

impl State {
    /// For a user's preflight: what to do. A background caller (a drift repair) only reads a
    /// fresh listing: it never buys one, so no user preflight waits behind background pacing.
    fn next(&mut self, name: &str, now: Instant, background_caller: bool) -> Next {
        let fresh = self
            .read_at
            .map(|t| now.duration_since(t))
            .filter(|age| *age < DIRECTORY_TTL);
        if background_caller {
            return Next::Answer(fresh.and_then(|_| self.components.get(name).cloned()));
        }
        self.asked.push_back(now);
        while self
            .asked
            .front()
            .is_some_and(|t| now.duration_since(*t) > DIRECTORY_TTL)
        {
            self.asked.pop_front();
        }
        let known_pages = self.pages + usize::from(self.next_token.is_some());
        let pays = self.asked.len() > 2 * known_pages.max(1);
        let max_pages = self.asked.len() / 2;
        match fresh {
            Some(age) => {
                let background = age >= DIRECTORY_TTL / 2
                    && pays
                    && !self.refreshing
                    && self.no_refresh_before.is_none_or(|t| now >= t);
                if background {
                    self.refreshing = true;
                    return Next::Refresh {
                        background,
                        max_pages,
                    };
                }
                match (self.components.get(name), &self.next_token) {
                    (Some(l), _) => Next::Answer(Some(l.clone())),
                    // Not among the pages read so far: read on, as far as the lookups pay for.
                    (None, Some(token)) if max_pages > self.pages => Next::Continue {
                        token: token.clone(),
                        max_pages: max_pages - self.pages,
                    },
                    (None, _) => Next::Answer(None),
                }
            }
            None if pays => Next::Refresh {
                background: false,
                max_pages,
            },
            None => Next::Answer(None),
        }
    }

    /// Takes a listing started at `at`.
    fn listed(&mut self, at: Instant, l: Listing) {
        (self.read_at, self.pages, self.next_token, self.components) =
            (Some(at), l.pages, l.next_token, l.components);
        self.no_refresh_before = None;
    }

    /// Adds the pages read on from where the listing stopped.
    fn read_on(&mut self, l: Listing) {
        self.pages += l.pages;
        self.next_token = l.next_token;
        self.components.extend(l.components);
    }
}

impl AwsClients {
    /// Component `name`'s endpoint and variant if a shared listing shows it InService (see the
    /// module); None when the caller should describe it.
    pub async fn listed_component(&self, name: &str) -> Option<Listed> {
        let p = pacer::current();
        let mut s = self.directory.state.lock().await;
        let now = Instant::now();
        match s.next(name, now, p == pacer::Priority::Background) {
            Next::Answer(a) => a,
            Next::Refresh {
                background: true,
                max_pages,
            } => {
                let answer = s.components.get(name).cloned();
                drop(s);
                let aws = self.clone();
                tokio::spawn(pacer::with_priority(p, async move {
                    let listing = aws.list_in_service(None, max_pages).await;
                    let mut s = aws.directory.state.lock().await;
                    s.refreshing = false;
                    match listing {
                        Ok(listing) => s.listed(now, listing),
                        Err(e) => {
                            // Not tried again while the current listing lasts.
                            tracing::warn!(error = %e, "refreshing the inference component listing failed; using the current one until it expires");
                            s.no_refresh_before = s.read_at.map(|t| t + DIRECTORY_TTL);
                        }
                    }
                }));
                answer
            }
            // Held across the listing: the preflights arriving meanwhile wait for it rather
            // than describe. Only user preflights get here, so the listing is paced as theirs.
            Next::Refresh {
                background: false,
                max_pages,
            } => match self.list_in_service(None, max_pages).await {
                Ok(listing) => {
                    s.listed(now, listing);
                    s.components.get(name).cloned()
                }
                Err(e) => {
                    // Not retried while it would have lasted: until then every preflight
                    // describes.
                    tracing::warn!(error = %e, "listing inference components failed; describing instead");
                    s.listed(now, Listing::default());
                    None
                }
            },
            Next::Continue { token, max_pages } => {
                match self.list_in_service(Some(token), max_pages).await {
                    Ok(more) => s.read_on(more),
                    Err(e) => {
                        tracing::warn!(error = %e, "reading on in the inference component listing failed; describing instead");
                        s.next_token = None;
                    }
                }
                s.components.get(name).cloned()
            }
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

    /// Makes a listing the observation pass started at `at` the preflights' listing.
    pub async fn remember_components(&self, at: Instant, pages: &[ListInferenceComponentsOutput]) {
        let components = in_service(pages);
        self.directory.state.lock().await.listed(
            at,
            Listing {
                pages: pages.len(),
                next_token: None,
                components,
            },
        );
    }

    /// The InService components, from the start or from `token`, at most `max_pages` pages (a
    /// listing cut short answers for what it read, and can be read on later).
    async fn list_in_service(
        &self,
        token: Option<String>,
        max_pages: usize,
    ) -> Result<Listing, AwsFailure> {
        let pages = self
            .sagemaker
            .list_inference_components()
            .status_equals(aws_sdk_sagemaker::types::InferenceComponentStatus::InService)
            .max_results(100)
            .set_next_token(token)
            .into_paginator()
            .send();
        let mut read = Vec::new();
        self.each_page(
            "sagemaker",
            "ListInferenceComponents",
            pages,
            true,
            |page| {
                read.push(page);
                (read.len() >= max_pages.max(1)).then_some(())
            },
        )
        .await?;
        Ok(Listing {
            pages: read.len(),
            next_token: read.last().and_then(|p| p.next_token().map(str::to_string)),
            components: in_service(&read),
        })
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
        assert!(matches!(s.next("ic", t, false), Next::Answer(None)));
        assert!(matches!(s.next("ic", t, false), Next::Answer(None)));
        assert!(matches!(
            s.next("ic", t, false),
            Next::Refresh {
                background: false,
                max_pages: 1
            }
        ));
        listed(&mut s, t, 1);
        assert!(matches!(s.next("ic", t, false), Next::Answer(Some(_))));
        assert!(matches!(s.next("other", t, false), Next::Answer(None)));
        // Half its life on, with preflights still coming: refreshed in the background, once.
        let later = t + DIRECTORY_TTL / 2;
        assert!(matches!(
            s.next("ic", later, false),
            Next::Refresh {
                background: true,
                ..
            }
        ));
        assert!(matches!(s.next("ic", later, false), Next::Answer(Some(_))));
    }

    #[test]
    fn an_old_listing_is_not_used_and_a_quiet_account_is_not_listed() {
        let mut s = State::default();
        let t = Instant::now();
        listed(&mut s, t, 40);
        // Expired, and 1 preflight in two minutes does not pay for 40 pages: describe.
        let t2 = t + DIRECTORY_TTL + Duration::from_secs(1);
        assert!(matches!(s.next("ic", t2, false), Next::Answer(None)));
    }

    #[test]
    fn a_background_caller_reads_a_fresh_listing_but_never_buys_one() {
        let mut s = State::default();
        let t = Instant::now();
        for _ in 0..10 {
            assert!(matches!(s.next("ic", t, true), Next::Answer(None)));
        }
        assert!(s.asked.is_empty(), "a background lookup is not demand");
        listed(&mut s, t, 1);
        assert!(matches!(s.next("ic", t, true), Next::Answer(Some(_))));
        let expired = t + DIRECTORY_TTL;
        assert!(matches!(s.next("ic", expired, true), Next::Answer(None)));
    }

    #[test]
    fn a_first_listing_reads_at_most_half_as_many_pages_as_there_were_lookups() {
        let mut s = State::default();
        let t = Instant::now();
        s.next("ic", t, false);
        s.next("ic", t, false);
        // An account of unknown size: the third lookup may read 1 page.
        match s.next("ic", t, false) {
            Next::Refresh { max_pages, .. } => assert_eq!(max_pages, 1),
            other => panic!("{other:?}"),
        }
        // It stopped after 1 page: a component not on it makes the listing read on from where
        // it stopped, as far as the lookups pay (4 lookups: 2 pages).
        s.listed(
            t,
            Listing {
                pages: 1,
                next_token: Some("page-2".into()),
                components: HashMap::new(),
            },
        );
        match s.next("ic", t, false) {
            Next::Continue { token, max_pages } => {
                assert_eq!((token.as_str(), max_pages), ("page-2", 1))
            }
            other => panic!("{other:?}"),
        }
        s.read_on(Listing {
            pages: 1,
            next_token: None,
            components: HashMap::new(),
        });
        // Complete now: a component it does not show is described.
        for _ in 0..10 {
            assert!(matches!(s.next("ic", t, false), Next::Answer(None)));
        }
    }
}
