//! The MongoDB store (feature `mongodb`), in Rocket.Chat's collections and document shapes so an
//! operator can read the data with the usual tools.
//!
//! MongoDB must be a replica set (a one-node one will do): the writes of one [`RoomWrite`] go in
//! one multi-document transaction, and [`MongoStore::connect`] refuses a standalone server.
//!
//! Concurrency: writers of one room (or one user) in this process queue on a lock, so they do
//! not conflict with each other. A transaction that fails with `TransientTransactionError`
//! (another process wrote the same document, a failover) is retried as long as the write's own
//! mutations have not run yet; once they have, they cannot run again (they are `FnOnce`), and the
//! write fails with `Unavailable`: nothing was written and the caller may retry.
//!
//! The query and update documents are built by pure functions in `queries` and `docs`, which the
//! unit tests check without a server; the contract suite runs when `MONGODB_URI` is set.

mod docs;
mod integrations;
mod queries;
mod teams;

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;

use apogee_types::{
    LoginToken, Message, Millis, Page, PageRequest, Permission, Role, Room, RoomType, Setting, Subscription,
    User,
};
use async_trait::async_trait;
use futures_util::TryStreamExt;
use mongodb::bson::{Bson, Document, doc};
use mongodb::error::{
    ErrorKind, TRANSIENT_TRANSACTION_ERROR, UNKNOWN_TRANSACTION_COMMIT_RESULT, WriteFailure,
};
use mongodb::options::{
    ClientOptions, Collation, FindOneOptions, FindOptions, ReadConcern, ReturnDocument, WriteConcern,
};
use mongodb::{Client, ClientSession, Collection, Database};

use self::docs::*;
use self::queries::*;
use crate::{
    ConfigStore, HistoryQuery, MessageFilter, MessageMutation, MessageReport, MessageStore, Removed,
    RenameOutcome, RoomFilter, RoomMutation, RoomStore, RoomWrite, RoomWriteOutcome, StoreError, StoreResult,
    SubscriptionMutation, ThreadFilter, Upload, UploadMutation, UploadStore, UserFilter, UserMutation,
    UserRename, UserStore,
};

/// Database used when the URL names none.
pub const DEFAULT_DATABASE: &str = "rocketchat";
/// Attempts of a transaction that keeps failing with `TransientTransactionError`.
const MAX_ATTEMPTS: u32 = 5;
/// Striped write locks: enough that unrelated rooms rarely share one.
const LOCKS: usize = 256;

/// The MongoDB implementation of every store trait.
#[derive(Clone)]
pub struct MongoStore {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    db: Database,
    locks: Vec<tokio::sync::Mutex<()>>,
}

/// Why a transaction body stopped: a driver error (maybe transient) or the store's own answer.
enum Fail {
    Db(mongodb::error::Error),
    Store(StoreError),
}

impl From<mongodb::error::Error> for Fail {
    fn from(e: mongodb::error::Error) -> Self {
        Fail::Db(e)
    }
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Self {
        Fail::Store(e)
    }
}

type TxResult<T> = Result<T, Fail>;

fn unavailable(e: mongodb::error::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

fn is_duplicate_key(e: &mongodb::error::Error) -> bool {
    const DUPLICATE_KEY: [i32; 2] = [11000, 11001];
    match e.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(we)) => DUPLICATE_KEY.contains(&we.code),
        ErrorKind::Command(ce) => DUPLICATE_KEY.contains(&ce.code),
        _ => false,
    }
}

/// Maps a unique-index violation to `Conflict`, anything else to `Unavailable`.
fn conflict_or(entity: &'static str, key: &str) -> impl FnOnce(mongodb::error::Error) -> StoreError {
    move |e| {
        if is_duplicate_key(&e) {
            StoreError::Conflict { entity, key: key.to_owned() }
        } else {
            unavailable(e)
        }
    }
}

/// As [`conflict_or`], inside a transaction (other errors stay driver errors, for the retry).
fn tx_conflict_or(entity: &'static str, key: &str) -> impl FnOnce(mongodb::error::Error) -> Fail {
    move |e| {
        if is_duplicate_key(&e) {
            Fail::Store(StoreError::Conflict { entity, key: key.to_owned() })
        } else {
            Fail::Db(e)
        }
    }
}

/// Refuses a server that cannot run transactions: a standalone `mongod`.
pub(crate) fn check_topology(hello: &Document) -> StoreResult<()> {
    let replica_set = hello.get_str("setName").is_ok();
    let router = hello.get_str("msg").ok() == Some("isdbgrid");
    if replica_set || router {
        Ok(())
    } else {
        Err(StoreError::Unavailable(
            "MongoDB is not a replica set, and Apogee writes in transactions: start mongod with \
             --replSet rs0 and run rs.initiate() (a one-node replica set will do)"
                .into(),
        ))
    }
}

fn removed_from(doc: &Document) -> Option<Removed> {
    let id = doc.get_str("_id").ok()?.to_owned();
    let deleted_at = match doc.get("_deletedAt") {
        Some(Bson::DateTime(at)) => Millis(at.timestamp_millis()),
        _ => return None,
    };
    Some(Removed { id, deleted_at })
}

/// Runs `$body` (an expression yielding a future that uses `$session`) in a transaction and
/// commits it. On `TransientTransactionError` the whole body runs again while `$retryable` holds.
macro_rules! transaction {
    ($store:expr, $session:ident, retry_while: $retryable:expr, $body:expr) => {{
        let mut $session = $store.inner.client.start_session().await.map_err(unavailable)?;
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            $session
                .start_transaction()
                .read_concern(ReadConcern::snapshot())
                .write_concern(WriteConcern::majority())
                .await
                .map_err(unavailable)?;
            let failure = match $body.await {
                Ok(value) => match commit(&mut $session).await {
                    Ok(()) => break Ok(value),
                    Err(e) => Fail::Db(e),
                },
                Err(failure) => {
                    // The server may have aborted it already; either way nothing was written.
                    let _ = $session.abort_transaction().await;
                    failure
                }
            };
            match failure {
                Fail::Db(e)
                    if e.contains_label(TRANSIENT_TRANSACTION_ERROR) && attempts < MAX_ATTEMPTS && $retryable =>
                {
                    tracing::debug!(error = %e, attempts, "retrying mongodb transaction");
                }
                Fail::Db(e) => break Err(unavailable(e)),
                Fail::Store(e) => break Err(e),
            }
        }
    }};
}

