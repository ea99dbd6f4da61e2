//! The audit trail of management changes (Portus reference §10.4): who changed which
//! team, namespace, user, token or webhook. Pushes and deletes write their own
//! activities in the transaction that records them (see `portcullis-storage`).

use crate::Context;
use crate::auth::Authenticated;
use portcullis_domain::inventory::NewActivity;
use portcullis_domain::model::Id;
use serde_json::Value;

/// One activity about to be written.
pub(crate) struct Audit<'a> {
    key: &'a str,
    trackable: (&'a str, Option<Id>),
    recipient: Option<(&'a str, Id)>,
    namespace_id: Option<Id>,
    team_id: Option<Id>,
    parameters: Vec<(&'a str, Value)>,
}

impl<'a> Audit<'a> {
    pub(crate) fn new(key: &'a str, trackable_type: &'a str, trackable_id: Option<Id>) -> Self {
        Self {
            key,
            trackable: (trackable_type, trackable_id),
            recipient: None,
            namespace_id: None,
            team_id: None,
            parameters: Vec::new(),
        }
    }

    pub(crate) fn recipient(mut self, kind: &'a str, id: Id) -> Self {
        self.recipient = Some((kind, id));
        self
    }

    /// The namespace and team it belongs to, which decide whose dashboards show it.
    pub(crate) fn scope(mut self, namespace_id: Option<Id>, team_id: Option<Id>) -> Self {
        self.namespace_id = namespace_id;
        self.team_id = team_id;
        self
    }

    pub(crate) fn param(mut self, name: &'a str, value: impl Into<Value>) -> Self {
        self.parameters.push((name, value.into()));
        self
    }

    /// Writes it. The change it describes is already committed, so a failure here is
    /// logged rather than turned into an error the caller would read as "not done".
    pub(crate) async fn record(self, ctx: &Context, actor: &Authenticated) {
        self.record_as(ctx, Some(actor.user.id), actor.user.username.clone())
            .await;
    }

    /// Written by Portcullis itself (a periodic task), under `name`.
    pub(crate) async fn record_by_system(self, ctx: &Context, name: &str) {
        self.record_as(ctx, None, name.to_owned()).await;
    }

    async fn record_as(self, ctx: &Context, owner_id: Option<Id>, owner_name: String) {
        let activity = NewActivity {
            key: self.key.to_owned(),
            owner_id,
            owner_name,
            trackable_type: self.trackable.0.to_owned(),
            trackable_id: self.trackable.1,
            recipient_type: self.recipient.map(|(kind, _)| kind.to_owned()),
            recipient_id: self.recipient.map(|(_, id)| id),
            namespace_id: self.namespace_id,
            team_id: self.team_id,
            parameters: self
                .parameters
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
        };
        if let Err(e) = ctx.store.record_activity(&activity, ctx.clock.now()).await {
            tracing::warn!(key = %activity.key, error = %e, "activity not recorded");
        }
    }
}
