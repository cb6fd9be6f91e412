//! Integrations in `rocketchat_integrations`, in Rocket.Chat's shape (BSON dates, `channel` an
//! array that a `channel: {$in: …}` filter matches element-wise).

use apogee_types::{Integration, Page, PageRequest};
use async_trait::async_trait;
use mongodb::IndexModel;
use mongodb::bson::{self, Bson, DateTime, Document, doc};

use super::{MongoStore, conflict_or, unavailable};
use crate::{IntegrationFilter, IntegrationMutation, IntegrationStore, StoreError, StoreResult};

pub(crate) const INTEGRATIONS: &str = "rocketchat_integrations";

const DATES: &[&str] = &["_createdAt", "_updatedAt"];

fn corrupt(e: bson::error::Error) -> StoreError {
    StoreError::Corrupt { entity: "integration", detail: e.to_string() }
}

pub(crate) fn integration_to_doc(integration: &Integration) -> StoreResult<Document> {
    let mut doc = bson::serialize_to_document(integration).map_err(corrupt)?;
    for field in DATES {
        if let Some(value) = doc.get_mut(field)
            && let Some(ms) = value.as_i64().or_else(|| value.as_i32().map(i64::from))
        {
            *value = Bson::DateTime(DateTime::from_millis(ms));
        }
    }
    Ok(doc)
}

pub(crate) fn integration_from_doc(mut doc: Document) -> StoreResult<Integration> {
    for field in DATES {
        if let Some(value) = doc.get_mut(field)
            && let Bson::DateTime(at) = value
        {
            *value = Bson::Int64(at.timestamp_millis());
        }
    }
    // Records Rocket.Chat wrote may lack fields it fills lazily.
    if !doc.contains_key("_updatedAt")
        && let Some(created) = doc.get("_createdAt").cloned()
    {
        doc.insert("_updatedAt", created);
    }
    if !doc.contains_key("scriptEngine") {
        doc.insert("scriptEngine", "isolated-vm");
    }
    if !doc.contains_key("overrideDestinationChannelEnabled") {
        doc.insert("overrideDestinationChannelEnabled", false);
    }
    bson::deserialize_from_document(doc).map_err(corrupt)
}

/// The query of [`IntegrationStore::list_integrations`] (callers check `matches_nothing` first:
/// `$or` may not be empty).
pub(crate) fn integrations_filter(filter: &IntegrationFilter) -> Document {
    let mut any = Vec::new();
    if !filter.kinds.is_empty() {
        any.push(doc! { "type": { "$in": &filter.kinds } });
    }
    if !filter.own_kinds.is_empty() {
        any.push(doc! { "type": { "$in": &filter.own_kinds }, "_createdBy._id": &filter.own_user });
    }
    let mut query = doc! { "$or": any };
    if let Some(channels) = &filter.channels {
        query.insert("channel", doc! { "$in": channels });
    }
    query
}

pub(crate) fn integration_indexes() -> Vec<(&'static str, IndexModel)> {
    vec![(INTEGRATIONS, IndexModel::builder().keys(doc! { "_createdAt": 1 }).build())]
}

#[async_trait]
impl IntegrationStore for MongoStore {
    async fn insert_integration(&self, integration: Integration) -> StoreResult<()> {
        self.coll(INTEGRATIONS)
            .insert_one(integration_to_doc(&integration)?)
            .await
            .map_err(conflict_or("integration", &integration.id))?;
        Ok(())
    }

    async fn integration_by_id(&self, id: &str) -> StoreResult<Option<Integration>> {
        self.one(INTEGRATIONS, doc! { "_id": id }, None).await?.map(integration_from_doc).transpose()
    }

    async fn update_integration(&self, id: &str, mutation: IntegrationMutation) -> StoreResult<Integration> {
        let _guard = self.lock(&format!("integration:{id}")).lock().await;
        let Some(stored) = self.one(INTEGRATIONS, doc! { "_id": id }, None).await? else {
            return Err(StoreError::NotFound { entity: "integration", id: id.to_owned() });
        };
        let mut integration = integration_from_doc(stored.clone())?;
        mutation(&mut integration)?;
        id.clone_into(&mut integration.id);
        // Replaced only if unchanged since read: a concurrent change elsewhere is never lost.
        let replaced = self
            .coll(INTEGRATIONS)
            .replace_one(stored, integration_to_doc(&integration)?)
            .await
            .map_err(unavailable)?;
        if replaced.matched_count == 0 {
            return Err(StoreError::Unavailable(format!("integration {id} changed meanwhile; try again")));
        }
        Ok(integration)
    }

    async fn delete_integration(&self, id: &str) -> StoreResult<()> {
        let deleted = self.coll(INTEGRATIONS).delete_one(doc! { "_id": id }).await.map_err(unavailable)?;
        if deleted.deleted_count == 0 {
            return Err(StoreError::NotFound { entity: "integration", id: id.to_owned() });
        }
        Ok(())
    }

    async fn list_integrations(
        &self,
        filter: &IntegrationFilter,
        page: PageRequest,
    ) -> StoreResult<Page<Integration>> {
        if filter.matches_nothing() {
            return Ok(Page { items: Vec::new(), offset: page.offset, total: 0 });
        }
        let order = if filter.newest_first { -1 } else { 1 };
        let sort = doc! { "_createdAt": order, "_id": order };
        self.page(INTEGRATIONS, integrations_filter(filter), sort, page, None, integration_from_doc).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use mongodb::bson::{Bson, DateTime, doc};

    use super::*;
    use crate::testsuite::integration;

    #[test]
    fn integrations_roundtrip_with_bson_dates() {
        let i = integration("i1", "u1", 5, &["#general"]);
        let d = integration_to_doc(&i).unwrap();
        assert_eq!(d.get("_createdAt"), Some(&Bson::DateTime(DateTime::from_millis(5))));
        assert_eq!(d.get_str("type").unwrap(), "webhook-incoming");
        assert_eq!(d.get_document("_createdBy").unwrap().get_str("_id").unwrap(), "u1");
        assert_eq!(d.get_array("channel").unwrap(), &vec![Bson::from("#general")]);
        assert_eq!(integration_from_doc(d).unwrap(), i);
    }

    #[test]
    fn filter_by_kind_owner_and_channel() {
        let f = IntegrationFilter {
            kinds: vec!["webhook-outgoing".into()],
            own_kinds: vec!["webhook-incoming".into()],
            own_user: "u1".into(),
            channels: Some(vec!["#a".into(), "all_public_channels".into()]),
            newest_first: true,
        };
        assert_eq!(
            integrations_filter(&f),
            doc! {
                "$or": [
                    { "type": { "$in": ["webhook-outgoing"] } },
                    { "type": { "$in": ["webhook-incoming"] }, "_createdBy._id": "u1" },
                ],
                "channel": { "$in": ["#a", "all_public_channels"] },
            }
        );
    }
}