/// Commits, retrying the commit itself while its outcome is unknown (it is idempotent).
async fn commit(session: &mut ClientSession) -> mongodb::error::Result<()> {
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        match session.commit_transaction().await {
            Err(e) if e.contains_label(UNKNOWN_TRANSACTION_COMMIT_RESULT) && attempts < MAX_ATTEMPTS => {}
            result => return result,
        }
    }
}

impl MongoStore {
    /// Connects to `url` (Rocket.Chat's `MONGO_URL`), using the database it names (else
    /// [`DEFAULT_DATABASE`]), checks that the server is a replica set and creates the indexes.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let options = ClientOptions::parse(url).await.map_err(unavailable)?;
        let name = options.default_database.clone().unwrap_or_else(|| DEFAULT_DATABASE.to_owned());
        Self::connect_with(options, &name).await
    }

    /// As [`connect`](Self::connect), on the database `name` whatever the URL says.
    pub async fn connect_database(url: &str, name: &str) -> StoreResult<Self> {
        let options = ClientOptions::parse(url).await.map_err(unavailable)?;
        Self::connect_with(options, name).await
    }

    async fn connect_with(options: ClientOptions, name: &str) -> StoreResult<Self> {
        let client = Client::with_options(options).map_err(unavailable)?;
        let db = client.database(name);
        let hello = db.run_command(doc! { "hello": 1 }).await.map_err(unavailable)?;
        check_topology(&hello)?;
        let store = Self {
            inner: Arc::new(Inner {
                client,
                db,
                locks: (0..LOCKS).map(|_| tokio::sync::Mutex::new(())).collect(),
            }),
        };
        store.ensure_indexes().await?;
        Ok(store)
    }

    /// Creates every index the queries need; existing ones are left as they are.
    pub async fn ensure_indexes(&self) -> StoreResult<()> {
        for (collection, index) in
            indexes().into_iter().chain(teams::team_indexes()).chain(integrations::integration_indexes())
        {
            self.coll(collection)
                .create_index(index)
                .await
                .map_err(|e| StoreError::Unavailable(format!("creating an index on {collection}: {e}")))?;
        }
        Ok(())
    }

    fn coll(&self, name: &str) -> Collection<Document> {
        self.inner.db.collection(name)
    }

    /// The write lock of `key` (`room:<rid>`, `user:<id>`) in this process.
    fn lock(&self, key: &str) -> &tokio::sync::Mutex<()> {
        let mut hasher = DefaultHasher::new();
        key.hash(&mut hasher);
        let slot = usize::try_from(hasher.finish() % LOCKS as u64).unwrap_or(0);
        &self.inner.locks[slot]
    }

    async fn find_docs(
        &self,
        collection: &str,
        filter: Document,
        sort: Option<Document>,
        window: (u64, Option<i64>),
        collation: Option<Collation>,
    ) -> StoreResult<Vec<Document>> {
        let mut options = FindOptions::default();
        options.sort = sort;
        options.skip = (window.0 > 0).then_some(window.0);
        options.limit = window.1;
        options.collation = collation;
        let cursor = self.coll(collection).find(filter).with_options(options).await.map_err(unavailable)?;
        cursor.try_collect().await.map_err(unavailable)
    }

    async fn count(&self, collection: &str, filter: Document) -> StoreResult<u64> {
        self.coll(collection).count_documents(filter).await.map_err(unavailable)
    }

    /// One page: `total` counts every match, `items` the window asked for.
    async fn page<T>(
        &self,
        collection: &str,
        filter: Document,
        sort: Document,
        page: PageRequest,
        collation: Option<Collation>,
        decode: impl Fn(Document) -> StoreResult<T>,
    ) -> StoreResult<Page<T>> {
        let total = self.count(collection, filter.clone()).await?;
        let items = match window(page) {
            Some(w) => self.find_docs(collection, filter, Some(sort), w, collation).await?,
            None => Vec::new(),
        };
        Ok(Page {
            items: items.into_iter().map(decode).collect::<StoreResult<_>>()?,
            offset: page.offset,
            total,
        })
    }

    async fn one(
        &self,
        collection: &str,
        filter: Document,
        collation: Option<Collation>,
    ) -> StoreResult<Option<Document>> {
        let mut options = FindOneOptions::default();
        options.collation = collation;
        self.coll(collection).find_one(filter).with_options(options).await.map_err(unavailable)
    }

    /// Ids of the rooms the user has a subscription to.
    async fn room_ids_of(&self, uid: &str) -> StoreResult<Vec<String>> {
        let rids =
            self.coll(SUBSCRIPTIONS).distinct("rid", doc! { "u._id": uid }).await.map_err(unavailable)?;
        Ok(rids.into_iter().filter_map(|b| b.as_str().map(str::to_owned)).collect())
    }

    async fn with_unread(&self, mut sub: Subscription) -> StoreResult<Subscription> {
        sub.unread = self.count(MESSAGES, unread_filter(&sub.rid, &sub.u.id, sub.last_read_seq)).await?;
        sub.group_mentions = if sub.unread == 0 {
            0
        } else {
            self.count(MESSAGES, group_mention_filter(&sub.rid, &sub.u.id, sub.last_read_seq)).await?
        };
        Ok(sub)
    }

    async fn find_limited(
        &self,
        collection: &str,
        (filter, sort): (Document, Document),
        count: Option<u64>,
    ) -> StoreResult<Vec<Document>> {
        match window(PageRequest { offset: 0, count }) {
            Some(w) => self.find_docs(collection, filter, Some(sort), w, None).await,
            None => Ok(Vec::new()),
        }
    }
}

// ---- in-transaction helpers (every read and write goes through the session) ----

async fn tx_one(
    coll: &Collection<Document>,
    session: &mut ClientSession,
    filter: Document,
) -> TxResult<Option<Document>> {
    Ok(coll.find_one(filter).session(&mut *session).await?)
}

async fn tx_all(
    coll: &Collection<Document>,
    session: &mut ClientSession,
    filter: Document,
) -> TxResult<Vec<Document>> {
    let mut cursor = coll.find(filter).session(&mut *session).await?;
    let mut out = Vec::new();
    while let Some(doc) = cursor.next(&mut *session).await {
        out.push(doc?);
    }
    Ok(out)
}

async fn tx_replace(coll: &Collection<Document>, session: &mut ClientSession, doc: Document) -> TxResult<()> {
    let id = doc.get("_id").cloned().unwrap_or(Bson::Null);
    coll.replace_one(doc! { "_id": id }, doc).session(&mut *session).await?;
    Ok(())
}

