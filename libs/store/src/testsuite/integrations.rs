//! The contract of [`IntegrationStore`](crate::IntegrationStore).

use apogee_types::{CreatedBy, Integration, Millis, PageRequest, WEBHOOK_INCOMING};

use super::ALL;
use crate::{IntegrationFilter, Store, StoreError};

pub fn integration(id: &str, created_by: &str, at: i64, channels: &[&str]) -> Integration {
    Integration {
        id: id.into(),
        kind: WEBHOOK_INCOMING.into(),
        name: format!("hook {id}"),
        enabled: true,
        username: "rocket.cat".into(),
        user_id: "rocket.cat".into(),
        channel: channels.iter().map(|c| (*c).to_owned()).collect(),
        alias: Some("bot".into()),
        avatar: None,
        emoji: Some(":robot:".into()),
        script_enabled: false,
        script_engine: "isolated-vm".into(),
        override_destination_channel_enabled: false,
        token: format!("token-{id}"),
        created_by: CreatedBy { id: created_by.into(), username: format!("{created_by}-name") },
        created_at: Millis(at),
        updated_by: None,
        updated_at: Millis(at),
    }
}

fn ids(page: &apogee_types::Page<Integration>) -> Vec<&str> {
    page.items.iter().map(|i| i.id.as_str()).collect()
}

pub async fn integrations_roundtrip_update_delete(store: &dyn Store) {
    let i1 = integration("i1", "u1", 1, &["#general"]);
    store.insert_integration(i1.clone()).await.unwrap();
    assert_eq!(store.integration_by_id("i1").await.unwrap(), Some(i1.clone()));
    assert_eq!(store.integration_by_id("nope").await.unwrap(), None);
    let dup = store.insert_integration(integration("i1", "u2", 2, &[])).await;
    assert!(matches!(dup, Err(StoreError::Conflict { .. })));

    let updated = store
        .update_integration(
            "i1",
            Box::new(|i| {
                i.name = "renamed".into();
                i.channel = vec!["#a".into(), "@bob".into()];
                i.updated_by = Some(CreatedBy { id: "u2".into(), username: "bob".into() });
                i.id = "ignored".into();
                Ok(())
            }),
        )
        .await
        .unwrap();
    assert_eq!(updated.id, "i1");
    assert_eq!(store.integration_by_id("i1").await.unwrap(), Some(updated));
    // A rejected mutation writes nothing.
    let refused = store.update_integration("i1", Box::new(|_| Err(StoreError::Rejected("no".into())))).await;
    assert!(matches!(refused, Err(StoreError::Rejected(_))));
    assert_eq!(store.integration_by_id("i1").await.unwrap().unwrap().name, "renamed");
    let missing = store.update_integration("nope", Box::new(|_| Ok(()))).await;
    assert!(matches!(missing, Err(StoreError::NotFound { .. })));

    store.delete_integration("i1").await.unwrap();
    assert_eq!(store.integration_by_id("i1").await.unwrap(), None);
    assert!(matches!(store.delete_integration("i1").await, Err(StoreError::NotFound { .. })));
}

pub async fn integrations_list_by_kind_owner_and_channel(store: &dyn Store) {
    store.insert_integration(integration("a", "u1", 1, &["#general"])).await.unwrap();
    store.insert_integration(integration("b", "u2", 2, &["#general", "#dev"])).await.unwrap();
    store.insert_integration(integration("c", "u1", 3, &["all_public_channels"])).await.unwrap();
    let mut outgoing = integration("d", "u2", 4, &["#dev"]);
    outgoing.kind = "webhook-outgoing".into();
    store.insert_integration(outgoing).await.unwrap();

    let incoming = || vec![WEBHOOK_INCOMING.to_owned()];
    let all = IntegrationFilter { kinds: incoming(), newest_first: true, ..Default::default() };
    let page = store.list_integrations(&all, ALL).await.unwrap();
    assert_eq!((ids(&page), page.total), (vec!["c", "b", "a"], 3));
    let oldest = IntegrationFilter { newest_first: false, ..all.clone() };
    assert_eq!(ids(&store.list_integrations(&oldest, ALL).await.unwrap()), ["a", "b", "c"]);
    let window = store.list_integrations(&all, PageRequest { offset: 1, count: Some(1) }).await.unwrap();
    assert_eq!((ids(&window), window.total, window.offset), (vec!["b"], 3, 1));

    let own = IntegrationFilter { own_kinds: incoming(), own_user: "u1".into(), ..Default::default() };
    assert_eq!(ids(&store.list_integrations(&own, ALL).await.unwrap()), ["a", "c"]);
    let own_or_outgoing = IntegrationFilter { kinds: vec!["webhook-outgoing".into()], ..own.clone() };
    assert_eq!(ids(&store.list_integrations(&own_or_outgoing, ALL).await.unwrap()), ["a", "c", "d"]);

    let in_general = IntegrationFilter {
        channels: Some(vec!["#general".into(), "all_public_channels".into()]),
        ..oldest.clone()
    };
    let page = store.list_integrations(&in_general, ALL).await.unwrap();
    assert_eq!((ids(&page), page.total), (vec!["a", "b", "c"], 3));
    let in_dev = IntegrationFilter { channels: Some(vec!["#dev".into()]), ..oldest.clone() };
    assert_eq!(ids(&store.list_integrations(&in_dev, ALL).await.unwrap()), ["b"]);
    for i in store.list_integrations(&in_dev, ALL).await.unwrap().items {
        assert!(in_dev.matches(&i));
    }

    let nothing = IntegrationFilter::default();
    assert!(nothing.matches_nothing());
    assert_eq!(store.list_integrations(&nothing, ALL).await.unwrap().total, 0);
}
