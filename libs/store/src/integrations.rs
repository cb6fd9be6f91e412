use apogee_types::{Integration, Page, PageRequest};
use async_trait::async_trait;

use crate::StoreResult;

/// A change to an integration, applied inside the store's write to the stored record.
pub type IntegrationMutation = Box<dyn FnOnce(&mut Integration) -> StoreResult<()> + Send>;

/// Which integrations a listing returns: those of a kind in `kinds`, and those of a kind in
/// `own_kinds` created by `own_user` (Rocket.Chat's `manage-*` and `manage-own-*`
/// permissions); nothing when both are empty.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct IntegrationFilter {
    pub kinds: Vec<String>,
    pub own_kinds: Vec<String>,
    pub own_user: String,
    /// Only integrations whose targets include one of these (`#name`, `all_public_channels`).
    pub channels: Option<Vec<String>>,
    /// Newest first (`integrations.list`) or oldest first (`channels.getIntegrations`).
    pub newest_first: bool,
}

impl IntegrationFilter {
    /// Whether the filter can match anything at all.
    pub fn matches_nothing(&self) -> bool {
        (self.kinds.is_empty() && self.own_kinds.is_empty())
            || self.channels.as_ref().is_some_and(Vec::is_empty)
    }

    /// The filter applied to one record (the contract every backend's query keeps).
    pub fn matches(&self, i: &Integration) -> bool {
        let kind_ok = self.kinds.contains(&i.kind)
            || (self.own_kinds.contains(&i.kind) && i.created_by.id == self.own_user);
        kind_ok && self.channels.as_ref().is_none_or(|cs| i.channel.iter().any(|c| cs.contains(c)))
    }
}

/// Integrations (Rocket.Chat's `rocketchat_integrations`).
#[async_trait]
pub trait IntegrationStore: Send + Sync + 'static {
    /// `Conflict` when the id is taken.
    async fn insert_integration(&self, integration: Integration) -> StoreResult<()>;
    async fn integration_by_id(&self, id: &str) -> StoreResult<Option<Integration>>;
    /// Applies `mutation` and returns the result; `NotFound` if absent. The id cannot change.
    async fn update_integration(&self, id: &str, mutation: IntegrationMutation) -> StoreResult<Integration>;
    /// `NotFound` if absent.
    async fn delete_integration(&self, id: &str) -> StoreResult<()>;
    /// By creation time (ties by id).
    async fn list_integrations(
        &self,
        filter: &IntegrationFilter,
        page: PageRequest,
    ) -> StoreResult<Page<Integration>>;
}