async fn tx_upsert(coll: &Collection<Document>, session: &mut ClientSession, doc: Document) -> TxResult<()> {
    let id = doc.get("_id").cloned().unwrap_or(Bson::Null);
    coll.replace_one(doc! { "_id": id }, doc).upsert(true).session(&mut *session).await?;
    Ok(())
}

/// The data of a [`RoomWrite`]; its mutations travel apart, taken once when they run.
struct RoomWriteData {
    rid: String,
    create: Option<Room>,
    messages: Vec<Message>,
    add_subscriptions: Vec<Subscription>,
    remove_subscriptions: Vec<String>,
    delete: bool,
    keep_last_message: bool,
}

/// The mutations of a [`RoomWrite`]: the room's, the stored messages', the subscriptions'.
type RoomClosures =
    (Option<RoomMutation>, Vec<(String, MessageMutation)>, Vec<(String, SubscriptionMutation)>);

impl MongoStore {
    /// One attempt at a [`RoomWrite`], in the same order as the SQLite store.
    async fn room_write_attempt(
        &self,
        session: &mut ClientSession,
        data: &RoomWriteData,
        closures: &mut Option<RoomClosures>,
    ) -> TxResult<RoomWriteOutcome> {
        let (rooms, subs, messages, trash) =
            (self.coll(ROOMS), self.coll(SUBSCRIPTIONS), self.coll(MESSAGES), self.coll(TRASH));
        let now = Millis::now();
        let rid = data.rid.as_str();
        let is_new = data.create.is_some();
        let mut room = match &data.create {
            Some(room) => room.clone(),
            None => match tx_one(&rooms, session, doc! { "_id": rid }).await? {
                Some(doc) => room_from_doc(doc)?,
                None => return Err(StoreError::NotFound { entity: "room", id: rid.to_owned() }.into()),
            },
        };
        if data.delete {
            for sub in tx_all(&subs, session, doc! { "rid": rid }).await? {
                tx_upsert(&trash, session, trash_doc(TRASH_SUBSCRIPTION, sub, now)).await?;
            }
            tx_upsert(&trash, session, trash_doc(TRASH_ROOM, room_to_doc(&room)?, now)).await?;
            subs.delete_many(doc! { "rid": rid }).session(&mut *session).await?;
            messages.delete_many(doc! { "rid": rid }).session(&mut *session).await?;
            rooms.delete_one(doc! { "_id": rid }).session(&mut *session).await?;
            return Ok(RoomWriteOutcome::default());
        }
        // Read what the message and subscription mutations need before they run (they can run
        // only once); a message that is missing or in another room fails the write here.
        let mut stored_messages: HashMap<String, Message> = HashMap::new();
        let update_mids: Vec<String> = closures
            .as_ref()
            .map(|(_, updates, _)| updates.iter().map(|(id, _)| id.clone()).collect())
            .unwrap_or_default();
        for id in update_mids {
            if data.messages.iter().any(|m| m.id == id) || stored_messages.contains_key(&id) {
                continue;
            }
            let found = match tx_one(&messages, session, doc! { "_id": &id }).await? {
                Some(doc) => Some(message_from_doc(doc)?),
                None => None,
            };
            match found.filter(|m| m.rid == rid) {
                Some(message) => stored_messages.insert(id, message),
                None => return Err(StoreError::NotFound { entity: "message", id }.into()),
            };
        }
        let mut stored: HashMap<String, Subscription> = HashMap::new();
        let update_uids: Vec<String> = closures
            .as_ref()
            .map(|(_, _, updates)| updates.iter().map(|(uid, _)| uid.clone()).collect())
            .unwrap_or_default();
        for uid in update_uids {
            if data.add_subscriptions.iter().any(|s| s.u.id == uid) || stored.contains_key(&uid) {
                continue;
            }
            if let Some(doc) = tx_one(&subs, session, doc! { "rid": rid, "u._id": &uid }).await? {
                stored.insert(uid, subscription_from_doc(doc)?);
            }
        }
        // Taken only when there are mutations: a write without them stays retryable throughout.
        let (mutate, message_updates, updates) = match closures {
            Some((None, message_updates, updates)) if message_updates.is_empty() && updates.is_empty() => {
                (None, Vec::new(), Vec::new())
            }
            _ => closures.take().ok_or_else(|| {
                Fail::Store(StoreError::Unavailable("room write retried after its mutations ran".into()))
            })?,
        };
        let touches_room = is_new
            || mutate.is_some()
            || !data.messages.is_empty()
            || !data.add_subscriptions.is_empty()
            || !data.remove_subscriptions.is_empty();
        if let Some(mutate) = mutate {
            mutate(&mut room)?;
        }
        let mut appended = Vec::with_capacity(data.messages.len());
        for message in &data.messages {
            let mut message = message.clone();
            room.msgs += 1;
            message.seq = room.msgs;
            message.rid = rid.to_owned();
            if !data.keep_last_message {
                room.lm = Some(message.ts);
                room.last_message = Some(Box::new(message.clone()));
            }
            appended.push(message);
        }
        if touches_room {
            room.updated_at = room.updated_at.max(now);
            // A new room, or a rename by `mutate`, may take a name already in use.
            let key = room.name.clone().unwrap_or_else(|| room.id.clone());
            let doc = room_to_doc(&room)?;
            if is_new {
                rooms.insert_one(doc).session(&mut *session).await.map_err(tx_conflict_or("room", &key))?;
            } else {
                rooms
                    .replace_one(doc! { "_id": rid }, doc)
                    .session(&mut *session)
                    .await
                    .map_err(tx_conflict_or("room", &key))?;
            }
        }
        for message in &appended {
            messages
                .insert_one(message_to_doc(message)?)
                .session(&mut *session)
                .await
                .map_err(tx_conflict_or("message", &message.id))?;
        }
        let mut updated_messages = Vec::with_capacity(message_updates.len());
        for (id, mutate) in message_updates {
            // A message appended by this same write is updated as stored just now.
            let current = match stored_messages.remove(&id) {
                Some(message) => Some(message),
                None => appended.iter().find(|m| m.id == id).cloned(),
            };
            let Some(mut message) = current else {
                return Err(StoreError::NotFound { entity: "message", id }.into());
            };
            mutate(&mut message)?;
            tx_replace(&messages, session, message_to_doc(&message)?).await?;
            // A later change to the same message in this write sees this one.
            stored_messages.insert(id, message.clone());
            updated_messages.push(message);
        }
        let mut written = Vec::new();
        for sub in &data.add_subscriptions {
            let mut sub = sub.clone();
            sub.rid = rid.to_owned();
            subs.insert_one(subscription_to_doc(&sub)?)
                .session(&mut *session)
                .await
                .map_err(tx_conflict_or("subscription", &format!("{rid}/{}", sub.u.id)))?;
            written.push(sub);
        }
        for (uid, mutate) in updates {
            let existing = match written.iter().position(|s| s.u.id == uid) {
                Some(i) => Some(written.remove(i)),
                None => stored.remove(&uid),
            };
            let Some(mut sub) = existing else { continue };
            mutate(&mut sub, &room);
            sub.updated_at = sub.updated_at.max(now);
            tx_replace(&subs, session, subscription_to_doc(&sub)?).await?;
            written.push(sub);
        }
        for uid in &data.remove_subscriptions {
            let removed =
                subs.find_one_and_delete(doc! { "rid": rid, "u._id": uid }).session(&mut *session).await?;
            if let Some(doc) = removed {
                tx_upsert(&trash, session, trash_doc(TRASH_SUBSCRIPTION, doc, now)).await?;
            }
        }
        // Only joins and leaves change the member count (not a message's sender's read mark).
        if is_new || !data.add_subscriptions.is_empty() || !data.remove_subscriptions.is_empty() {
            let members = subs.count_documents(doc! { "rid": rid }).session(&mut *session).await?;
            if members != room.users_count {
                room.users_count = members;
                tx_replace(&rooms, session, room_to_doc(&room)?).await?;
            }
        }
        for sub in &mut written {
            sub.unread = messages
                .count_documents(unread_filter(rid, &sub.u.id, sub.last_read_seq))
                .session(&mut *session)
                .await?;
            sub.group_mentions = if sub.unread == 0 {
                0
            } else {
                messages
                    .count_documents(group_mention_filter(rid, &sub.u.id, sub.last_read_seq))
                    .session(&mut *session)
                    .await?
            };
        }
        Ok(RoomWriteOutcome {
            room: Some(room),
            messages: appended,
            updated_messages,
            subscriptions: written,
        })
    }

    async fn update_user_attempt(
        &self,
        session: &mut ClientSession,
        id: &str,
        mutation: &mut Option<UserMutation>,
    ) -> TxResult<User> {
        let users = self.coll(USERS);
        let Some(doc) = tx_one(&users, session, doc! { "_id": id }).await? else {
            return Err(StoreError::NotFound { entity: "user", id: id.to_owned() }.into());
        };
        let mut user = user_from_doc(doc)?;
        let Some(mutation) = mutation.take() else {
            return Err(StoreError::Unavailable("user update retried after its mutation ran".into()).into());
        };
        mutation(&mut user)?;
        users
            .update_one(doc! { "_id": id }, user_update(&user_to_doc(&user)?))
            .session(&mut *session)
            .await
            .map_err(tx_conflict_or("user", &user.username))?;
        Ok(user)
    }

    async fn update_message_attempt(
        &self,
        session: &mut ClientSession,
        id: &str,
        mutation: &mut Option<MessageMutation>,
    ) -> TxResult<Message> {
        let messages = self.coll(MESSAGES);
        let Some(doc) = tx_one(&messages, session, doc! { "_id": id }).await? else {
            return Err(StoreError::NotFound { entity: "message", id: id.to_owned() }.into());
        };
        let mut message = message_from_doc(doc)?;
        let Some(mutation) = mutation.take() else {
            return Err(
                StoreError::Unavailable("message update retried after its mutation ran".into()).into()
            );
        };
        mutation(&mut message)?;
        tx_replace(&messages, session, message_to_doc(&message)?).await?;
        Ok(message)
    }

    async fn delete_message_attempt(&self, session: &mut ClientSession, id: &str) -> TxResult<Message> {
        let (rooms, messages) = (self.coll(ROOMS), self.coll(MESSAGES));
        let now = Millis::now();
        let Some(doc) = messages.find_one_and_delete(doc! { "_id": id }).session(&mut *session).await? else {
            return Err(StoreError::NotFound { entity: "message", id: id.to_owned() }.into());
        };
        tx_upsert(&self.coll(TRASH), session, trash_doc(TRASH_MESSAGE, doc.clone(), now)).await?;
        let message = message_from_doc(doc)?;
        // Thread syncs find removed roots and replies in the trash by `rid` + `tcount` and `tmid`.
        if let Some(tmid) = &message.tmid
            && let Some(root_doc) = tx_one(&messages, session, doc! { "_id": tmid }).await?
        {
            let mut root = message_from_doc(root_doc)?;
            tcount_after_removal(&mut root, now);
            tx_replace(&messages, session, message_to_doc(&root)?).await?;
        }
        if let Some(room_doc) = tx_one(&rooms, session, doc! { "_id": &message.rid }).await? {
            let mut room = room_from_doc(room_doc)?;
            if room.last_message.as_ref().is_some_and(|m| m.id == id) {
                let newest = messages
                    .find_one(room_messages_filter(&message.rid))
                    .sort(by_ts(false))
                    .session(&mut *session)
                    .await?
                    .map(message_from_doc)
                    .transpose()?;
                room.lm = newest.as_ref().map(|m| m.ts);
                room.last_message = newest.map(Box::new);
                room.updated_at = now.max(room.updated_at);
                tx_replace(&rooms, session, room_to_doc(&room)?).await?;
            }
        }
        Ok(message)
    }

    async fn upsert_all_attempt(
        &self,
        session: &mut ClientSession,
        collection: &str,
        docs: &[Document],
    ) -> TxResult<()> {
        let coll = self.coll(collection);
        for doc in docs {
            tx_upsert(&coll, session, doc.clone()).await?;
        }
        Ok(())
    }

    async fn upsert_all(&self, collection: &str, docs: Vec<Document>) -> StoreResult<()> {
        transaction!(self, session, retry_while: true, self.upsert_all_attempt(&mut session, collection, &docs))
    }

    async fn config_all<T: serde::de::DeserializeOwned>(
        &self,
        collection: &str,
        entity: &'static str,
    ) -> StoreResult<Vec<T>> {
        self.find_docs(collection, Document::new(), Some(doc! { "_id": 1 }), (0, None), None)
            .await?
            .into_iter()
            .map(|d| config_from_doc(entity, d))
            .collect()
    }

    /// The room a message is in, read before taking the room's lock.
    async fn rid_of_message(&self, id: &str) -> StoreResult<String> {
        match self.one(MESSAGES, doc! { "_id": id }, None).await? {
            Some(doc) => Ok(doc.get_str("rid").unwrap_or_default().to_owned()),
            None => Err(StoreError::NotFound { entity: "message", id: id.to_owned() }),
        }
    }
}

#[async_trait]
impl UserStore for MongoStore {
    async fn insert_user(&self, user: User) -> StoreResult<()> {
        self.coll(USERS)
            .insert_one(new_user_doc(&user)?)
            .await
            .map_err(conflict_or("user", &user.username))?;
        Ok(())
    }

    async fn user_by_id(&self, id: &str) -> StoreResult<Option<User>> {
        self.one(USERS, doc! { "_id": id }, None).await?.map(user_from_doc).transpose()
    }

    async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        self.one(USERS, doc! { "username": username }, Some(case_insensitive()))
            .await?
            .map(user_from_doc)
            .transpose()
    }

    async fn user_by_email(&self, email: &str) -> StoreResult<Option<User>> {
        self.one(USERS, doc! { "emails.address": email }, Some(case_insensitive()))
            .await?
            .map(user_from_doc)
            .transpose()
    }

    async fn users_by_ids(&self, ids: &[String]) -> StoreResult<Vec<User>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let docs = self
            .find_docs(
                USERS,
                doc! { "_id": { "$in": ids } },
                Some(doc! { "username": 1 }),
                (0, None),
                Some(case_insensitive()),
            )
            .await?;
        docs.into_iter().map(user_from_doc).collect()
    }

    async fn list_users(&self, filter: &UserFilter, page: PageRequest) -> StoreResult<Page<User>> {
        self.page(
            USERS,
            user_list_filter(filter),
            doc! { "username": 1 },
            page,
            Some(case_insensitive()),
            user_from_doc,
        )
        .await
    }

    async fn update_user(&self, id: &str, mutation: UserMutation) -> StoreResult<User> {
        let _guard = self.lock(&format!("user:{id}")).lock().await;
        let mut mutation = Some(mutation);
        transaction!(self, session, retry_while: mutation.is_some(), self.update_user_attempt(&mut session, id, &mut mutation))
    }

    async fn delete_user(&self, id: &str) -> StoreResult<()> {
        // The login tokens live in the user document and go with it.
        let result = self.coll(USERS).delete_one(doc! { "_id": id }).await.map_err(unavailable)?;
        if result.deleted_count == 0 {
            return Err(StoreError::NotFound { entity: "user", id: id.to_owned() });
        }
        Ok(())
    }

    async fn insert_login_token(&self, token: LoginToken) -> StoreResult<()> {
        let key = if token.name.is_some() { "name" } else { "hashed token" };
        let conflict = || StoreError::Conflict { entity: "login token", key: key.into() };
        if self.count(USERS, user_by_token_filter(&token.hashed_token)).await? > 0 {
            return Err(conflict());
        }
        let mut filter = doc! {
            "_id": &token.user_id,
            "services.resume.loginTokens.hashedToken": { "$ne": &token.hashed_token },
        };
        if let Some(name) = &token.name {
            // One personal token per name and user, checked in the same update.
            filter.insert(
                "services.resume.loginTokens",
                doc! { "$not": { "$elemMatch": { "name": name, "type": "personalAccessToken" } } },
            );
        }
        let result = self
            .coll(USERS)
            .update_one(filter, push_login_token(login_token_entry(&token)))
            .await
            .map_err(unavailable)?;
        // No such user (or the token or name appeared meanwhile): the SQLite store's foreign key
        // and unique index refuse too.
        if result.matched_count == 0 {
            return Err(conflict());
        }
        Ok(())
    }

    async fn login_tokens_of_user(&self, user_id: &str) -> StoreResult<Vec<LoginToken>> {
        let doc = self.one(USERS, doc! { "_id": user_id }, None).await?;
        let mut tokens = doc.map(|d| login_tokens_of(&d)).unwrap_or_default();
        tokens.sort_by_key(|t| t.created_at);
        Ok(tokens)
    }

    async fn user_by_token(&self, hashed_token: &str) -> StoreResult<Option<(User, LoginToken)>> {
        let Some(doc) = self.one(USERS, user_by_token_filter(hashed_token), None).await? else {
            return Ok(None);
        };
        let Some(token) = login_tokens_of(&doc).into_iter().find(|t| t.hashed_token == hashed_token) else {
            return Ok(None);
        };
        Ok(Some((user_from_doc(doc)?, token)))
    }

    async fn delete_login_token(&self, hashed_token: &str) -> StoreResult<()> {
        self.coll(USERS)
            .update_one(user_by_token_filter(hashed_token), pull_login_tokens(&[hashed_token.to_owned()]))
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn prune_login_tokens(&self, user_id: &str, keep: usize, before: Millis) -> StoreResult<()> {
        let Some(doc) = self.one(USERS, doc! { "_id": user_id }, None).await? else { return Ok(()) };
        let prune = tokens_to_prune(&login_tokens_of(&doc), keep, before);
        if !prune.is_empty() {
            self.coll(USERS)
                .update_one(doc! { "_id": user_id }, pull_login_tokens(&prune))
                .await
                .map_err(unavailable)?;
        }
        Ok(())
    }

    async fn delete_user_login_tokens(&self, user_id: &str) -> StoreResult<u64> {
        let before = self
            .coll(USERS)
            .find_one_and_update(
                doc! { "_id": user_id },
                doc! { "$set": { "services.resume.loginTokens": [] } },
            )
            .return_document(ReturnDocument::Before)
            .await
            .map_err(unavailable)?;
        Ok(before.map_or(0, |doc| login_tokens_of(&doc).len() as u64))
    }
}

#[async_trait]
impl RoomStore for MongoStore {
    async fn write_room(&self, write: RoomWrite) -> StoreResult<RoomWriteOutcome> {
        let RoomWrite {
            rid,
            create,
            mutate,
            messages,
            update_messages,
            add_subscriptions,
            update_subscriptions,
            remove_subscriptions,
            delete,
            keep_last_message,
        } = write;
        let _guard = self.lock(&format!("room:{rid}")).lock().await;
        let data = RoomWriteData {
            rid,
            create,
            messages,
            add_subscriptions,
            remove_subscriptions,
            delete,
            keep_last_message,
        };
        let mut closures = Some((mutate, update_messages, update_subscriptions));
        transaction!(self, session, retry_while: closures.is_some(), self.room_write_attempt(&mut session, &data, &mut closures))
    }

    async fn room_by_id(&self, id: &str) -> StoreResult<Option<Room>> {
        self.one(ROOMS, doc! { "_id": id }, None).await?.map(room_from_doc).transpose()
    }

    async fn room_by_name(&self, name: &str) -> StoreResult<Option<Room>> {
        self.one(ROOMS, doc! { "name": name }, Some(case_insensitive())).await?.map(room_from_doc).transpose()
    }

    async fn list_rooms(&self, filter: &RoomFilter, page: PageRequest) -> StoreResult<Page<Room>> {
        self.page(
            ROOMS,
            room_list_filter(filter),
            doc! { "name": 1 },
            page,
            Some(case_insensitive()),
            room_from_doc,
        )
        .await
    }

    async fn rooms_of_user(
        &self,
        uid: &str,
        types: &[RoomType],
        page: PageRequest,
    ) -> StoreResult<Page<Room>> {
        let rids = self.room_ids_of(uid).await?;
        self.page(
            ROOMS,
            rooms_in(&rids, types),
            doc! { "name": 1, "_id": 1 },
            page,
            Some(case_insensitive()),
            room_from_doc,
        )
        .await
    }

    async fn rooms_of_user_updated_since(&self, uid: &str, since: Option<Millis>) -> StoreResult<Vec<Room>> {
        let rids = self.room_ids_of(uid).await?;
        let mut filter = rooms_in(&rids, &[]);
        if let Some(since) = since {
            filter.insert("_updatedAt", doc! { "$gt": date(since) });
        }
        let docs = self.find_docs(ROOMS, filter, Some(doc! { "_updatedAt": 1 }), (0, None), None).await?;
        docs.into_iter().map(room_from_doc).collect()
    }

    async fn removed_rooms_since(&self, since: Millis) -> StoreResult<Vec<Removed>> {
        let docs = self
            .find_docs(TRASH, removed_rooms_filter(since), Some(doc! { "_deletedAt": 1 }), (0, None), None)
            .await?;
        Ok(docs.iter().filter_map(removed_from).collect())
    }

    async fn subscription(&self, rid: &str, uid: &str) -> StoreResult<Option<Subscription>> {
        match self.one(SUBSCRIPTIONS, doc! { "rid": rid, "u._id": uid }, None).await? {
            Some(doc) => Ok(Some(self.with_unread(subscription_from_doc(doc)?).await?)),
            None => Ok(None),
        }
    }

    async fn subscriptions_of_user(
        &self,
        uid: &str,
        since: Option<Millis>,
    ) -> StoreResult<Vec<Subscription>> {
        // A new message changes a subscription's unread count without writing it: the room's
        // `_updatedAt` stands in for it.
        let changed_rids = match since {
            Some(since) => {
                let rids = self.room_ids_of(uid).await?;
                let mut filter = rooms_in(&rids, &[]);
                filter.insert("_updatedAt", doc! { "$gt": date(since) });
                let rooms = self.find_docs(ROOMS, filter, None, (0, None), None).await?;
                rooms.iter().filter_map(|r| r.get_str("_id").ok().map(str::to_owned)).collect()
            }
            None => Vec::new(),
        };
        let docs = self
            .find_docs(
                SUBSCRIPTIONS,
                subscriptions_since_filter(uid, since, &changed_rids),
                Some(doc! { "_updatedAt": 1 }),
                (0, None),
                None,
            )
            .await?;
        let mut subs = Vec::with_capacity(docs.len());
        for doc in docs {
            subs.push(self.with_unread(subscription_from_doc(doc)?).await?);
        }
        Ok(subs)
    }

    async fn removed_subscriptions_since(&self, uid: &str, since: Millis) -> StoreResult<Vec<Removed>> {
        let docs = self
            .find_limited(TRASH, removed_filter(TRASH_SUBSCRIPTION, "u._id", uid, since, false), None)
            .await?;
        Ok(docs.iter().filter_map(removed_from).collect())
    }

    async fn subscriptions_of_room(&self, rid: &str, page: PageRequest) -> StoreResult<Page<Subscription>> {
        self.page(
            SUBSCRIPTIONS,
            doc! { "rid": rid },
            doc! { "u.username": 1 },
            page,
            None,
            subscription_from_doc,
        )
        .await
    }

    async fn discussions_of_room(&self, prid: &str, page: PageRequest) -> StoreResult<Page<Room>> {
        let (filter, sort) = discussions_filter(prid);
        self.page(ROOMS, filter, sort, page, None, room_from_doc).await
    }

    /// Rocket.Chat's own field updates (`$set`, positional), so concurrent room writes keep
    /// theirs; the changed rooms and subscriptions are read back for the caller's events.
    async fn rename_user(&self, rename: &UserRename) -> StoreResult<RenameOutcome> {
        // `DateTime` is `Copy`; each update takes its own.
        let at = mongodb::bson::DateTime::from_millis(rename.at.0);
        let (uid, old) = (rename.user_id.as_str(), rename.old_username.as_str());
        let mut outcome = RenameOutcome::default();
        let ids_of = |docs: Vec<Document>| -> Vec<Bson> {
            docs.into_iter().filter_map(|d| d.get("_id").cloned()).collect()
        };
        let new = rename.username.as_deref().filter(|_| rename.renames_username());
        if let Some(new) = new {
            let messages = self.coll(MESSAGES);
            messages
                .update_many(doc! { "u._id": uid }, doc! { "$set": { "u.username": new, "_updatedAt": at } })
                .await
                .map_err(unavailable)?;
            messages
                .update_many(
                    doc! { "editedBy._id": uid },
                    doc! { "$set": { "editedBy.username": new, "_updatedAt": at } },
                )
                .await
                .map_err(unavailable)?;
            for found in
                self.find_docs(MESSAGES, doc! { "mentions.username": old }, None, (0, None), None).await?
            {
                let mut message = message_from_doc(found)?;
                if rename.apply_to_message(&mut message) {
                    // The mentions as the document keeps them, through the one conversion.
                    let mentions = message_to_doc(&message)?.get("mentions").cloned().unwrap_or(Bson::Null);
                    messages
                        .update_one(
                            doc! { "_id": &message.id },
                            doc! { "$set": { "msg": &message.msg, "mentions": mentions, "_updatedAt": at } },
                        )
                        .await
                        .map_err(unavailable)?;
                }
            }
            let filter = doc! { "$or": [{ "usernames": old }, { "muted": old }, { "u._id": uid }] };
            let rids = ids_of(self.find_docs(ROOMS, filter, None, (0, None), None).await?);
            let rooms = self.coll(ROOMS);
            for (filter, field) in
                [(doc! { "usernames": old }, "usernames.$"), (doc! { "muted": old }, "muted.$")]
            {
                rooms
                    .update_many(filter, doc! { "$set": { field: new, "_updatedAt": at } })
                    .await
                    .map_err(unavailable)?;
            }
            rooms
                .update_many(doc! { "u._id": uid }, doc! { "$set": { "u.username": new, "_updatedAt": at } })
                .await
                .map_err(unavailable)?;
            for found in self.find_docs(ROOMS, doc! { "_id": { "$in": rids } }, None, (0, None), None).await?
            {
                outcome.rooms.push(room_from_doc(found)?);
            }
        }
        let mut filters = Vec::new();
        if new.is_some() {
            filters.push(doc! { "u._id": uid });
        }
        let direct = doc! { "t": "d", "name": old };
        let mut direct_set = Document::new();
        if let Some(new) = rename.username.as_deref() {
            direct_set.insert("name", new);
        }
        if let Some(name) = rename.name.as_deref() {
            direct_set.insert("fname", name);
        }
        if !direct_set.is_empty() {
            filters.push(direct.clone());
        }
        if filters.is_empty() {
            return Ok(outcome);
        }
        let ids =
            ids_of(self.find_docs(SUBSCRIPTIONS, doc! { "$or": filters }, None, (0, None), None).await?);
        let subscriptions = self.coll(SUBSCRIPTIONS);
        if let Some(new) = new {
            subscriptions
                .update_many(doc! { "u._id": uid }, doc! { "$set": { "u.username": new, "_updatedAt": at } })
                .await
                .map_err(unavailable)?;
        }
        if !direct_set.is_empty() {
            direct_set.insert("_updatedAt", at);
            subscriptions.update_many(direct, doc! { "$set": direct_set }).await.map_err(unavailable)?;
        }
        for found in
            self.find_docs(SUBSCRIPTIONS, doc! { "_id": { "$in": ids } }, None, (0, None), None).await?
        {
            outcome.subscriptions.push(self.with_unread(subscription_from_doc(found)?).await?);
        }
        Ok(outcome)
    }
}

#[async_trait]
impl MessageStore for MongoStore {
    async fn message_by_id(&self, id: &str) -> StoreResult<Option<Message>> {
        self.one(MESSAGES, doc! { "_id": id }, None).await?.map(message_from_doc).transpose()
    }

    async fn history(&self, rid: &str, query: &HistoryQuery) -> StoreResult<Vec<Message>> {
        let Some(w) = window(PageRequest { offset: query.offset, count: query.count }) else {
            return Ok(Vec::new());
        };
        let docs = self
            .find_docs(MESSAGES, history_filter(rid, query), Some(by_ts(query.oldest_first)), w, None)
            .await?;
        docs.into_iter().map(message_from_doc).collect()
    }

    async fn list_messages(
        &self,
        rid: &str,
        page: PageRequest,
        ascending: bool,
    ) -> StoreResult<Page<Message>> {
        self.page(MESSAGES, room_messages_filter(rid), by_ts(ascending), page, None, message_from_doc).await
    }

    async fn count_unread(&self, rid: &str, uid: &str, after_seq: u64) -> StoreResult<u64> {
        self.count(MESSAGES, unread_filter(rid, uid, after_seq)).await
    }

    async fn first_unread(&self, rid: &str, uid: &str, after_seq: u64) -> StoreResult<Option<Message>> {
        let docs = self
            .find_docs(
                MESSAGES,
                unread_filter(rid, uid, after_seq),
                Some(doc! { "seq": 1 }),
                (0, Some(1)),
                None,
            )
            .await?;
        docs.into_iter().next().map(message_from_doc).transpose()
    }

    async fn update_message(&self, id: &str, mutation: MessageMutation) -> StoreResult<Message> {
        let rid = self.rid_of_message(id).await?;
        let _guard = self.lock(&format!("room:{rid}")).lock().await;
        let mut mutation = Some(mutation);
        transaction!(self, session, retry_while: mutation.is_some(), self.update_message_attempt(&mut session, id, &mut mutation))
    }

    async fn messages_changed(
        &self,
        rid: &str,
        since: Millis,
        before: bool,
        count: Option<u64>,
    ) -> StoreResult<Vec<Message>> {
        let docs = self.find_limited(MESSAGES, changed_filter(rid, since, before), count).await?;
        docs.into_iter().map(message_from_doc).collect()
    }

    async fn messages_removed(
        &self,
        rid: &str,
        since: Millis,
        before: bool,
        count: Option<u64>,
    ) -> StoreResult<Vec<Removed>> {
        let docs =
            self.find_limited(TRASH, removed_filter(TRASH_MESSAGE, "rid", rid, since, before), count).await?;
        Ok(docs.iter().filter_map(removed_from).collect())
    }

    async fn delete_message(&self, id: &str) -> StoreResult<Message> {
        // The room's `lastMessage` may change: the room's writers queue on its lock.
        let rid = self.rid_of_message(id).await?;
        let _guard = self.lock(&format!("room:{rid}")).lock().await;
        transaction!(self, session, retry_while: true, self.delete_message_attempt(&mut session, id))
    }

    async fn find_messages(
        &self,
        rid: &str,
        filter: &MessageFilter,
        page: PageRequest,
    ) -> StoreResult<Page<Message>> {
        let (filter, sort) = message_filter(rid, filter);
        self.page(MESSAGES, filter, sort, page, None, message_from_doc).await
    }

    async fn threads(
        &self,
        rid: &str,
        filter: &ThreadFilter,
        page: PageRequest,
    ) -> StoreResult<Page<Message>> {
        let (filter, sort) = threads_filter(rid, filter);
        self.page(MESSAGES, filter, sort, page, None, message_from_doc).await
    }

    async fn thread_messages(&self, tmid: &str, page: PageRequest) -> StoreResult<Page<Message>> {
        let (filter, sort) = thread_messages_filter(tmid);
        self.page(MESSAGES, filter, sort, page, None, message_from_doc).await
    }

    async fn threads_changed(&self, rid: &str, since: Millis) -> StoreResult<(Vec<Message>, Vec<Removed>)> {
        let changed = self.find_limited(MESSAGES, threads_changed_filter(rid, since), None).await?;
        let removed = self.find_limited(TRASH, removed_threads_filter(rid, since), None).await?;
        Ok((
            changed.into_iter().map(message_from_doc).collect::<StoreResult<_>>()?,
            removed.iter().filter_map(removed_from).collect(),
        ))
    }

    async fn thread_messages_changed(
        &self,
        tmid: &str,
        since: Millis,
    ) -> StoreResult<(Vec<Message>, Vec<Removed>)> {
        let changed = self.find_limited(MESSAGES, thread_messages_changed_filter(tmid, since), None).await?;
        let removed =
            self.find_limited(TRASH, removed_filter(TRASH_MESSAGE, "tmid", tmid, since, false), None).await?;
        Ok((
            changed.into_iter().map(message_from_doc).collect::<StoreResult<_>>()?,
            removed.iter().filter_map(removed_from).collect(),
        ))
    }

    async fn insert_hidden_message(&self, message: &Message) -> StoreResult<()> {
        // Rocket.Chat keeps them in the messages collection; every read of a room skips `_hidden`.
        let mut doc = message_to_doc(message)?;
        doc.insert(NOT_HIDDEN, true);
        self.coll(MESSAGES).insert_one(doc).await.map_err(conflict_or("message", &message.id))?;
        Ok(())
    }

    async fn hidden_messages(&self, id: &str) -> StoreResult<Vec<Message>> {
        let (filter, sort) = hidden_messages_filter(id);
        let docs = self.find_docs(MESSAGES, filter, Some(sort), (0, None), None).await?;
        docs.into_iter().map(message_from_doc).collect()
    }

    async fn insert_report(&self, report: &MessageReport) -> StoreResult<()> {
        self.coll(REPORTS)
            .insert_one(report_to_doc(report)?)
            .await
            .map_err(conflict_or("report", &report.id))?;
        Ok(())
    }

    async fn reports_of_message(&self, mid: &str) -> StoreResult<Vec<MessageReport>> {
        let docs = self.find_limited(REPORTS, reports_filter(mid), None).await?;
        docs.into_iter().map(report_from_doc).collect()
    }

    async fn removed_messages_page(
        &self,
        rid: &str,
        since: Millis,
        page: PageRequest,
    ) -> StoreResult<Page<Removed>> {
        let (filter, sort) = removed_filter(TRASH_MESSAGE, "rid", rid, since, false);
        let removed = self.page(TRASH, filter, sort, page, None, |doc| Ok(removed_from(&doc))).await?;
        Ok(Page {
            items: removed.items.into_iter().flatten().collect(),
            offset: removed.offset,
            total: removed.total,
        })
    }
}

#[async_trait]
impl ConfigStore for MongoStore {
    async fn settings(&self) -> StoreResult<Vec<Setting>> {
        self.config_all(SETTINGS, "setting").await
    }

    async fn upsert_settings(&self, settings: Vec<Setting>) -> StoreResult<()> {
        let docs = settings.iter().map(setting_to_doc).collect::<StoreResult<Vec<_>>>()?;
        self.upsert_all(SETTINGS, docs).await
    }

    async fn permissions(&self) -> StoreResult<Vec<Permission>> {
        self.config_all(PERMISSIONS, "permission").await
    }

    async fn upsert_permissions(&self, permissions: Vec<Permission>) -> StoreResult<()> {
        let docs = permissions.iter().map(permission_to_doc).collect::<StoreResult<Vec<_>>>()?;
        self.upsert_all(PERMISSIONS, docs).await
    }

    async fn roles(&self) -> StoreResult<Vec<Role>> {
        self.config_all(ROLES, "role").await
    }

    async fn upsert_roles(&self, roles: Vec<Role>) -> StoreResult<()> {
        let docs = roles.iter().map(role_to_doc).collect::<StoreResult<Vec<_>>>()?;
        self.upsert_all(ROLES, docs).await
    }
}

#[cfg(all(test, feature = "testsuite"))]
mod tests;

/// Upload records, in `rocketchat_uploads`. An upload changes rarely (once, when confirmed): an
/// update replaces the document only if it is still exactly as read, so a concurrent change in
/// another process is never overwritten (the caller gets `Unavailable` and may retry).
#[async_trait]
impl UploadStore for MongoStore {
    async fn insert_upload(&self, upload: Upload) -> StoreResult<()> {
        self.coll(UPLOADS)
            .insert_one(upload_to_doc(&upload)?)
            .await
            .map_err(conflict_or("upload", &upload.id))?;
        Ok(())
    }

    async fn upload_by_id(&self, id: &str) -> StoreResult<Option<Upload>> {
        self.one(UPLOADS, doc! { "_id": id }, None).await?.map(upload_from_doc).transpose()
    }

    async fn update_upload(&self, id: &str, mutation: UploadMutation) -> StoreResult<Upload> {
        let _guard = self.lock(&format!("upload:{id}")).lock().await;
        let Some(stored) = self.one(UPLOADS, doc! { "_id": id }, None).await? else {
            return Err(StoreError::NotFound { entity: "upload", id: id.to_owned() });
        };
        let mut upload = upload_from_doc(stored.clone())?;
        mutation(&mut upload)?;
        // The id is the key, as with SQLite: a mutation cannot move the record.
        id.clone_into(&mut upload.id);
        let replaced =
            self.coll(UPLOADS).replace_one(stored, upload_to_doc(&upload)?).await.map_err(unavailable)?;
        if replaced.matched_count == 0 {
            return Err(StoreError::Unavailable(format!("upload {id} changed meanwhile; try again")));
        }
        Ok(upload)
    }

    async fn delete_upload(&self, id: &str) -> StoreResult<()> {
        let deleted = self.coll(UPLOADS).delete_one(doc! { "_id": id }).await.map_err(unavailable)?;
        if deleted.deleted_count == 0 {
            return Err(StoreError::NotFound { entity: "upload", id: id.to_owned() });
        }
        Ok(())
    }

    async fn room_uploads(
        &self,
        rid: &str,
        name: Option<String>,
        page: PageRequest,
    ) -> StoreResult<Page<Upload>> {
        let (filter, sort) = room_uploads_query(rid, name.as_deref());
        self.page(UPLOADS, filter, sort, page, None, upload_from_doc).await
    }

    async fn room_images(
        &self,
        rid: &str,
        up_to: Option<Millis>,
        page: PageRequest,
    ) -> StoreResult<Page<Upload>> {
        let (filter, sort) = room_images_query(rid, up_to);
        self.page(UPLOADS, filter, sort, page, None, upload_from_doc).await
    }

    async fn message_uploads(&self, message_id: &str) -> StoreResult<Vec<Upload>> {
        let docs = self.find_limited(UPLOADS, message_uploads_query(message_id), None).await?;
        docs.into_iter().map(upload_from_doc).collect()
    }

    async fn stale_uploads(&self, before: Millis, limit: u64) -> StoreResult<Vec<Upload>> {
        let docs = self.find_limited(UPLOADS, stale_uploads_query(before), Some(limit)).await?;
        docs.into_iter().map(upload_from_doc).collect()
    }
}
